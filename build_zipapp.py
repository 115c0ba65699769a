#!/usr/bin/env python3
"""Build dist/claude-vcr.pyz: one file that runs claude-vcr where nothing but CPython is installed.

    python3 build_zipapp.py                      # for CPython 3.10 to 3.13 on this platform
    python3 build_zipapp.py --python-version 3.12 --platform manylinux_2_17_x86_64 \\
                            --python-version 3.11 --platform macosx_11_0_arm64
    python3 build_zipapp.py --update-lock        # re-resolve the pinned dependency versions below

The pyz holds the `claude_vcr` package (the `vcr/` folder, with `migrations/` as `claude_vcr.migrations`), every runtime dependency as
pure Python (aiohttp, multidict, yarl, frozenlist and propcache from their py3-none-any wheels, whose
code falls back to Python when the C speedups are absent), and zstandard's C module once per target
under `_native/`, which `vcr/_bootstrap.py` copies to a cache folder on first use. Dependencies are the
versions in LOCK, fetched with `pip download` into `.cache/zipapp/` once; later builds are offline.
The same checkout and LOCK give a byte-identical file: sorted entries, fixed timestamps and modes,
hash-based .pyc files. zipimport looks for `x.pyc` beside `x.py` only, so one folder holds bytecode for one
Python: each target version gets its own sourceless tree `_pyc/cpXY/`, compiled by that version's
interpreter (found on PATH or under pyenv), which `__main__.py` puts first on sys.path; the sources at the
top serve a version without a tree (slower start). Native modules are stripped of debug info (`strip
--strip-debug`, when the build machine has it): zstandard's .so is 11.6 MB with it, 1 MB without.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import itertools
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
except ModuleNotFoundError:  # pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent


def _load_bootstrap():  # the tag logic the pyz itself uses at start-up; loaded by path, nothing installed
    spec = importlib.util.spec_from_file_location("claude_vcr_bootstrap", REPO / "vcr" / "_bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and NamedTuples look their module up
    spec.loader.exec_module(module)
    return module


_bootstrap = _load_bootstrap()

DEFAULT_OUTPUT = REPO / "dist" / "claude-vcr.pyz"
DEFAULT_CACHE = REPO / ".cache" / "zipapp"
LATEST_PYTHON = (3, 14)
DEFAULT_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
"""What `python3 build_zipapp.py` targets without --python-version: every CPython people run today."""
SHEBANG = b"#!/usr/bin/env python3\n"
EPOCH = (1980, 1, 1, 0, 0, 0)
PYC_LABEL = "claude-vcr.pyz"

EXCLUDED = {
    "pip": "sqlite-utils declares it but never imports it",
    "click-default-group": "only sqlite-utils' own command line (sqlite_utils.cli) imports it",
    "tabulate": "only sqlite-utils' own command line (sqlite_utils.cli) imports it",
    "tzdata": "python-dateutil imports it only to look up a time zone the OS lacks; claude-vcr never asks",
}
DROPPED_FILES = {
    "sqlite_utils/cli.py": "sqlite-utils' own command line; needs the excluded tabulate, click-default-group",
    "sqlite_utils/__main__.py": "runs sqlite_utils.cli",
    "zstandard/backend_cffi.py": "the CFFI backend, used on PyPy only; CPython loads backend_c",
}
PURE_FALLBACK = ("aiohttp", "frozenlist", "multidict", "propcache", "yarl")
"""Packages with optional C speedups: the pyz carries their py3-none-any wheel, whose code runs without."""
NATIVE = {"zstandard": ("zstandard/backend_c.",)}
"""Packages without a pure-Python fallback: per target, the members that are extracted and loaded."""
SKIPPED_SUFFIXES = (".pyx", ".pxd", ".pxi", ".c", ".h", ".pyi", ".so", ".pyd", ".dll", ".dylib", ".lib")
SKIPPED_NAMES = ("py.typed", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json")

# BEGIN LOCK: `python3 build_zipapp.py --update-lock` rewrites this block. Keyed by the oldest Python
# version a pyz targets: one pyz holds one version of each package, so it must suit its oldest target.
LOCK: dict[str, dict[str, str]] = {
    "3.10": {
        "aiohappyeyeballs": "2.7.1",
        "aiohttp": "3.14.5",
        "aiosignal": "1.4.0",
        "async-timeout": "5.0.1",
        "attrs": "26.1.0",
        "click": "8.5.1",
        "frozenlist": "1.8.0",
        "idna": "3.20",
        "multidict": "7.1.0",
        "pluggy": "1.7.0",
        "propcache": "0.5.4",
        "python-dateutil": "3.0.0",
        "six": "1.17.0",
        "sqlite-fts4": "1.0.3",
        "sqlite-utils": "4.2.1",
        "typing-extensions": "4.16.0",
        "yarl": "1.25.1",
        "zstandard": "0.25.0",
    },
    "3.11": {
        "aiohappyeyeballs": "2.7.1",
        "aiohttp": "3.14.5",
        "aiosignal": "1.4.0",
        "attrs": "26.1.0",
        "click": "8.5.1",
        "frozenlist": "1.8.0",
        "idna": "3.20",
        "multidict": "7.2.1",
        "pluggy": "1.7.0",
        "propcache": "0.5.4",
        "python-dateutil": "4.0.0",
        "sqlite-fts4": "1.0.3",
        "sqlite-utils": "4.2.1",
        "typing-extensions": "4.16.0",
        "yarl": "1.25.1",
        "zstandard": "0.25.0",
    },
    "3.12": {
        "aiohappyeyeballs": "2.7.1",
        "aiohttp": "3.14.5",
        "aiosignal": "1.4.0",
        "attrs": "26.1.0",
        "click": "8.5.1",
        "frozenlist": "1.8.0",
        "idna": "3.20",
        "multidict": "7.2.1",
        "pluggy": "1.7.0",
        "propcache": "0.5.4",
        "python-dateutil": "4.0.0",
        "sqlite-fts4": "1.0.3",
        "sqlite-utils": "4.2.1",
        "typing-extensions": "4.16.0",
        "yarl": "1.25.1",
        "zstandard": "0.25.0",
    },
    "3.13": {
        "aiohappyeyeballs": "2.7.1",
        "aiohttp": "3.14.5",
        "aiosignal": "1.4.0",
        "attrs": "26.1.0",
        "click": "8.5.1",
        "frozenlist": "1.8.0",
        "idna": "3.20",
        "multidict": "7.2.1",
        "pluggy": "1.7.0",
        "propcache": "0.5.4",
        "python-dateutil": "4.0.0",
        "sqlite-fts4": "1.0.3",
        "sqlite-utils": "4.2.1",
        "yarl": "1.25.1",
        "zstandard": "0.25.0",
    },
    "3.14": {
        "aiohappyeyeballs": "2.7.1",
        "aiohttp": "3.14.5",
        "aiosignal": "1.4.0",
        "attrs": "26.1.0",
        "click": "8.5.1",
        "frozenlist": "1.8.0",
        "idna": "3.20",
        "multidict": "7.2.1",
        "pluggy": "1.7.0",
        "propcache": "0.5.4",
        "python-dateutil": "4.0.0",
        "sqlite-fts4": "1.0.3",
        "sqlite-utils": "4.2.1",
        "yarl": "1.25.1",
        "zstandard": "0.25.0",
    },
}
# END LOCK


class BuildError(Exception):
    """Something the person building has to fix; the message says what."""


@dataclass(frozen=True)
class WheelFile:
    """A wheel in the download cache, named as PEP 427 says."""

    path: Path
    name: str
    version: str
    pythons: tuple[str, ...]
    abis: tuple[str, ...]
    platforms: tuple[str, ...]

    @classmethod
    def parse(cls, path: Path) -> WheelFile:
        parts = path.name[: -len(".whl")].split("-")
        if len(parts) not in (5, 6):
            raise BuildError(f"{path.name} is not a wheel file name")
        python, abi, plat = (tag.split(".") for tag in parts[-3:])
        return cls(path, canonicalize_name(parts[0]), parts[1], tuple(python), tuple(abi), tuple(plat))

    @property
    def pure(self) -> bool:
        return self.abis == ("none",) and self.platforms == ("any",)

    @property
    def tag(self) -> str:
        return "-".join(".".join(t) for t in (self.pythons, self.abis, self.platforms))

    def read(self) -> dict[str, bytes]:
        with zipfile.ZipFile(self.path) as wheel:
            return {info.filename: wheel.read(info) for info in wheel.infolist() if not info.is_dir()}

    def metadata(self) -> Metadata:
        with zipfile.ZipFile(self.path) as wheel:
            member = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            message = BytesParser().parsebytes(wheel.read(member), headersonly=True)
        return Metadata(
            name=canonicalize_name(message["Name"]),
            display_name=message["Name"],
            version=message["Version"],
            requires_python=SpecifierSet(message.get("Requires-Python") or ""),
            requires=tuple(Requirement(r) for r in message.get_all("Requires-Dist") or ()),
        )


@dataclass(frozen=True)
class Metadata:
    name: str
    display_name: str
    version: str
    requires_python: SpecifierSet
    requires: tuple[Requirement, ...]


@dataclass(frozen=True)
class Target:
    """A CPython version and platform the pyz bundles native code for; platform None is this machine's."""

    python: str
    platform: str | None = None

    @property
    def where(self) -> _bootstrap.Platform:
        return (
            _bootstrap.running_platform()
            if self.platform is None
            else _bootstrap.platform_from_tag(self.platform)
        )

    @property
    def nodot(self) -> str:
        return self.python.replace(".", "")

    def marker_env(self) -> dict[str, str]:
        return marker_env(self.python, self.where)

    def fits(self, wheel: WheelFile) -> bool:
        cp = f"cp{self.nodot}"
        abi_ok = cp in wheel.abis or (
            "abi3" in wheel.abis and any(p.startswith("cp3") for p in wheel.pythons)
        )
        return (
            cp in wheel.pythons
            and abi_ok
            and any(_bootstrap.tag_fits(t, self.where) for t in wheel.platforms)
        )

    def __str__(self) -> str:
        return f"CPython {self.python} on {self.platform or 'this platform'}"


