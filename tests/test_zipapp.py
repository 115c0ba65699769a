"""The single-file build: claude-vcr.pyz runs from any folder with nothing installed but CPython.

Every run here uses a fresh venv without packages (`python -I`, no site-packages of ours), a temp working
folder and an empty native cache (VCR_CACHE_DIR), as on a machine that never saw claude-vcr. The build
fetches wheels into .cache/zipapp once (the only network use); later builds are offline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from claude_vcr import __version__, _bootstrap
from claude_vcr.matching import key_request

import build_zipapp
from tests.support import REPO
from tests.support.client import TEST_API_KEY
from tests.support.loopback import unreachable_url

pytestmark = pytest.mark.slow
BANNER = re.compile(r"claude-vcr listening on (http://127\.0\.0\.1:\d+) ")
OTHER_PYTHONS = [v for v in ("3.12", "3.13", "3.14") if v != _bootstrap.python_version()][:2]


def build(output: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    """`python3 build_zipapp.py` as a person runs it, sharing the repo's download cache."""
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""} if offline else None
    result = subprocess.run(
        [sys.executable, str(REPO / "build_zipapp.py"), "--output", str(output), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("dist") / "claude-vcr.pyz"
    build(output)
    return output


@pytest.fixture(scope="module")
def manifest(pyz: Path) -> dict:
    with zipfile.ZipFile(pyz) as archive:
        return json.loads(archive.read(_bootstrap.MANIFEST))


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CPython with none of claude-vcr's dependencies importable: a venv without packages."""
    folder = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    probe = subprocess.run([str(python), "-I", "-c", "import aiohttp"], capture_output=True, timeout=60)
    assert probe.returncode != 0, "the bare venv can import aiohttp: the tests would prove nothing"
    return str(python)


@dataclass
class Runner:
    """Runs the pyz with `python -I` in a temp folder, its native cache in that folder too."""

    python: str
    pyz: Path
    cwd: Path

    @property
    def cache(self) -> Path:
        return self.cwd / "native-cache"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.cwd),
            _bootstrap.CACHE_ENV: str(self.cache),
        }

    def command(self, *args: str) -> list[str]:
        return [self.python, "-I", str(self.pyz), *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, cwd=self.cwd, env=self.env(), timeout=timeout
        )

    def probe(self, code: str, *args: str) -> dict:
        """Run Python code in a fresh `python -I` next to the pyz; it reports back a JSON dict."""
        script = PROBE_PREAMBLE + textwrap.dedent(code)
        result = subprocess.run(
            [self.python, "-I", "-c", script, str(self.pyz), *args],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=self.env(),
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout.rsplit("\n@@", 1)[1])

    def start(self, *args: str) -> ServeProcess:
        return ServeProcess(self, list(args))


PROBE_PREAMBLE = """
import json, os, runpy, sys
PYZ = sys.argv[1]

def report(**values):
    modules = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
    import sysconfig
    stdlib = tuple(sysconfig.get_paths()[key] + os.sep for key in ("stdlib", "platstdlib"))
    ours = (PYZ + os.sep, os.environ["VCR_CACHE_DIR"] + os.sep)
    foreign = sorted(
        n for n, f in modules.items()
        if f and not f.startswith(ours) and (not f.startswith(stdlib) or "site-packages" in f)
    )
    print("\\n@@" + json.dumps(dict(values, modules=modules, foreign=foreign)))

def run_pyz(*args):
    sys.argv = [PYZ, *args]
    try:
        runpy.run_path(PYZ, run_name="__main__")
    except SystemExit as exit:
        return exit.code or 0
    return 0
"""


