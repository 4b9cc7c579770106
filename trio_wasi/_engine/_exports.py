"""A core instance's exports, looked up by name when asked for.

wasmtime-py's ``Instance.exports(store)`` wraps every export up front; a
componentize-py guest's core modules export thousands of functions, of which
linking uses a few dozen. Looking each up by name on demand saves most of
the instantiation time of such a guest.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Mapping
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern

__all__ = ["CoreExports"]


class CoreExports(Mapping[str, Any]):
    """The exports of ``instance`` in ``store``: name -> wasmtime extern, fetched lazily."""

    __slots__ = ("_all", "_found", "_instance", "_store")

    def __init__(self, store: wasmtime.Store, instance: wasmtime.Instance) -> None:
        self._store = store
        self._instance = instance
        self._found: dict[str, Any] = {}
        self._all: dict[str, Any] | None = None

    def _get(self, name: str) -> Any:
        found = self._found.get(name)
        if found is not None:
            return found
        if self._all is not None:
            return self._all.get(name)
        item = ffi.wasmtime_extern_t()
        raw = name.encode("utf-8")
        ok = ffi.wasmtime_instance_export_get(
            self._store._context(),
            ctypes.byref(self._instance._instance),
            raw,
            len(raw),
            ctypes.byref(item),
        )
        if not ok:
            return None
        extern = self._found[name] = wrap_extern(item)
        return extern

    def __getitem__(self, name: str) -> Any:
        found = self._get(name) if isinstance(name, str) else None
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._get(name) is not None

    def _everything(self) -> dict[str, Any]:
        if self._all is None:
            everything = dict(self._instance.exports(self._store))
            # Keep the objects already handed out, so each export has one.
            everything.update(self._found)
            self._all = everything
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())