def _package_folder(package: str, dirs: dict[str, str]) -> str:
    """Where setuptools finds a package: its own package-dir entry, else its nearest mapped parent's."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        parent = ".".join(parts[:i])
        if parent in dirs:
            return "/".join((dirs[parent], *parts[i:]))
    return "/".join(parts)


def marker_env(python: str, where: _bootstrap.Platform) -> dict[str, str]:
    """PEP 508 marker values for a target, so dependencies are chosen for it rather than for the builder."""
    systems = {"linux": ("linux", "Linux", "posix"), "macosx": ("darwin", "Darwin", "posix")}
    sys_platform, system, os_name = systems.get(where.system, ("win32", "Windows", "nt"))
    machine = where.machine.upper() if where.system == "win" else where.machine
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "sys_platform": sys_platform,
        "platform_system": system,
        "os_name": os_name,
        "platform_machine": machine,
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def applies(requirement: Requirement, env: dict[str, str]) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(env)


@dataclass(frozen=True)
class Project:
    """What pyproject.toml says about the package: its name, version, requirements and source folders."""

    name: str
    version: str
    requirements: tuple[Requirement, ...]
    packages: dict[str, Path]
    min_python: str

    @classmethod
    def load(cls, root: Path) -> Project:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError as error:
                raise BuildError("building on Python 3.10 needs `pip install tomli`") from error
        config = tomllib.loads((root / "pyproject.toml").read_text())
        project = config["project"]
        setuptools = config.get("tool", {}).get("setuptools", {})
        dirs = setuptools.get("package-dir", {})
        packages = {p: root / _package_folder(p, dirs) for p in setuptools.get("packages", [])}
        minimum = re.search(r">=\s*(3\.\d+)", project.get("requires-python", ">=3.10"))
        return cls(
            name=project["name"],
            version=project["version"],
            requirements=tuple(Requirement(r) for r in project["dependencies"]),
            packages=packages,
            min_python=minimum.group(1) if minimum else "3.10",
        )

    def files(self) -> Iterator[tuple[str, bytes]]:
        """(name in the zip, content) of every package file, subpackages included, as a wheel holds them."""
        for package, folder in sorted(self.packages.items()):
            if not (folder / "__init__.py").is_file():
                raise BuildError(f"package {package} has no {folder / '__init__.py'}")
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder)
                hidden = any(p.startswith(".") or p == "__pycache__" for p in relative.parts)
                if hidden or path.is_dir() or path.suffix in (".pyc", ".pyo"):
                    continue
                dirs = relative.parent.parts
                if not all(
                    (folder.joinpath(*dirs[:i]) / "__init__.py").is_file() for i in range(1, len(dirs) + 1)
                ):
                    continue
                subpackage = ".".join((package, *dirs))
                if subpackage not in self.packages:
                    warn(f"{subpackage} is not listed in pyproject.toml's packages: a wheel would miss it")
                yield "/".join((*package.split("."), *relative.parts)), path.read_bytes()

    def metadata_files(self) -> dict[str, bytes]:
        """A minimal dist-info, so importlib.metadata.version('claude-vcr') works inside the pyz."""
        folder = f"{self.name.replace('-', '_')}-{self.version}.dist-info"
        text = f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}\n"
        return {f"{folder}/METADATA": text.encode()}


_warned: set[str] = set()


def warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


class WheelCache:
    """Wheels downloaded once into the cache folder with `pip download`; builds after that are offline."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "wheels"
        self.folder.mkdir(parents=True, exist_ok=True)

    def wheels(self) -> list[WheelFile]:
        return sorted((WheelFile.parse(p) for p in self.folder.glob("*.whl")), key=lambda w: w.path.name)

    def find_pure(self, name: str, version: str) -> WheelFile | None:
        return next((w for w in self.wheels() if (w.name, w.version) == (name, version) and w.pure), None)

    def find_native(self, name: str, version: str, target: Target) -> WheelFile | None:
        """The cached wheel for the target; of several, the one for the newest platform (as pip picks)."""
        fits = [w for w in self.wheels() if (w.name, w.version) == (name, version) and target.fits(w)]
        return max(fits, key=lambda w: (newest_platform(w), w.path.name), default=None)

    def download(
        self, requirements: Iterable[str], python: str, platform: str | None, pure: bool
    ) -> list[WheelFile]:
        """Fetch wheels (no dependencies) for one tag set; returns what was fetched, now in the cache."""
        requirements = sorted(set(requirements))
        if not requirements:
            return []
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "--python-version", python]
        if pure:
            command += ["--platform", "any", "--implementation", "py", "--abi", "none"]
        else:
            command += ["--implementation", "cp"] + (["--platform", platform] if platform else [])
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=".download-") as temp:
            print(
                f"pip download {' '.join(requirements)} (Python {python}{', ' + platform if platform else ''})"
            )
            result = subprocess.run([*command, "--dest", temp, *requirements], capture_output=True, text=True)
            if result.returncode != 0:
                noise = "WARNING: Location"
                output = "\n".join(line for line in result.stderr.splitlines() if noise not in line)
                raise BuildError(f"pip download failed for {' '.join(requirements)}:\n{output.strip()}")
            fetched = []
            for path in sorted(Path(temp).glob("*.whl")):
                destination = self.folder / path.name
                os.replace(path, destination)
                fetched.append(WheelFile.parse(destination))
        return fetched


