"""Direct ctypes access to the wasmtime C API behind wasmtime-py.

wasmtime-py's generic wrappers rebuild types and convert values on every call,
which costs tens of microseconds. The hot paths here bind the same shared
library with prototypes of our own whose arguments are plain addresses
(``c_void_p``), so a call passes prebuilt ctypes objects or Python ints and
nothing is converted per call. Declaring fresh function objects (rather than
setting ``argtypes`` on wasmtime-py's) leaves wasmtime-py's own bindings alone.

Every other module of the engine reaches the C API through this one.
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, c_bool, c_size_t, c_uint8, c_uint64, c_void_p
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern

__all__ = [
    "CALLBACK",
    "EPOCH_CALLBACK",
    "context_set_epoch_deadline",
    "error_delete",
    "error_new",
    "store_address",
    "store_epoch_deadline_callback",
    "ByteVec",
    "ExternStruct",
    "context_address",
    "engine_address",
    "error_message",
    "extern_from_struct",
    "func_address",
    "func_call_unchecked",
    "func_from_struct",
    "func_new_unchecked",
    "instance_from_struct",
    "instance_export_get",
    "instance_new",
    "functype_address",
    "memory_address",
    "memory_data",
    "memory_data_size",
    "memory_grow",
    "memory_size",
    "module_address",
    "module_export_names",
    "module_import_names",
    "module_from_pointer",
    "module_new",
    "new_extern_array",
    "new_extern_struct",
    "new_func_struct",
    "new_instance_struct",
    "split_wasmtime_message",
    "trap_code",
    "trap_delete",
    "trap_message",
    "trap_new",
    "error_new_bare",
    "trap_new_bare",
]

_dll: Any = ffi.dll


def _bind(name: str, restype: Any, *argtypes: Any) -> Any:
    return CFUNCTYPE(restype, *argtypes)((name, _dll))


class ByteVec(ctypes.Structure):
    """``wasm_byte_vec_t``: a length and a pointer owned by wasmtime."""

    _fields_ = [("size", c_size_t), ("data", c_void_p)]


# Every pointer argument is a c_void_p so callers may pass integers or
# prebuilt c_void_p objects; pointer results come back as int | None.
func_call_unchecked: Any = _bind(
    "wasmtime_func_call_unchecked", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p
)
# The callback returns a ``wasm_trap_t *`` (0 for success); it is declared as
# size_t so a Python int can be returned directly.
CALLBACK: Any = CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_size_t)
func_new_unchecked: Any = _bind(
    "wasmtime_func_new_unchecked", None, c_void_p, c_void_p, CALLBACK, c_void_p, c_void_p, c_void_p
)
instance_new: Any = _bind(
    "wasmtime_instance_new", c_void_p, c_void_p, c_void_p, c_void_p, c_size_t, c_void_p, c_void_p
)
instance_export_get: Any = _bind(
    "wasmtime_instance_export_get", c_bool, c_void_p, c_void_p, ctypes.c_char_p, c_size_t, c_void_p
)
memory_data: Any = _bind("wasmtime_memory_data", c_void_p, c_void_p, c_void_p)
memory_data_size: Any = _bind("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
memory_size: Any = _bind("wasmtime_memory_size", c_uint64, c_void_p, c_void_p)
memory_grow: Any = _bind("wasmtime_memory_grow", c_void_p, c_void_p, c_void_p, c_uint64, c_void_p)
module_new: Any = _bind(
    "wasmtime_module_new", c_void_p, c_void_p, ctypes.c_char_p, c_size_t, c_void_p
)
trap_new: Any = _bind("wasmtime_trap_new", c_void_p, ctypes.c_char_p, c_size_t)
# The same two without argtypes, for Store._raise_failure, which may run with
# almost no Python stack left: on Python 3.11 converting arguments through
# argtypes takes one more level of recursion depth than the call itself.
# Callers pass bytes and a c_size_t, which need no conversion.
trap_new_bare: Any = CFUNCTYPE(c_void_p)(("wasmtime_trap_new", _dll))
error_new_bare: Any = CFUNCTYPE(c_void_p)(("wasmtime_error_new", _dll))
# The epoch deadline callback returns a ``wasmtime_error_t *`` (0: go on),
# declared as size_t like CALLBACK's trap.
EPOCH_CALLBACK: Any = CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_void_p, c_void_p)
store_epoch_deadline_callback: Any = _bind(
    "wasmtime_store_epoch_deadline_callback", None, c_void_p, EPOCH_CALLBACK, c_void_p, c_void_p
)
context_set_epoch_deadline: Any = _bind(
    "wasmtime_context_set_epoch_deadline", None, c_void_p, c_uint64
)
error_new: Any = _bind("wasmtime_error_new", c_void_p, ctypes.c_char_p)
_trap_message: Any = _bind("wasm_trap_message", None, c_void_p, c_void_p)
trap_delete: Any = _bind("wasm_trap_delete", None, c_void_p)
_trap_code: Any = _bind("wasmtime_trap_code", c_bool, c_void_p, c_void_p)
_error_message: Any = _bind("wasmtime_error_message", None, c_void_p, c_void_p)
error_delete: Any = _bind("wasmtime_error_delete", None, c_void_p)
_byte_vec_delete: Any = _bind("wasm_byte_vec_delete", None, c_void_p)


class PointerVec(ctypes.Structure):
    """A ``wasm_*_vec_t`` of pointers (import types, export types)."""

    _fields_ = [("size", c_size_t), ("data", c_void_p)]


_module_imports: Any = _bind("wasmtime_module_imports", None, c_void_p, c_void_p)
_module_exports: Any = _bind("wasmtime_module_exports", None, c_void_p, c_void_p)
_importtype_module: Any = _bind("wasm_importtype_module", c_void_p, c_void_p)
_importtype_name: Any = _bind("wasm_importtype_name", c_void_p, c_void_p)
_exporttype_name: Any = _bind("wasm_exporttype_name", c_void_p, c_void_p)
_importtype_vec_delete: Any = _bind("wasm_importtype_vec_delete", None, c_void_p)
_exporttype_vec_delete: Any = _bind("wasm_exporttype_vec_delete", None, c_void_p)


def _name_at(address: int) -> str:
    vec = ByteVec.from_address(address)
    return ctypes.string_at(vec.data, vec.size).decode("utf-8") if vec.size else ""


def _pointers(vec: PointerVec) -> Any:
    return (c_void_p * vec.size).from_address(vec.data) if vec.size else ()


def module_import_names(module: wasmtime.Module) -> tuple[tuple[str, str], ...]:
    """The ``(module, name)`` of each import of ``module``, in order.

    Read through the C API directly: wasmtime-py builds an ImportType object
    (and its extern type) for each, which costs more than the names.
    """
    vec = PointerVec()
    _module_imports(module_address(module), ctypes.addressof(vec))
    try:
        return tuple(
            (_name_at(_importtype_module(p)), _name_at(_importtype_name(p))) for p in _pointers(vec)
        )
    finally:
        _importtype_vec_delete(ctypes.addressof(vec))


def module_export_names(module: wasmtime.Module) -> tuple[str, ...]:
    """The names of the exports of ``module``, in order (see module_import_names)."""
    vec = PointerVec()
    _module_exports(module_address(module), ctypes.addressof(vec))
    try:
        return tuple(_name_at(_exporttype_name(p)) for p in _pointers(vec))
    finally:
        _exporttype_vec_delete(ctypes.addressof(vec))


def _take_vec(vec: ByteVec) -> str:
    try:
        raw = ctypes.string_at(vec.data, vec.size) if vec.size else b""
    finally:
        _byte_vec_delete(ctypes.addressof(vec))
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def trap_message(trap: int) -> str:
    """Return the text of the owned ``wasm_trap_t *`` ``trap`` and delete it."""
    vec = ByteVec()
    try:
        _trap_message(trap, ctypes.addressof(vec))
        return _take_vec(vec)
    finally:
        trap_delete(trap)


def trap_code(trap: int) -> int | None:
    """Return wasmtime's trap code of ``trap`` (not consumed), if it has one."""
    code = c_uint8()
    return code.value if _trap_code(trap, ctypes.addressof(code)) else None