class ServeProcess:
    """`python -I claude-vcr.pyz serve ...`: waits for the banner line, stops with SIGTERM."""

    def __init__(self, runner: Runner, args: list[str]) -> None:
        self.process = subprocess.Popen(
            runner.command("serve", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=runner.cwd,
            env=runner.env(),
        )
        self.banner = self.process.stdout.readline()
        match = BANNER.search(self.banner)
        if not match:
            self.process.kill()
            raise AssertionError(f"no banner: {self.banner!r} {self.process.stdout.read()!r}")
        self.url = match.group(1)

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        rest, _ = self.process.communicate(timeout=30)
        return self.process.returncode, rest

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


@pytest.fixture
def runner(bare_python: str, pyz: Path, tmp_path: Path) -> Iterator[Runner]:
    yield Runner(bare_python, pyz, tmp_path)


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for server in started:
        server.kill()


def post(url: str, text: str, stream: bool = True) -> tuple[bytes, dict[str, str]]:
    payload = {
        "model": "claude-opus-5-5",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    }
    request = urllib.request.Request(
        url + "/v1/messages",
        data=json.dumps(payload).encode(),
        headers={
            "content-type": "application/json",
            "x-api-key": TEST_API_KEY,
            "anthropic-version": "2023-06-01",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.read(), dict(error.headers)


# --- the file itself ----------------------------------------------------------------------------------


def test_pyz_holds_the_package_its_dependencies_and_a_native_module_per_python(pyz, manifest):
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    for required in ("__main__.py", "claude_vcr/cli.py", "claude_vcr/_bootstrap.py", "claude_vcr/migrations/__init__.py"):
        assert required in names
    for package in ("aiohttp", "multidict", "yarl", "frozenlist", "propcache", "sqlite_utils", "click"):
        assert f"{package}/__init__.py" in names
    assert "zstandard/__init__.py" in names and "zstandard/backend_cffi.py" not in names
    tops = {name.split("/")[0] for name in names}
    for left_out in ("pip", "tabulate.py", "click_default_group.py", "tzdata"):
        assert left_out not in tops
    natives = [n for n in names if n.endswith((".so", ".pyd"))]
    assert len(natives) == len(build_zipapp.DEFAULT_PYTHONS)
    assert all(n.startswith("_native/") and "backend_c" in n for n in natives)
    assert sorted(t["python"] for t in manifest["targets"]) == sorted(build_zipapp.DEFAULT_PYTHONS)
    assert pyz.stat().st_size < 12_000_000
    assert not [n for n in names if n.endswith(".pyc") and not n.startswith("_pyc/")]
    for python in manifest["bytecode_for"]:
        assert f"_pyc/cp{python.replace('.', '')}/claude_vcr/cli.pyc" in names
    assert _bootstrap.python_version() in manifest["bytecode_for"]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {build_zipapp.EPOCH}
    pins = build_zipapp.LOCK[min(build_zipapp.DEFAULT_PYTHONS, key=build_zipapp.version_tuple)]
    bundled = {build_zipapp.canonicalize_name(d["name"]): d["version"] for d in manifest["dependencies"]}
    assert bundled.items() <= pins.items() and {"aiohttp", "click", "sqlite-utils", "zstandard"} <= set(
        bundled
    )
    assert not set(bundled) & set(build_zipapp.EXCLUDED)


def test_same_checkout_builds_byte_identical_pyz(tmp_path):
    """The second build cannot reach any package index: once the cache is warm, builds are offline."""
    first, second = tmp_path / "first.pyz", tmp_path / "second.pyz"
    build(first)
    assert "pip download" not in build(second, offline=True).stdout
    assert first.read_bytes() == second.read_bytes()


# --- start-up: --version, --help, what gets imported ---------------------------------------------------


def test_version_lists_targets_and_bundled_dependencies(runner, manifest):
    result = runner.run("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"claude-vcr, version {__version__} ")
    assert f"CPython {_bootstrap.python_version()} on " in result.stdout
    for dep in manifest["dependencies"]:
        assert re.search(rf"^  {re.escape(dep['name'])} {re.escape(dep['version'])}\b", result.stdout, re.M)
    assert re.search(r"^  zstandard \S+ \(C module", result.stdout, re.M)
    assert re.search(r"^  aiohttp \S+ \(pure-Python build\)", result.stdout, re.M)
    assert not runner.cache.exists(), "--version needs no native code"


def test_help_from_any_folder(runner):
    result = runner.run("--help")
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "Usage:" in result.stdout
    assert not runner.cache.exists(), "--help needs no native code"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["serve", "--help"],
        ["stats", "--db", "vcr.db"],
        ["list", "--db", "vcr.db"],
        ["export", "exported", "--db", "vcr.db"],
    ],
    ids=["help", "serve-help", "stats", "list", "export"],
)
def test_commands_that_do_not_serve_never_import_aiohttp(runner, args):
    from claude_vcr.store import Store

    Store(runner.cwd / "vcr.db").close()
    found = runner.probe("report(code=run_pyz(*sys.argv[2:]))", *args)
    assert found["code"] == 0, f"`{' '.join(args)}` exited {found['code']}"
    assert not [m for m in found["modules"] if m.split(".")[0] in ("aiohttp", "yarl", "multidict")]
    assert found["foreign"] == [], "imported from outside the pyz"


def test_store_and_proxy_import_pure_python_from_the_zip_and_zstd_from_the_cache(runner):
    found = runner.probe(
        """
        sys.path.insert(0, PYZ)
        from claude_vcr import _bootstrap
        _bootstrap.prepare(_bootstrap.load_manifest())
        import claude_vcr.proxy, claude_vcr.store, claude_vcr.migrations, zstandard  # migrations bring sqlite-utils
        data = b"claude-vcr " * 1000
        assert zstandard.ZstdDecompressor().decompress(zstandard.ZstdCompressor().compress(data)) == data
        report(backend=zstandard.backend)
        """
    )
    modules = found["modules"]
    assert found["backend"] == "cext"
    assert found["foreign"] == []
    assert modules["zstandard.backend_c"].startswith(str(runner.cache))
    for package in ("aiohttp", "multidict", "yarl", "frozenlist", "propcache", "sqlite_utils", "click"):
        assert modules[package].startswith(str(runner.pyz) + os.sep)
    compiled = ("multidict._multidict", "yarl._quoting_c", "aiohttp._http_parser", "propcache._helpers_c")
    assert not [m for m in compiled if m in modules], "C speedups cannot come from a zip"


# --- the native cache ----------------------------------------------------------------------------------


def test_concurrent_first_starts_share_one_extraction(runner, manifest):
    code = """
        sys.path.insert(0, PYZ)
        from claude_vcr import _bootstrap
        _bootstrap.prepare(_bootstrap.load_manifest())
        import zstandard
        assert zstandard.ZstdDecompressor().decompress(zstandard.ZstdCompressor().compress(b"x" * 99)) == b"x" * 99
        report(location=zstandard.backend_c.__file__)
        """
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: runner.probe(code), range(4)))
    locations = {r["location"] for r in results}
    assert len(locations) == 1
    [entry] = manifest["targets"][0]["native"].values()
    files = [p for p in runner.cache.rglob("*") if p.is_file()]
    assert files == [Path(locations.pop())], "one copy, no temp files left behind"
    assert files[0].stat().st_size == entry["size"]
    assert f"pyz-{manifest['build_id']}" in str(files[0])
    before = files[0].stat()
    runner.probe(code)
    after = files[0].stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns), "reused, not rewritten"