def newest_platform(wheel: WheelFile) -> tuple[int, int]:
    return max(_bootstrap.platform_from_tag(tag).version for tag in wheel.platforms)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def pythons_from(oldest: str) -> list[str]:
    major, minor = (int(p) for p in oldest.split("."))
    return [f"{major}.{m}" for m in range(minor, LATEST_PYTHON[1] + 1)] if major == 3 else [oldest]


def resolve(project: Project, cache: WheelCache, oldest: str) -> dict[str, str]:
    """The newest versions that satisfy every requirement on Linux, macOS and Windows, for Python `oldest`
    and later: a small resolver over wheel metadata, since pip judges markers by the interpreter it runs on."""
    envs = [
        marker_env(python, _bootstrap.platform_from_tag(tag))
        for python in pythons_from(oldest)
        for tag in ("manylinux_2_17_x86_64", "macosx_11_0_arm64", "win_amd64")
    ]
    chosen: dict[str, Metadata] = {}
    for _round in range(30):
        specs: dict[str, SpecifierSet] = {}
        seen: list[str] = []
        stack = list(project.requirements)
        while stack:
            requirement = stack.pop()
            if not any(applies(requirement, env) for env in envs):
                continue
            name = canonicalize_name(requirement.name)
            if name in EXCLUDED:
                continue
            specs[name] = specs.get(name, SpecifierSet()) & requirement.specifier
            if name in chosen and name not in seen:
                seen.append(name)
                stack.extend(chosen[name].requires)
        stale = sorted(n for n in specs if n not in chosen or not specs[n].contains(chosen[n].version, True))
        if not stale:
            return {name: chosen[name].version for name in sorted(seen)}
        pure = [f"{n}{specs[n]}" for n in stale if n not in NATIVE]
        native = [f"{n}{specs[n]}" for n in stale if n in NATIVE]
        for wheel in cache.download(pure, oldest, None, pure=True) + cache.download(
            native, oldest, None, pure=False
        ):
            chosen[wheel.name] = wheel.metadata()
    raise BuildError("dependency resolution did not settle; pin the troublesome package by hand in LOCK")