def error_message(error: int) -> str:
    """Return the text of the owned ``wasmtime_error_t *`` ``error`` and delete it."""
    vec = ByteVec()
    try:
        _error_message(error, ctypes.addressof(vec))
        return _take_vec(vec)
    finally:
        error_delete(error)


def split_wasmtime_message(text: str) -> tuple[str, str]:
    """Split wasmtime's error text into (cause, backtrace).

    wasmtime formats a trap as ``error while executing at wasm backtrace:
    <frames>`` followed by ``Caused by:`` and the cause; the cause is what a
    reader (and a conformance assertion) wants first.
    """
    head, sep, cause = text.partition("\n\nCaused by:\n")
    if not sep:
        return text.strip(), ""
    lines = [line.strip() for line in cause.strip().splitlines()]
    return "\n".join(line for line in lines if line), head.strip()


def context_address(store: wasmtime.Store) -> int:
    """The ``wasmtime_context_t *`` of a wasmtime-py store, as an address."""
    address: int | None = ctypes.cast(store._context(), c_void_p).value
    if not address:
        raise ValueError("the store is closed")
    return address


def store_address(store: wasmtime.Store) -> int:
    """The ``wasmtime_store_t *`` of a wasmtime-py store, as an address."""
    address: int | None = ctypes.cast(store.ptr(), c_void_p).value
    if not address:
        raise ValueError("the store is closed")
    return address