def test_truncated_cache_file_is_replaced(runner, manifest):
    code = """
        sys.path.insert(0, PYZ)
        from claude_vcr import _bootstrap
        _bootstrap.prepare(_bootstrap.load_manifest())
        import zstandard
        report(location=zstandard.backend_c.__file__)
        """
    location = Path(runner.probe(code)["location"])
    location.write_bytes(location.read_bytes()[:1000])
    assert Path(runner.probe(code)["location"]) == location
    [entry] = manifest["targets"][0]["native"].values()
    assert location.stat().st_size == entry["size"]


# --- targets -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pyz for other CPython versions only (its zstandard wheels come from the package index once)."""
    output = tmp_path_factory.mktemp("foreign") / "claude-vcr.pyz"
    args = [arg for python in OTHER_PYTHONS for arg in ("--python-version", python)]
    build(output, *args, "--platform", "manylinux_2_17_x86_64")
    return output


def test_pyz_for_other_pythons_says_which_it_supports(bare_python, foreign_pyz, tmp_path):
    runner = Runner(bare_python, foreign_pyz, tmp_path)
    result = runner.run("--help")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot run here" in result.stderr
    for python in OTHER_PYTHONS:
        assert re.search(rf"CPython {re.escape(python)} on \S*manylinux", result.stderr)
    assert f"this is CPython {_bootstrap.python_version()}." in result.stderr
    assert "build_zipapp.py" in result.stderr
    version = runner.run("--version")
    assert version.returncode == 0 and f"CPython {OTHER_PYTHONS[0]} on" in version.stdout
    with zipfile.ZipFile(foreign_pyz) as archive:
        names = archive.namelist()
    assert len([n for n in names if n.endswith(".so")]) == len(OTHER_PYTHONS)
    trees = {n.split("/")[1] for n in names if n.startswith("_pyc/") and n != "_pyc/"}
    assert trees <= {f"cp{p.replace('.', '')}" for p in OTHER_PYTHONS}, "bytecode only for the targets"