def update_lock(project: Project, cache: WheelCache) -> None:
    """Re-resolve LOCK for every Python version from requires-python on, and rewrite it in this file."""
    lock = {python: resolve(project, cache, python) for python in pythons_from(project.min_python)}
    lines = ["LOCK: dict[str, dict[str, str]] = {"]
    for python, pins in lock.items():
        lines.append(f'    "{python}": {{')
        lines += [f'        "{name}": "{version}",' for name, version in pins.items()]
        lines.append("    },")
    lines.append("}")
    source = Path(__file__).read_text()
    block = re.compile(r"^LOCK: .*?(?=^# END LOCK$)", re.S | re.M)
    updated, count = block.subn(lambda _: "\n".join(lines) + "\n", source, count=1)
    if count != 1:
        raise BuildError("could not find the LOCK block in build_zipapp.py")
    Path(__file__).write_text(updated)
    for python, pins in lock.items():
        print(f"Python {python}+: " + ", ".join(f"{n} {v}" for n, v in pins.items()))


@dataclass
class Bundle:
    """Everything that goes into the zip, by name, and what the manifest says about it."""

    files: dict[str, bytes] = field(default_factory=dict)
    dependencies: dict[str, Metadata] = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)

    def add(self, name: str, data: bytes, owner: str) -> None:
        if name in self.files and self.files[name] != data:
            raise BuildError(f"{name} from {owner} clashes with a file of the same name from another package")
        self.files[name] = data