def func_address(func: wasmtime.Func) -> int:
    """The address of the ``wasmtime_func_t`` held inside a wasmtime-py ``Func``."""
    return ctypes.addressof(func._func)


def memory_address(memory: wasmtime.Memory) -> int:
    """The address of the ``wasmtime_memory_t`` held inside a wasmtime-py ``Memory``."""
    return ctypes.addressof(memory._memory)


ExternStruct: Any = ffi.wasmtime_extern_t


def new_extern_array(length: int) -> Any:
    """A zeroed ``wasmtime_extern_t[length]``."""
    return (ExternStruct * length)()


def new_instance_struct() -> Any:
    """A zeroed ``wasmtime_instance_t`` for the C API to fill in."""
    return ffi.wasmtime_instance_t()


def instance_from_struct(struct: Any) -> wasmtime.Instance:
    """Wrap a filled ``wasmtime_instance_t`` as a wasmtime-py ``Instance``."""
    instance: wasmtime.Instance = wasmtime.Instance._from_raw(struct)
    return instance


def new_extern_struct() -> Any:
    """A zeroed ``wasmtime_extern_t`` for the C API to fill in."""
    return ffi.wasmtime_extern_t()


def extern_from_struct(struct: Any) -> Any:
    """Wrap a filled ``wasmtime_extern_t`` as the matching wasmtime-py object."""
    return wrap_extern(struct)


def new_func_struct() -> Any:
    """A zeroed ``wasmtime_func_t`` for the C API to fill in."""
    return ffi.wasmtime_func_t()


def func_from_struct(struct: Any) -> wasmtime.Func:
    """Wrap a filled ``wasmtime_func_t`` as a wasmtime-py ``Func`` (usable as an import)."""
    func: wasmtime.Func = wasmtime.Func._from_raw(struct)
    return func


def module_from_pointer(pointer: int) -> wasmtime.Module:
    """Wrap an owned ``wasmtime_module_t *`` as a wasmtime-py ``Module``."""
    typed = ctypes.cast(c_void_p(pointer), ctypes.POINTER(ffi.wasmtime_module_t))
    module: wasmtime.Module = wasmtime.Module._from_ptr(typed)
    return module


def engine_address(engine: wasmtime.Engine) -> int:
    """The ``wasm_engine_t *`` of a wasmtime-py engine, as an address."""
    address: int | None = ctypes.cast(engine.ptr(), c_void_p).value
    assert address
    return address


def module_address(module: wasmtime.Module) -> int:
    """The ``wasmtime_module_t *`` of a wasmtime-py module, as an address."""
    address: int | None = ctypes.cast(module.ptr(), c_void_p).value
    assert address
    return address


def functype_address(functype: wasmtime.FuncType) -> int:
    """The ``wasm_functype_t *`` of a wasmtime-py function type, as an address."""
    address: int | None = ctypes.cast(functype.ptr(), c_void_p).value
    assert address
    return address