@pytest.mark.parametrize(
    "tag, where, fits",
    [
        ("manylinux_2_17_x86_64", _bootstrap.Platform("linux", "x86_64", "glibc", (2, 36)), True),
        ("manylinux2014_x86_64", _bootstrap.Platform("linux", "x86_64", "glibc", (2, 17)), True),
        ("manylinux_2_28_x86_64", _bootstrap.Platform("linux", "x86_64", "glibc", (2, 17)), False),
        ("manylinux_2_17_aarch64", _bootstrap.Platform("linux", "x86_64", "glibc", (2, 36)), False),
        ("manylinux_2_17_x86_64", _bootstrap.Platform("linux", "x86_64", "musl", (1, 99)), False),
        ("musllinux_1_2_x86_64", _bootstrap.Platform("linux", "x86_64", "musl", (1, 99)), True),
        ("macosx_11_0_arm64", _bootstrap.Platform("macosx", "arm64", "", (14, 2)), True),
        ("macosx_10_9_universal2", _bootstrap.Platform("macosx", "x86_64", "", (12, 0)), True),
        ("macosx_11_0_arm64", _bootstrap.Platform("macosx", "x86_64", "", (14, 2)), False),
        ("win_amd64", _bootstrap.Platform("win", "amd64"), True),
        ("win_amd64", _bootstrap.Platform("win", "arm64"), False),
    ],
)
def test_platform_tags_match_like_pip(tag, where, fits):
    assert _bootstrap.tag_fits(tag, where) is fits


def test_this_machine_fits_the_pyz_built_on_it(manifest):
    where = _bootstrap.running_platform()
    assert [t for t in manifest["targets"] if _bootstrap.target_fits(t, where)]


# --- the proxy and the other commands, run from the pyz -----------------------------------------------


def test_serve_records_then_strict_replay_gives_the_same_bytes(runner, servers, upstream, tmp_path):
    db = tmp_path / "vcr.db"
    recorder = runner.start("--port", "0", "--db", str(db), "--upstream", upstream.url, "--mode", "record")
    servers.append(recorder)
    recorded, headers = post(recorder.url, "Hello from the pyz")
    assert headers.get("x-vcr-outcome") == "recording" and b"event: message_start" in recorded
    code, output = recorder.stop()
    assert code == 0, output
    upstream.stop()

    replayer = runner.start(
        "--port", "0", "--db", str(db), "--upstream", unreachable_url(), "--mode", "replay"
    )
    servers.append(replayer)
    replayed, headers = post(replayer.url, "Hello from the pyz")
    assert headers.get("x-vcr-outcome") == "hit"
    assert replayed == recorded
    missed, headers = post(replayer.url, "Never recorded")
    assert headers.get("x-vcr-outcome") == "miss" and b"no recording" in missed
    assert replayer.stop()[0] == 0
    assert len(upstream.calls) == 1


def test_a_large_request_is_keyed_in_the_worker_process_of_the_pyz(runner, servers, upstream, tmp_path):
    """The worker is spawned from the pyz: it imports from the zip and loads zstandard as the pyz does."""
    text = "a long question " * 20_000  # 320 KB: keyed, excerpted and screened in the worker process
    recorder = runner.start(
        "--port", "0", "--db", str(tmp_path / "vcr.db"), "--upstream", upstream.url, "--mode", "record"
    )
    servers.append(recorder)
    _, headers = post(recorder.url, text, stream=False)
    assert headers.get("x-vcr-outcome") == "recorded"
    sent = {"model": "claude-opus-5-5", "max_tokens": 64, "stream": False}
    sent["messages"] = [{"role": "user", "content": text}]  # what `post` sends, in its order
    assert headers["x-vcr-key"] == key_request("POST", "/v1/messages", "", json.dumps(sent).encode()).key
    code, output = recorder.stop()
    assert code == 0 and "Traceback" not in output and "in a thread" not in output, output