def wanted_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if ".data/" in name or base in SKIPPED_NAMES or name.endswith(SKIPPED_SUFFIXES):
        return False
    return "/__pycache__/" not in name and name not in DROPPED_FILES


def collect(project: Project, cache: WheelCache, targets: list[Target]) -> Bundle:
    """Walk the requirements for each target with the pinned versions, and gather their files."""
    oldest = min((t.python for t in targets), key=version_tuple)
    pins = LOCK.get(oldest)
    if pins is None:
        known = ", ".join(LOCK) or "none"
        raise BuildError(f"LOCK has no versions for Python {oldest} (it has: {known}); run --update-lock")
    missing_pure = [f"{n}=={v}" for n, v in pins.items() if n not in NATIVE and not cache.find_pure(n, v)]
    cache.download(missing_pure, oldest, None, pure=True)
    bundle = Bundle()
    native_wheels: dict[tuple[str, Target], WheelFile] = {}
    for target in targets:
        env = target.marker_env()
        stack = list(project.requirements)
        while stack:
            requirement = stack.pop()
            name = canonicalize_name(requirement.name)
            if not applies(requirement, env) or name in EXCLUDED:
                continue
            version = pins.get(name)
            if version is None:
                raise BuildError(
                    f"{name} ({requirement}) is not in LOCK for Python {oldest}; run --update-lock"
                )
            if not requirement.specifier.contains(version, True):
                raise BuildError(
                    f"LOCK pins {name} {version}, but {requirement} is required; run --update-lock"
                )
            if name in NATIVE:
                wheel = native_wheels.get((name, target)) or fetch_native(cache, name, version, target)
                native_wheels[(name, target)] = wheel
            else:
                wheel = cache.find_pure(name, version)
                if wheel is None:
                    raise BuildError(f"no py3-none-any wheel of {name} {version} in {cache.folder}")
            metadata = wheel.metadata()
            if not metadata.requires_python.contains(target.python, True):
                raise BuildError(
                    f"{name} {version} needs Python {metadata.requires_python}, not {target.python}"
                )
            if name not in bundle.dependencies:
                bundle.dependencies[name] = metadata
                add_wheel_files(bundle, wheel)
            stack.extend(metadata.requires)
    for (name, target), wheel in sorted(native_wheels.items(), key=lambda item: (item[0][0], item[1].tag)):
        add_native(bundle, name, wheel, target)
    return bundle


