"""RawFunc: a wasm function called through ``wasmtime_func_call_unchecked``."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import wasmtime

from . import _capi
from ._signature import Signature

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["RawFunc", "new_raw_func"]


class RawFunc:
    """A core wasm function bound to a store with a fixed signature.

    Calling it costs one C call plus one attribute store per argument and one
    load per result. i32/i64 arguments may be any int (they are taken modulo
    2**32 / 2**64) and come back unsigned; f32/f64 are floats. Returns None,
    one value, or a tuple for several results. A trap raises ``Trap``; if a
    host function raised during the call, that exception is re-raised instead.

    The argument/result buffer is reused by every call: wasmtime reads the
    arguments on entry and writes the results on return, so nested calls of
    the same function (through host functions) do not disturb each other.
    """

    __slots__ = ("_buffer", "_func", "_keep", "_store", "_values", "signature")

    _store: Store
    _values: Any
    _buffer: Any
    _func: Any
    _keep: tuple[Any, ...]
    signature: Signature

    def __call__(self, *args: Any) -> Any:
        """Call the function (replaced by the signature's specialised code)."""
        raise NotImplementedError  # pragma: no cover - every instance is specialised

    def call_args(self, args: Sequence[int | float]) -> list[Any]:
        """Call with a sequence of arguments; return the results as a list."""
        raise NotImplementedError  # pragma: no cover - every instance is specialised

    def __repr__(self) -> str:
        return f"<RawFunc {list(self.signature.params)} -> {list(self.signature.results)}>"


class _Specialising(RawFunc):
    """Installs its signature's compiled call code in its class at the first call.

    Linking makes raw functions of dozens of signatures, most never called
    from Python in a given run; compiling their code up front is wasted.
    """

    __slots__ = ()

    def __call__(self, *args: Any) -> Any:
        cls = type(self)
        cls.__call__ = self.signature.raw_call  # type: ignore[method-assign]
        return cls.__call__(self, *args)

    def call_args(self, args: Sequence[int | float]) -> list[Any]:
        cls = type(self)
        cls.call_args = self.signature.raw_call_args  # type: ignore[method-assign]
        result: list[Any] = cls.call_args(self, args)
        return result


_classes: dict[Signature, type[RawFunc]] = {}


def _class_for(sig: Signature) -> type[RawFunc]:
    cls = _classes.get(sig)
    if cls is None:
        cls = _classes.setdefault(sig, type("RawFunc", (_Specialising,), {"__slots__": ()}))
    return cls


def new_raw_func(store: Store, func: wasmtime.Func, sig: Signature) -> RawFunc:
    """Bind ``func`` (which must have signature ``sig``) for fast calls in ``store``."""
    raw = object.__new__(_class_for(sig))
    buffer = sig.values_type()
    raw._store = store
    raw._values = buffer
    raw._buffer = ctypes.c_void_p(ctypes.addressof(buffer))
    raw._func = ctypes.c_void_p(_capi.func_address(func))
    # The wasmtime_func_t lives inside the Func; keep it alive with us.
    raw._keep = (func,)
    raw.signature = sig
    return raw