def test_a_miss_under_replace_rules_is_diagnosed_in_the_worker_process_of_the_pyz(
    runner, servers, upstream, tmp_path
):
    """Stored rules with a pattern of their own are applied to stored requests in the worker, spawned from the
    pyz: it imports the diagnosis from the zip."""
    db, rules = tmp_path / "vcr.db", tmp_path / "rules.json"
    rules.write_text(json.dumps({"ignore": ["metadata"], "replace": [{"pattern": r"\d{4}", "with": "<N>"}]}))
    recorder = runner.start(
        "--port", "0", "--db", str(db), "--upstream", upstream.url, "--mode", "record", "--rules", str(rules)
    )
    servers.append(recorder)
    assert post(recorder.url, "the llamas of 2024", stream=False)[1].get("x-vcr-outcome") == "recorded"
    assert recorder.stop()[0] == 0
    replayer = runner.start("--port", "0", "--db", str(db), "--upstream", unreachable_url(), "--mode", "replay")
    servers.append(replayer)
    assert post(replayer.url, "the llamas of 1999", stream=False)[1].get("x-vcr-outcome") == "hit"  # <N> both
    missed, headers = post(replayer.url, "the camels of 2024", stream=False)
    assert headers.get("x-vcr-outcome") == "miss"
    assert "Closest recordings" in json.loads(missed)["error"]["message"]
    assert "«camels»" in json.loads(missed)["error"]["message"]
    code, output = replayer.stop()
    assert code == 0 and "Traceback" not in output and "in a thread" not in output, output


@pytest.fixture
def recorded_db(runner, servers, upstream, tmp_path) -> Path:
    """A db with one streamed exchange in cassette `basic_tests`, recorded by the pyz."""
    db = tmp_path / "recorded.db"
    recorder = runner.start(
        "--port",
        "0",
        "--db",
        str(db),
        "--upstream",
        upstream.url,
        "--mode",
        "record",
        "--cassette",
        "basic_tests",
    )
    servers.append(recorder)
    post(recorder.url, "Hello for the other commands")
    assert recorder.stop()[0] == 0
    return db