def fetch_native(cache: WheelCache, name: str, version: str, target: Target) -> WheelFile:
    wheel = cache.find_native(name, version, target)
    if wheel is None:
        cache.download([f"{name}=={version}"], target.python, target.platform, pure=False)
        wheel = cache.find_native(name, version, target)
    if wheel is None:
        raise BuildError(f"no {name} {version} wheel for {target} on the package index")
    return wheel


def add_wheel_files(bundle: Bundle, wheel: WheelFile) -> None:
    native_prefixes = NATIVE.get(wheel.name, ())
    for name, data in sorted(wheel.read().items()):
        if wanted_file(name) and not name.startswith(native_prefixes):
            bundle.add(name, data, wheel.path.name)


def add_native(bundle: Bundle, name: str, wheel: WheelFile, target: Target) -> None:
    """Put the target's native members under _native/<tag>/ and describe them for the bootstrap."""
    target_id = wheel.tag
    entry = next((t for t in bundle.targets if t["id"] == target_id), None)
    if entry is None:
        entry = {"id": target_id, "python": target.python, "platforms": list(wheel.platforms), "native": {}}
        bundle.targets.append(entry)
    prefixes = NATIVE[name]
    for member, data in sorted(wheel.read().items()):
        if not member.startswith(prefixes) or not member.endswith((".so", ".pyd")):
            same = bundle.files.get(member, data).replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
            if member.endswith(".py") and wanted_file(member) and not same:
                raise BuildError(f"{member} differs between the {name} wheels of the targets")
            continue
        module = member.split("/")[0] + "." + member.rsplit("/", 1)[1].split(".")[0]
        location = f"_native/{target_id}/{member.rsplit('/', 1)[1]}"
        data = strip_debug_info(data)
        bundle.add(location, data, wheel.path.name)
        digest = hashlib.sha256(data).hexdigest()
        entry["native"][module] = {"member": location, "size": len(data), "sha256": digest}


