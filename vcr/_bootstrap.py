"""Start-up of the single-file build (claude-vcr.pyz): check the target, then make native code loadable.

Python imports pure modules straight from a zip but cannot load an extension module (`.so`/`.pyd`)
from one. The pyz keeps everything importable in the zip except zstandard's C module, which it copies
out to a per-build cache folder the first time it is imported (write to a temp file, then rename, so
several processes starting at once are safe) and loads from there afterwards. Only the standard library
is used here, and nothing heavy: `--version` and the wrong-target message must not wait for click.
`build_zipapp.py` reuses the platform-tag matching below to pick wheels.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec
from typing import Any, NamedTuple

MANIFEST = "claude-vcr-pyz.json"
CACHE_ENV = "VCR_CACHE_DIR"
PRUNE_AFTER_DAYS = 30
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MAC_ARCHES = {
    "universal2": ("arm64", "x86_64"),
    "universal": ("x86_64", "i386", "ppc64", "ppc"),
    "intel": ("x86_64", "i386"),
}


class Platform(NamedTuple):
    """What a wheel platform tag is checked against: the running interpreter's or a build target's."""

    system: str  # "linux", "macosx", "win" or sysconfig's platform for anything else
    machine: str  # "x86_64", "aarch64", "arm64", "amd64", ...
    libc: str = ""  # "glibc" or "musl" on Linux
    version: tuple[int, int] = (0, 0)  # glibc, musl or macOS version


def running_platform() -> Platform:
    """The platform this interpreter runs on, in wheel-tag terms."""
    import sysconfig

    plat = sysconfig.get_platform()
    if sys.platform.startswith("linux"):
        machine = plat.split("-", 1)[1] if "-" in plat else os.uname().machine
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (ValueError, OSError):
            libc = ""
        if libc.startswith("glibc "):
            return Platform("linux", machine, "glibc", _two_ints(libc.split(" ", 1)[1]))
        return Platform("linux", machine, "musl", (1, 99))
    if sys.platform == "darwin":
        import platform

        return Platform("macosx", os.uname().machine, "", _two_ints(platform.mac_ver()[0] or "10.9"))
    if sys.platform == "win32":
        return Platform("win", plat.split("-", 1)[1] if "-" in plat else "32")
    return Platform(plat.replace("-", "_").replace(".", "_"), "")


def platform_from_tag(tag: str) -> Platform:
    """The oldest platform a wheel tag promises to run on (what `--platform TAG` asks the build for)."""
    head, _, rest = tag.partition("_")
    if head in _LEGACY_MANYLINUX:
        return Platform("linux", rest, "glibc", _LEGACY_MANYLINUX[head])
    if head in ("manylinux", "musllinux", "macosx"):
        major, minor, machine = rest.split("_", 2)
        libc = {"manylinux": "glibc", "musllinux": "musl"}.get(head, "")
        return Platform("linux" if libc else "macosx", machine, libc, (int(major), int(minor)))
    if head == "win":
        return Platform("win", rest)
    if tag == "win32":
        return Platform("win", "32")
    if head == "linux":
        return Platform("linux", rest, "glibc", (2, 99))
    return Platform(tag, "")


def tag_fits(tag: str, where: Platform) -> bool:
    """Whether a wheel built for platform `tag` runs on `where`."""
    if tag == "any":
        return True
    try:
        built_for = platform_from_tag(tag)
    except ValueError:
        return False
    if built_for.system != where.system:
        return False
    if where.system == "macosx":
        arches = _MAC_ARCHES.get(built_for.machine, (built_for.machine,))
        return where.machine in arches and built_for.version <= where.version
    if where.system == "linux":
        return (
            built_for.machine == where.machine
            and built_for.libc == where.libc
            and built_for.version <= where.version
        )
    return built_for.machine == where.machine


def describe(where: Platform) -> str:
    """A platform as a person reads it: 'linux x86_64 (glibc 2.36)'."""
    extra = f" ({where.libc} {where.version[0]}.{where.version[1]})" if where.libc else ""
    if where.system == "macosx":
        extra = f" (macOS {where.version[0]}.{where.version[1]})"
    return f"{where.system} {where.machine}".strip() + extra


def _two_ints(version: str) -> tuple[int, int]:
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()] + [0, 0]
    return parts[0], parts[1]


def python_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def target_fits(target: dict[str, Any], where: Platform) -> bool:
    """A target fits when this is its CPython version and ABI and one of its platform tags fits."""
    if sys.implementation.name != "cpython" or target["python"] != python_version():
        return False
    specific = [s for s in EXTENSION_SUFFIXES if s not in (".so", ".pyd")]
    for entry in target["native"].values():
        if not any(entry["member"].endswith(suffix) for suffix in specific):
            return False
    return any(tag_fits(tag, where) for tag in target["platforms"])


def target_label(target: dict[str, Any]) -> str:
    return f"CPython {target['python']} on {' / '.join(target['platforms'])}"


def load_manifest() -> tuple[str, dict[str, Any]] | None:
    """(path of the pyz, its manifest) when running from a pyz; None when running from a checkout."""
    archive = getattr(__loader__, "archive", None)
    if not archive:
        return None
    try:
        data = __loader__.get_data(MANIFEST)  # type: ignore[union-attr]
    except OSError:
        return None
    return os.path.abspath(archive), json.loads(data)


def version_text(manifest: dict[str, Any]) -> str:
    """What `claude-vcr.pyz --version` prints: the version, its targets and every bundled dependency."""
    lines = [f"claude-vcr, version {manifest['version']} (single-file build {manifest['build_id']})"]
    lines.append("targets:")
    lines += [f"  {target_label(t)}" for t in manifest["targets"]]
    lines.append("bundled:")
    for dep in manifest["dependencies"]:
        note = f" ({dep['note']})" if dep.get("note") else ""
        lines.append(f"  {dep['name']} {dep['version']}{note}")
    return "\n".join(lines)


def wrong_target_text(manifest: dict[str, Any], where: Platform) -> str:
    """Said instead of a traceback when the pyz was built for other Pythons or platforms."""
    impl = "CPython" if sys.implementation.name == "cpython" else sys.implementation.name
    running = f"{impl} {'.'.join(map(str, sys.version_info[:3]))} on {describe(where)}"
    lines = ["claude-vcr: this claude-vcr.pyz cannot run here. It was built for:"]
    lines += [f"  {target_label(t)}" for t in manifest["targets"]]
    lines += [
        f"and this is {running}.",
        "Build one on this machine from a claude-vcr checkout with `python3 build_zipapp.py`, or bundle",
        "more targets into one file with `--python-version X.Y --platform TAG` (both repeatable).",
    ]
    return "\n".join(lines)


def cache_root() -> str:
    """Where native modules are copied: VCR_CACHE_DIR, else the user's cache folder."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return explicit
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "claude-vcr", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/claude-vcr")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "claude-vcr")