def run_ok(runner: Runner, *args: str) -> str:
    result = runner.run(*args)
    assert result.returncode == 0, (
        f"`claude-vcr {' '.join(args)}` exited {result.returncode}: {result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result.stdout


def test_stats_from_the_pyz(runner, recorded_db):
    output = run_ok(runner, "stats", "--db", str(recorded_db))
    assert "basic_tests" in output and re.search(r"\b1\b", output)
    output = run_ok(runner, "stats", "--db", str(recorded_db), "--cassette", "basic_tests")
    assert re.search(r"\b1\b", output)


def test_list_from_the_pyz(runner, recorded_db):
    output = run_ok(runner, "list", "--db", str(recorded_db))
    assert "basic_tests" in output


def test_ui_serves_its_pages_and_files_from_the_pyz(runner, recorded_db):
    """`claude-vcr ui` from the single file: HTML built from the db, the stylesheet and script as package data."""
    process = subprocess.Popen(
        runner.command("ui", "--db", str(recorded_db), "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=runner.cwd,
        env=runner.env(),
    )
    try:
        banner = process.stdout.readline()
        match = re.search(r"claude-vcr ui on (http://127\.0\.0\.1:\d+/)", banner)
        assert match, banner + process.stdout.read()
        pages = {}
        for path in ("", "c/basic_tests", "static/ui.css", "static/ui.js"):
            with urllib.request.urlopen(match.group(1) + path, timeout=30) as response:
                pages[path] = (response.headers["Content-Type"], response.read().decode())
        assert "basic_tests" in pages[""][1] and "Hello for the other commands" in pages["c/basic_tests"][1]
        assert pages["static/ui.css"][0].startswith("text/css") and "--accent" in pages["static/ui.css"][1]
        assert pages["static/ui.js"][0].startswith("text/javascript") and "data-filter" in pages["static/ui.js"][1]
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in rest, rest


def test_export_then_import_from_the_pyz(runner, recorded_db, tmp_path):
    exported = tmp_path / "exported"
    run_ok(runner, "export", str(exported), "--db", str(recorded_db))
    assert exported.exists() and any(p.is_file() for p in exported.rglob("*"))
    copy = tmp_path / "copy.db"
    run_ok(runner, "import", str(exported), "--db", str(copy))
    assert "basic_tests" in run_ok(runner, "list", "--db", str(copy))


def test_import_of_a_mitmproxy_dump_from_the_pyz(runner, tmp_path):
    from tests.support.mitm import flow_state, tnetstring

    dump = tmp_path / "dump.mitm"
    dump.write_bytes(tnetstring(flow_state()))
    db = tmp_path / "imported.db"
    run_ok(runner, "import", str(dump), "--db", str(db))
    assert "/v1/messages" in run_ok(runner, "list", "--db", str(db))


def test_extract_writes_once_and_prunes_old_builds_and_leftovers(tmp_path):
    archive = tmp_path / "bundle.zip"
    payload = os.urandom(5000)
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("_native/t/mod.so", payload)
    entry = {"member": "_native/t/mod.so", "size": len(payload)}
    root = tmp_path / "cache"
    old, recent = root / "pyz-0.0.1-old", root / "pyz-0.0.2-recent"
    old.mkdir(parents=True)
    recent.mkdir()
    folder = root / "pyz-0.1.0-new" / "t"
    folder.mkdir(parents=True)
    leftover = folder / ".extracting-dead"
    leftover.write_bytes(b"half")
    month_ago = time.time() - 40 * 86400
    os.utime(old, (month_ago, month_ago))
    os.utime(leftover, (month_ago, month_ago))

    location = Path(_bootstrap.extract(str(archive), entry, str(folder)))
    assert location == folder / "mod.so" and location.read_bytes() == payload
    assert not old.exists() and recent.exists() and not leftover.exists()
    inode = location.stat().st_ino
    assert Path(_bootstrap.extract(str(archive), entry, str(folder))).stat().st_ino == inode


def test_cache_folder_follows_the_platform_conventions(monkeypatch, tmp_path):
    monkeypatch.setenv(_bootstrap.CACHE_ENV, str(tmp_path / "explicit"))
    assert _bootstrap.cache_root() == str(tmp_path / "explicit")
    monkeypatch.delenv(_bootstrap.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert _bootstrap.cache_root() == str(tmp_path / "xdg" / "claude-vcr")


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership")
def test_temp_fallback_is_private(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = Path(_bootstrap._private_temp_root())
    assert root.parent == tmp_path and root.stat().st_mode & 0o777 == 0o700
    root.chmod(0o777)
    with pytest.raises(OSError, match="others can write"):
        _bootstrap._private_temp_root()


# --- one file for every Python ------------------------------------------------------------------------

PYTHONS = {v: build_zipapp.find_python(v) for v in build_zipapp.DEFAULT_PYTHONS}


@pytest.mark.parametrize("version", [v for v, exe in PYTHONS.items() if exe])
def test_the_same_file_records_and_replays_on_each_python(version, pyz, upstream, servers, tmp_path):
    """Every CPython found on this machine (pyenv provides 3.10, 3.12 and 3.13) runs the default build from
    its own bytecode tree and its own zstandard module."""
    venv = tmp_path / "venv"
    subprocess.run([PYTHONS[version], "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    runner = Runner(str(venv / "bin" / "python"), pyz, tmp_path)
    probe = runner.probe("import sys; report(code=run_pyz('--help'), version='%d.%d' % sys.version_info[:2])")
    assert probe["code"] == 0 and probe["version"] == version and probe["foreign"] == []
    tag = f"cp{version.replace('.', '')}"
    assert probe["modules"]["claude_vcr.cli"].endswith(f"/_pyc/{tag}/claude_vcr/cli.pyc")
    db = tmp_path / "vcr.db"
    recorder = runner.start("--port", "0", "--db", str(db), "--upstream", upstream.url, "--mode", "record")
    servers.append(recorder)
    recorded, headers = post(recorder.url, f"Hello from {version}")
    assert headers.get("x-vcr-outcome") == "recording", recorded  # a stream: stored once it has ended
    assert recorder.stop()[0] == 0
    replayer = runner.start("--port", "0", "--db", str(db), "--upstream", unreachable_url(), "--mode", "replay")
    servers.append(replayer)
    replayed, headers = post(replayer.url, f"Hello from {version}")
    assert headers.get("x-vcr-outcome") == "hit" and replayed == recorded
    assert replayer.stop()[0] == 0
    assert list(runner.cache.glob(f"pyz-*/{tag}-*/backend_c.*"))


def test_an_unwritable_cache_folder_is_one_message(runner, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {**runner.env(), _bootstrap.CACHE_ENV: str(blocker / "cache")}
    result = subprocess.run(
        runner.command("serve", "--port", "0", "--db", str(tmp_path / "vcr.db")),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("claude-vcr could not copy its native module zstandard.backend_c")
    assert f"Point {_bootstrap.CACHE_ENV} at a writable folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