def strip_debug_info(data: bytes) -> bytes:
    """An ELF module without its debug sections (what pip's wheels ship is built with them): the same code,
    a tenth of the size. Unchanged when the build machine has no `strip` or the file is not ELF."""
    tool = shutil.which("strip")
    if not data.startswith(b"\x7fELF") or tool is None:
        if data.startswith(b"\x7fELF"):
            warn("no `strip` on this machine (binutils): native modules keep their debug info (a larger pyz)")
        return data
    with tempfile.TemporaryDirectory(prefix="claude-vcr-strip-") as temp:
        path = Path(temp) / "module.so"
        path.write_bytes(data)
        result = subprocess.run([tool, "--strip-debug", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            warn(f"strip failed ({result.stderr.strip()}): native modules keep their debug info")
            return data
        return path.read_bytes()


COMPILER = """
import importlib.util, marshal, pickle, sys
label, sources = pickle.load(sys.stdin.buffer)
out = {}
for name, source in sources.items():
    try:
        code = compile(source, label + "/" + name, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        continue
    flags = (1).to_bytes(4, "little")
    out[name] = importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)
pickle.dump(out, sys.stdout.buffer, protocol=4)
"""
"""Run by each target's interpreter: .py sources in, unchecked hash-based .pyc out (as `bytecode` below)."""


def find_python(version: str) -> str | None:
    """A CPython `version` interpreter on this machine: this one, `pythonX.Y` on PATH, or pyenv's."""
    if _bootstrap.python_version() == version and sys.implementation.name == "cpython":
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), key=lambda p: p.parent.parent.name)
    candidates += [str(p) for p in reversed(found)]
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"
    for candidate in filter(None, candidates):
        try:
            result = subprocess.run([candidate, "-I", "-c", probe], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.split() == [version, "cpython"]:
            return candidate
    return None


def compile_tree(version: str, sources: dict[str, bytes]) -> dict[str, bytes] | None:
    """Name -> .pyc for Python `version`, compiled by that interpreter; None when none is found."""
    import pickle

    if _bootstrap.python_version() == version:
        return {name: pyc for name, data in sources.items() if (pyc := bytecode(name, data)) is not None}
    python = find_python(version)
    if python is None:
        return None
    # a fixed hash seed: Python 3.10 writes set constants in hash order, so a random seed varies the bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [python, "-s", "-c", COMPILER],
        input=pickle.dumps((PYC_LABEL, sources), protocol=4),
        capture_output=True,
        env=env,
    )
    if result.returncode != 0:
        raise BuildError(f"compiling with {python} failed:\n{result.stderr.decode(errors='replace')}")
    return pickle.loads(result.stdout)