def extract(archive: str, entry: dict[str, Any], folder: str) -> str:
    """The native file on disk, copied out of the zip unless a complete copy is already there.

    Each process writes its own temp file and renames it into place, so concurrent first starts all
    end with a whole file; a rename that loses to a loaded file (Windows) keeps the winner's copy.
    """
    location = os.path.join(folder, entry["member"].rsplit("/", 1)[1])
    try:
        if os.stat(location).st_size == entry["size"]:
            _touch(folder)
            return location
    except FileNotFoundError:
        pass
    import tempfile
    import zipfile

    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".extracting-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out, zipfile.ZipFile(archive) as bundle:
            with bundle.open(entry["member"]) as member:
                while chunk := member.read(1 << 20):
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o755)
        try:
            os.replace(temp, location)
        except OSError:
            if os.path.getsize(location) != entry["size"]:
                raise
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    _prune_siblings(folder)
    return location


def _touch(folder: str) -> None:
    """Mark a build's folder as used (at most daily), so pruning keeps folders still in use."""
    build_folder = os.path.dirname(folder)
    try:
        if os.stat(build_folder).st_mtime < _now() - 86400:
            os.utime(build_folder)
    except OSError:
        pass


def _prune_siblings(folder: str) -> None:
    """After an extraction, drop other builds' folders unused for PRUNE_AFTER_DAYS and temp files that
    a killed process left behind."""
    build_folder = os.path.dirname(folder)
    root = os.path.dirname(build_folder)
    now = _now()
    import shutil

    try:
        with os.scandir(root) as entries:
            for item in entries:
                stale = item.name.startswith("pyz-") and item.path != build_folder
                if stale and item.is_dir() and item.stat().st_mtime < now - PRUNE_AFTER_DAYS * 86400:
                    shutil.rmtree(item.path, ignore_errors=True)
        with os.scandir(folder) as entries:
            for item in entries:
                if item.name.startswith(".extracting-") and item.stat().st_mtime < now - 3600:
                    os.unlink(item.path)
    except OSError:
        pass


