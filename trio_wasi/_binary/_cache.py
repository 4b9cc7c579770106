"""Decoded components kept on disk, by content.

Decoding a componentize-py component makes some 6,000 objects and the bundled
WIT some 4,600, several milliseconds each on every run; unpickling the decoded
form takes a fraction of that. An entry is keyed by the sha256 of the binary
and a digest of the decoder's own source (and Python's version), so a changed
decoder never reads a form an older one made, and carries a seal: a damaged
entry is ignored and the binary decoded again. Embedded core modules are not
copied into entries: an entry names where each one lies in the binary and
loading takes a view of the bytes at hand, as decoding does.

Reading pickles from the cache directory trusts it no more than running the
machine code the compile cache keeps there already, and less: an entry may
name only the decoded model's own classes (``_Unpickler.find_class``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from . import _model as M
from ._decode import decode_component

__all__ = ["decode_cached"]

_DIR = "decoded"
_MAGIC = b"trio-wasi decoded component 1\n"


def decode_cached(
    data: bytes, cache_dir: Path | None, sha256: bytes | None = None
) -> M.DecodedComponent:
    """``decode_component(data)``, through the entries under ``cache_dir`` (None: none).

    ``sha256`` is the digest of ``data`` when the caller knows it already.
    Raises :class:`DecodeError` as decoding does.
    """
    if cache_dir is None:
        return decode_component(data)
    if sha256 is None:
        sha256 = hashlib.sha256(data).digest()
    key = hashlib.sha256(_decoder_digest() + sha256).hexdigest()
    path = cache_dir / _DIR / key
    found = _read(path, key, data)
    if found is not None:
        return found
    model = decode_component(data)
    _write(path, key, data, model)
    return model


def _seal(key: str, payload: bytes) -> bytes:
    return hashlib.sha256(_MAGIC + key.encode() + payload).digest()


def _read(path: Path, key: str, data: bytes) -> M.DecodedComponent | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    start = len(_MAGIC) + 32
    if not raw.startswith(_MAGIC) or len(raw) <= start:
        return None
    seal, payload = raw[len(_MAGIC) : start], raw[start:]
    if seal != _seal(key, payload):
        return None
    try:
        found = _Unpickler(io.BytesIO(payload), data).load()
    except Exception:
        return None
    return found if isinstance(found, M.DecodedComponent) else None


def _write(path: Path, key: str, data: bytes, model: M.DecodedComponent) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # The file first: a cache directory that cannot be written costs no pickling.
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as file:
            buffer = io.BytesIO()
            try:
                _Pickler(buffer, data).dump(model)
            except (pickle.PicklingError, TypeError, ValueError):
                return  # kept out of the cache; decoding still works
            payload = buffer.getvalue()
            file.write(_MAGIC + _seal(key, payload) + payload)
        os.replace(partial, path)
    except OSError:
        pass  # the cache is an optimisation
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


class _Pickler(pickle.Pickler):
    """Writes each embedded core module as where it lies in ``data``."""

    def __init__(self, file: io.BytesIO, data: bytes) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._view = memoryview(data)

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is not M.CoreModule:
            return None
        end = obj.offset + len(obj.data)
        if obj.offset < 0 or obj.data != self._view[obj.offset : end]:
            raise pickle.PicklingError("a core module is not where its offset says")
        return ("core module", obj.offset, len(obj.data))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, data: bytes) -> None:
        super().__init__(file)
        # Read-only, as the views decoding makes are.
        self._view = memoryview(data).toreadonly()

    def find_class(self, module: str, name: str) -> Any:
        # Only the decoded model's own classes: an entry can build a model and
        # nothing else, whatever was written into the cache directory.
        if module == M.__name__:
            found = getattr(M, name, None)
            if isinstance(found, type) and found.__module__ == M.__name__:
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a decoded component")

    def persistent_load(self, pid: Any) -> Any:
        kind, offset, length = pid
        if kind != "core module" or not 0 <= offset <= offset + length <= len(self._view):
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return M.CoreModule(self._view[offset : offset + length], offset)


@functools.cache
def _decoder_digest() -> bytes:
    """A digest of what decoding and its classes depend on: Python and the decoder's source."""
    digest = hashlib.sha256(repr(sys.version_info[:2]).encode())
    here = Path(__file__).parent
    for source in [*sorted(here.glob("*.py")), here.parent / "_frozen.py"]:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.digest()