def bytecode(name: str, source: bytes) -> bytes | None:
    """An unchecked hash-based .pyc: zipimport loads it without compiling, and it has no timestamp."""
    try:
        code = compile(source, f"{PYC_LABEL}/{name}", "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        return None
    flags = (0b01).to_bytes(4, "little")
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + marshal.dumps(code)


def manifest(project: Project, bundle: Bundle, compiled_for: list[str]) -> dict:
    native_digest = hashlib.sha256()
    for target in sorted(bundle.targets, key=lambda t: t["id"]):
        for module, entry in sorted(target["native"].items()):
            native_digest.update(f"{target['id']} {module} {entry['sha256']}\n".encode())
    notes = {n: "pure-Python build" for n in PURE_FALLBACK} | dict.fromkeys(
        NATIVE, "C module, copied out on first use"
    )
    return {
        "format": 1,
        "name": project.name,
        "version": project.version,
        "build_id": f"{project.version}-{native_digest.hexdigest()[:12]}",
        "bytecode_for": compiled_for,
        "targets": sorted(bundle.targets, key=lambda t: t["id"]),
        "dependencies": [
            {"name": m.display_name, "version": m.version, "note": notes.get(n, "")}
            for n, m in sorted(bundle.dependencies.items())
        ],
        "excluded": EXCLUDED,
    }


def write_zip(files: dict[str, bytes], output: Path) -> None:
    """A zip with fixed timestamps and modes in sorted order, behind a shebang line; written atomically."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = EPOCH
    if epoch:
        import time

        stamp = max(EPOCH, tuple(time.gmtime(int(epoch))[:6]))
    folders = {"/".join(name.split("/")[:i]) + "/" for name in files for i in range(1, name.count("/") + 1)}
    output.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(folders | set(files)):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3
            if name.endswith("/"):
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name], compresslevel=9)
    handle, temp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    with os.fdopen(handle, "wb") as out:
        out.write(buffer.getvalue())
    os.chmod(temp, 0o755)
    os.replace(temp, output)


MAIN = '''"""claude-vcr as one file: see build_zipapp.py in the claude-vcr repository."""

import os
import sys

_tag = "cp%d%d" % sys.version_info[:2]
if _tag in {trees!r}:  # this Python's own bytecode, a sourceless tree, first on the path
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_pyc", _tag))

from claude_vcr._bootstrap import main

main()
'''
"""The pyz's entry point; {trees} is the tuple of `_pyc/cpXY` trees the build made."""


def build(output: Path, targets: list[Target], cache_folder: Path, compile_bytecode: bool = True) -> dict:
    """Build the pyz; returns its manifest."""
    project = Project.load(REPO)
    cache = WheelCache(cache_folder)
    for target in targets:
        if version_tuple(target.python) < version_tuple(project.min_python):
            raise BuildError(
                f"{project.name} needs Python {project.min_python} or later, not {target.python}"
            )
    bundle = collect(project, cache, targets)
    package_data = {}
    for name, data in project.files():
        bundle.add(name, data, "the checkout")
        if not name.endswith(".py"):
            package_data[name] = data
    for name, data in project.metadata_files().items():
        bundle.add(name, data, "the checkout")
    compiled_for: list[str] = []
    if compile_bytecode:
        sources = {n: d for n, d in bundle.files.items() if n.endswith(".py") and not n.startswith("_native/")}
        for python in sorted({t.python for t in targets}, key=version_tuple):
            tree = compile_tree(python, sources)
            if tree is None:
                warn(f"no CPython {python} found to compile its bytecode: on {python} the pyz compiles at each start")
                continue
            folder = f"_pyc/cp{python.replace('.', '')}/"
            for name, data in sources.items():
                if name in tree:
                    bundle.add(folder + name[:-3] + ".pyc", tree[name], "build_zipapp.py")
                else:  # does not compile on this version: importing it there fails as it would from source
                    bundle.add(folder + name, data, "build_zipapp.py")
            for name, data in package_data.items():  # read beside the module that loads them (ui.css...)
                bundle.add(folder + name, data, "the checkout")
            compiled_for.append(python)
    trees = tuple(f"cp{python.replace('.', '')}" for python in compiled_for)
    bundle.add("__main__.py", MAIN.format(trees=trees).encode(), "build_zipapp.py")
    info = manifest(project, bundle, compiled_for)
    bundle.add(
        _bootstrap.MANIFEST, (json.dumps(info, indent=1, sort_keys=True) + "\n").encode(), "build_zipapp.py"
    )
    write_zip(bundle.files, output)
    return info


def parse_targets(pythons: list[str], platforms: list[str]) -> list[Target]:
    for python in pythons:
        if not re.fullmatch(r"3\.\d+", python):
            raise BuildError(f"--python-version takes X.Y, like 3.12; not {python!r}")
    for tag in platforms:
        try:
            system = _bootstrap.platform_from_tag(tag).system
        except ValueError:
            system = ""
        if system not in ("linux", "macosx", "win"):
            raise BuildError(
                f"--platform takes a wheel platform tag such as manylinux_2_17_x86_64; not {tag!r}"
            )
    combos = itertools.product(pythons or DEFAULT_PYTHONS, platforms or [None])
    return [Target(python, platform) for python, platform in dict.fromkeys(combos)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="default: dist/claude-vcr.pyz"
    )
    parser.add_argument(
        "--python-version",
        action="append",
        default=[],
        metavar="X.Y",
        help=f"a target CPython (repeatable; default {', '.join(DEFAULT_PYTHONS)})",
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="TAG",
        help="a target wheel platform tag, e.g. manylinux_2_17_x86_64, macosx_11_0_arm64, win_amd64 (repeatable;"
        " every --python-version is built for every --platform)",
    )
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="download cache (default .cache/zipapp)"
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="leave out .pyc files (smaller, slower start)"
    )
    parser.add_argument("--update-lock", action="store_true", help="re-resolve LOCK in this file, then stop")
    args = parser.parse_args(argv)
    try:
        if args.update_lock:
            update_lock(Project.load(REPO), WheelCache(args.cache))
            return 0
        targets = parse_targets(args.python_version, args.platform)
        info = build(args.output, targets, args.cache, compile_bytecode=not args.no_compile)
    except BuildError as error:
        print(f"build_zipapp: {error}", file=sys.stderr)
        return 1
    size = args.output.stat().st_size
    print(f"{args.output}: {size / 1e6:.1f} MB, build {info['build_id']}")
    for target in info["targets"]:
        print(f"  for {_bootstrap.target_label(target)}")
    print("  with " + ", ".join(f"{d['name']} {d['version']}" for d in info["dependencies"]))
    print("  left out " + ", ".join(sorted(EXCLUDED)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
