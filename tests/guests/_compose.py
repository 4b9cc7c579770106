"""Assemble WAT test components and compose components with ``wasm-tools``, cached.

Two operations, each keyed by a sha256 over everything that can change its output (the
input bytes and the ``wasm-tools --version`` line), with results written next to the
guest build cache:

* ``parse_wat(wat, cache=...)`` runs ``wasm-tools parse WAT -o OUT``.
* ``compose(outer, inner, cache=...)`` runs
  ``wasm-tools compose -q OUTER -d DIR/inner.wasm -o OUT`` and then
  ``wasm-tools validate --features all OUT``.  The tool names the instance it creates for
  a definition component after that file's stem, which must be kebab-case, so the inner
  component is copied to ``inner.wasm`` in a temporary directory first.  Every import of
  the outer component that the inner one exports (by name) is satisfied by one instance
  of the inner component; the inner component's own imports become imports of the result.

Outputs reach the cache by ``os.replace`` from a unique temporary name, so a concurrent or
interrupted run never leaves a partial file under a final name.  Importable on its own (no
pytest).
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

_KEY_SCHEMA = b"trio-wasi-compose-cache-v1"
_COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
_TIMEOUT_S = 300.0


class ComposeError(RuntimeError):
    """wasm-tools is missing or failed to parse, compose or validate a component."""


def wasm_tools_path() -> Path:
    """The wasm-tools executable: beside this interpreter first, then on ``PATH``."""
    beside = Path(sys.executable).parent / "wasm-tools"
    if beside.is_file():
        return beside
    found = shutil.which("wasm-tools")
    if found is None:
        raise ComposeError("wasm-tools is not installed")
    return Path(found)


@functools.cache
def wasm_tools_version() -> str:
    """The output of ``wasm-tools --version`` (part of every cache key)."""
    return run_tool([str(wasm_tools_path()), "--version"]).strip()


def run_tool(argv: list[str]) -> str:
    """Run a tool and return its standard output; ``ComposeError`` on a non-zero exit."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S)
    if proc.returncode != 0:
        raise ComposeError(
            f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def _key(kind: bytes, *inputs: bytes) -> str:
    digest = hashlib.sha256()
    # Length-prefixed so that no two different input lists hash the same byte stream.
    for data in (_KEY_SCHEMA, kind, wasm_tools_version().encode(), *inputs):
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _is_component(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(_COMPONENT_HEADER)) == _COMPONENT_HEADER
    except OSError:
        return False


def _publish(built: Path, target: Path) -> None:
    partial = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(built, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def parse_wat(wat: Path, *, cache: Path) -> Path:
    """Return the path of the binary component assembled from ``wat``, assembling on a miss."""
    key = _key(b"parse", wat.read_bytes())
    target = cache / f"{wat.stem}-wat-{key[:32]}.wasm"
    if _is_component(target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wat-") as tmp:
        out = Path(tmp) / "out.wasm"
        run_tool([str(wasm_tools_path()), "parse", str(wat), "-o", str(out)])
        if not _is_component(out):
            raise ComposeError(f"{wat} does not assemble to a component")
        _publish(out, target)
    return target


def compose(outer: Path, inner: Path, *, name: str, cache: Path) -> Path:
    """Return the path of ``outer`` with its imports satisfied by ``inner``'s exports.

    ``name`` only labels the cached file; the key covers both inputs' bytes.  The result
    is validated with all features enabled before it is cached.
    """
    key = _key(b"compose", outer.read_bytes(), inner.read_bytes())
    target = cache / f"composed-{name}-{key[:32]}.wasm"
    if _is_component(target):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tool = str(wasm_tools_path())
    with tempfile.TemporaryDirectory(prefix="compose-") as tmp:
        definition = Path(tmp) / "inner.wasm"
        shutil.copyfile(inner, definition)
        out = Path(tmp) / "out.wasm"
        run_tool([tool, "compose", "-q", str(outer), "-d", str(definition), "-o", str(out)])
        run_tool([tool, "validate", "--features", "all", str(out)])
        _publish(out, target)
    return target
