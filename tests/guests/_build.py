"""Build the Python test guests under ``tests/guests/`` with componentize-py, cached.

A guest is a directory ``tests/guests/<name>/`` holding ``app.py`` (the module passed to
``componentize-py componentize``), optional further ``*.py`` modules, and ``wit/`` with the
world it targets.  A build takes 10 to 20 s and yields an ~18 MB component, so outputs are
kept in a cache directory (``$TRIO_WASI_GUEST_CACHE``, else ``<repo>/.cache/guests/``)
under a key that covers everything that can change the output: the guest's files, the
world name, the flags and the componentize-py version.

This module is importable on its own (no pytest): the benchmark script uses it too.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

GUESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = GUESTS_DIR.parent.parent

# Bump when the layout of the key or of a build changes, so stale entries are never reused.
_KEY_SCHEMA = b"trio-wasi-guest-cache-v1"
# The first bytes of a component binary: magic, then version 0x0d and layer 1.
_COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
_BUILD_TIMEOUT_S = 600.0


class GuestBuildError(RuntimeError):
    """componentize-py failed (or is missing) for a test guest."""


def cache_dir() -> Path:
    """The directory holding built guests: ``$TRIO_WASI_GUEST_CACHE`` or ``.cache/guests``."""
    override = os.environ.get("TRIO_WASI_GUEST_CACHE")
    return Path(override) if override else REPO_ROOT / ".cache" / "guests"


def componentize_py_path() -> Path:
    """The componentize-py executable: beside this interpreter first, then on ``PATH``."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.is_file():
        return beside
    found = shutil.which("componentize-py")
    if found is None:
        raise GuestBuildError("componentize-py is not installed (pip install componentize-py)")
    return Path(found)


@functools.cache
def componentize_py_version() -> str:
    """The output of ``componentize-py --version`` (part of every cache key)."""
    proc = subprocess.run(
        [str(componentize_py_path()), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout.strip()


def guest_files(name: str) -> list[Path]:
    """The source files of guest ``name`` (sorted), leaving out bytecode caches."""
    root = GUESTS_DIR / name
    if not (root / "app.py").is_file() or not (root / "wit").is_dir():
        raise GuestBuildError(f"{root} is not a guest directory (needs app.py and wit/)")
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        files.append(path)
    return files


def shared_wit_deps(name: str) -> list[Path]:
    """The repository's WASI packages (``wit/deps``) a guest builds against.

    A guest whose own ``wit/`` names ``wasi:`` packages but carries no ``deps/``
    gets the WIT this host provides, so guests and host cannot drift apart.
    """
    wit = GUESTS_DIR / name / "wit"
    if (wit / "deps").exists():
        return []
    if not any("wasi:" in p.read_text("utf-8") for p in wit.glob("*.wit")):
        return []
    return sorted((REPO_ROOT / "wit" / "deps").glob("*.wit"))


def cache_key(name: str, world: str, *, stub_wasi: bool) -> str:
    """The sha256 hex digest naming the build of ``name`` for ``world`` with these flags."""
    digest = hashlib.sha256()

    def field(data: bytes) -> None:
        # Length-prefixed so that no two different inputs hash the same byte stream.
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    field(_KEY_SCHEMA)
    field(name.encode())
    field(world.encode())
    field(b"stub-wasi" if stub_wasi else b"wasi")
    field(componentize_py_version().encode())
    root = GUESTS_DIR / name
    for path in guest_files(name):
        field(path.relative_to(root).as_posix().encode())
        field(path.read_bytes())
    for path in shared_wit_deps(name):
        field(f"wit/deps/{path.name}".encode())
        field(path.read_bytes())
    return digest.hexdigest()


def _is_component(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(_COMPONENT_HEADER)) == _COMPONENT_HEADER
    except OSError:
        return False


def build_guest(name: str, world: str, *, stub_wasi: bool, cache: Path | None = None) -> Path:
    """Return the path of guest ``name`` built for ``world``, building it on a cache miss.

    Runs ``componentize-py -d WIT -w WORLD componentize app -p SRC -o OUT [-s]`` on a copy
    of the sources in a temporary directory (componentize-py writes ``__pycache__`` next
    to the modules it loads).  The result reaches the cache by ``os.replace`` from a
    unique temporary name in the same directory, so a concurrent or interrupted build
    never leaves a partial file under the final name.
    """
    target_dir = cache if cache is not None else cache_dir()
    key = cache_key(name, world, stub_wasi=stub_wasi)
    suffix = "-stub" if stub_wasi else ""
    target = target_dir / f"{name}{suffix}-{key[:32]}.wasm"
    if _is_component(target):
        return target

    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"guest-{name}-") as tmp:
        src = Path(tmp) / "src"
        root = GUESTS_DIR / name
        for path in guest_files(name):
            dest = src / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        for path in shared_wit_deps(name):
            dest = src / "wit" / "deps" / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        componentize(src, src / "wit", world, target, stub_wasi=stub_wasi, what=f"guest {name!r}")
    return target


def componentize(
    src: Path, wit: Path, world: str, target: Path, *, stub_wasi: bool, what: str
) -> None:
    """Build the ``app`` module under ``src`` for ``world`` of ``wit`` into ``target``.

    ``src`` must be a scratch copy (componentize-py writes ``__pycache__`` next
    to the modules it loads); the build runs beside it. The result reaches
    ``target`` by ``os.replace`` from a unique temporary name in the same
    directory, so a concurrent or interrupted build never leaves a partial
    file under the final name.
    """
    out = src.parent / "out.wasm"
    argv = [
        str(componentize_py_path()),
        "-q",
        "-d",
        str(wit),
        "-w",
        world,
        "componentize",
        "app",
        "-p",
        str(src),
        "-o",
        str(out),
    ]
    if stub_wasi:
        argv.append("-s")
    # A VIRTUAL_ENV would add that environment's site-packages to the guest's path;
    # the guests import nothing from it, so builds must not depend on it.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    proc = subprocess.run(
        argv, cwd=src.parent, env=env, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S
    )
    if proc.returncode != 0 or not _is_component(out):
        raise GuestBuildError(
            f"componentize-py failed for {what} (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(out, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """``python tests/guests/_build.py NAME WORLD [--stub-wasi]``: build and print the path."""
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--stub-wasi"):
        print("usage: _build.py NAME WORLD [--stub-wasi]", file=sys.stderr)
        return 2
    print(build_guest(argv[0], argv[1], stub_wasi=len(argv) == 3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