def _private_temp_root() -> str:
    """The fallback when the user's cache folder is not writable: a temp folder only this user can write,
    since whoever can write there chooses the code claude-vcr loads."""
    import tempfile

    uid = os.getuid() if hasattr(os, "getuid") else None
    root = os.path.join(tempfile.gettempdir(), f"claude-vcr-{uid if uid is not None else 'user'}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    info = os.lstat(root)
    if uid is not None and (info.st_uid != uid or info.st_mode & 0o022 or os.path.islink(root)):
        raise OSError(f"{root} belongs to another user or others can write to it")
    return root


def _now() -> float:
    import time

    return time.time()


class NativeFinder:
    """A meta path finder for the native modules of one target: copies them out when first imported."""

    def __init__(self, archive: str, manifest: dict[str, Any], target: dict[str, Any]) -> None:
        self.archive = archive
        self.natives: dict[str, dict[str, Any]] = target["native"]
        self.build_folder = f"pyz-{manifest['build_id']}"
        self.target_id: str = target["id"]

    def folder(self) -> str:
        return os.path.join(cache_root(), self.build_folder, self.target_id)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        entry = self.natives.get(fullname)
        if entry is None:
            return None
        folder = self.folder()
        try:
            try:
                location = extract(self.archive, entry, folder)
            except PermissionError:
                if os.environ.get(CACHE_ENV):
                    raise
                folder = os.path.join(_private_temp_root(), self.build_folder, self.target_id)
                location = extract(self.archive, entry, folder)
        except OSError as error:
            raise NativeImportError(
                f"claude-vcr could not copy its native module {fullname} to {folder}: {error}. "
                f"Point {CACHE_ENV} at a writable folder.",
                name=fullname,
            ) from error
        spec = ModuleSpec(fullname, _NativeLoader(fullname, location), origin=location)
        spec.has_location = True
        return spec


class NativeImportError(ImportError):
    """A native module that could not be copied out or loaded; `main` prints it as one line."""


class _NativeLoader(ExtensionFileLoader):
    """Loads an extracted module, and says what to do when the OS refuses (e.g. a noexec mount)."""

    def create_module(self, spec: ModuleSpec) -> Any:
        try:
            return super().create_module(spec)
        except ImportError as error:
            raise NativeImportError(
                f"claude-vcr could not load {self.path} ({error}); if that folder is on a noexec mount, "
                f"point {CACHE_ENV} at another one.",
                name=self.name,
            ) from error


def prepare(found: tuple[str, dict[str, Any]]) -> None:
    """Pick the bundled target that fits this interpreter and install its finder, or exit saying why."""
    archive, manifest = found
    where = running_platform()
    target = next((t for t in manifest["targets"] if target_fits(t, where)), None)
    if target is None:
        sys.stderr.write(wrong_target_text(manifest, where) + "\n")
        raise SystemExit(1)
    if not any(isinstance(finder, NativeFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, NativeFinder(archive, manifest, target))


def main() -> None:
    """The pyz's entry point: `--version` from the manifest, otherwise the click CLI."""
    found = load_manifest()
    if found is not None:
        if sys.argv[1:2] == ["--version"]:
            print(version_text(found[1]))
            return
        prepare(found)
    from .cli import main as cli

    try:
        cli()
    except NativeImportError as error:
        sys.stderr.write(f"{error}\n")  # the message says what to do; a traceback would bury it
        raise SystemExit(1) from None
