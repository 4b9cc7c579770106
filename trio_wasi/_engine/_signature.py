"""Core function signatures and the code specialised for each of them.

``wasmtime_func_call_unchecked`` and ``wasmtime_func_new_unchecked`` exchange
values through an array of 16-byte ``wasmtime_val_raw_t`` slots: the
parameters first, then the results written over them. For each signature we
build, once, a ctypes union that names every slot with its C type (parameters
``a0..``, results ``r0..``) and small Python functions, generated from source
text, that move values in and out with one attribute access per value. Generic
loops over the types would cost several times as much per call.

Value convention (as in the canonical ABI's ``definitions.py``): i32 and i64
are unsigned Python ints. The slot fields are ``c_uint32``/``c_uint64``, which
mask any int on store and read back unsigned, so no masking code runs here.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Sequence
from functools import cache, cached_property
from typing import Any

import wasmtime

__all__ = ["CORE_TYPES", "CallbackReserve", "Signature", "probe_headroom", "signature"]

_SLOT_SIZE = 16

_CTYPES: dict[str, Any] = {
    "i32": ctypes.c_uint32,
    "i64": ctypes.c_uint64,
    "f32": ctypes.c_float,
    "f64": ctypes.c_double,
}

CORE_TYPES = frozenset(_CTYPES)

_REFERENCE_TYPES = frozenset({"funcref", "externref", "anyref", "exnref", "v128"})


def _slots_struct(prefix: str, types: Sequence[str]) -> Any:
    fields: list[tuple[str, Any]] = []
    for index, name in enumerate(types):
        ctype = _CTYPES[name]
        fields.append((f"{prefix}{index}", ctype))
        fields.append(
            (f"_{prefix}pad{index}", ctypes.c_ubyte * (_SLOT_SIZE - ctypes.sizeof(ctype)))
        )
    return type(f"_{prefix}slots", (ctypes.Structure,), {"_fields_": fields})


def _values_union(params: Sequence[str], results: Sequence[str]) -> Any:
    slots = max(len(params), len(results), 1)
    fields: list[tuple[str, Any]] = [("_whole", ctypes.c_ubyte * (slots * _SLOT_SIZE))]
    anonymous: list[str] = []
    if params:
        fields.append(("_params", _slots_struct("a", params)))
        anonymous.append("_params")
    if results:
        fields.append(("_results", _slots_struct("r", results)))
        anonymous.append("_results")
    # Anonymous members make a0.. and r0.. plain attributes of the union.
    return type("_values", (ctypes.Union,), {"_fields_": fields, "_anonymous_": tuple(anonymous)})


class CallbackReserve:
    """What a store's host callbacks fall back on when Python cannot even report a failure.

    A callback's exception handler is Python code too: when wasm called the
    host with the Python stack within a frame or two of the recursion limit,
    the handler fails with RecursionError as well, and an exception escaping
    a ctypes callback is printed and dropped, while the callback returns
    whatever its return slot held, which wasmtime takes as a ``wasm_trap_t *``
    to free (a crash) or as 0 (the wasm carries on with unset results). So the
    generated handler has a last resort that makes no call at all, so that
    nothing in it can fail: it records the exception in ``lost`` and hands
    wasm one of ``traps``, made in advance by the store. The wasm traps at
    once, and the raw call that receives that trap raises the recorded
    exception as a Trap (see ``Store._raise_failure``). ``errors`` does the
    same for the epoch deadline callback, which answers with a
    ``wasmtime_error_t *``.
    """

    __slots__ = ("errors", "lost", "traps")

    def __init__(self) -> None:
        self.lost: BaseException | None = None
        self.traps: list[int] = []
        self.errors: list[int] = []


def probe_headroom() -> None:
    """Does nothing: calling it proves that one more Python frame fits (see ``_call_body``)."""


# Whether the raw call code must prove that a callback's frame fits. On 3.11
# C calls and Python frames share one recursion count, and the ctypes call
# into wasm converts its arguments (through argtypes) exactly as deep as a
# callback's frame sits, so the conversion fails first (before any wasm runs)
# when there is no room. From 3.12 C calls are counted apart from Python
# frames, and nothing on the way proves it.
_PROBE_DEPTH = sys.version_info >= (3, 12)


def _valtype(name: str) -> wasmtime.ValType:
    valtype: wasmtime.ValType = getattr(wasmtime.ValType, name)()
    return valtype


def _compile(source: str, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    code = compile(source, f"<trio_wasi.engine {name}>", "exec")
    exec(code, namespace)
    function: Callable[..., Any] = namespace[name]
    return function


class Signature:
    """The layout and specialised code for one (params, results) core signature."""

    def __init__(self, params: tuple[str, ...], results: tuple[str, ...]) -> None:
        self.params = params
        self.results = results
        self.slots = max(len(params), len(results), 1)
        self.values_type: Any = _values_union(params, results)
        self.slot_count = ctypes.c_size_t(self.slots)

    # The call code is compiled on first use: a component links functions of
    # a few dozen signatures and a run calls few of them from Python.

    @cached_property
    def raw_call(self) -> Callable[..., Any]:
        """``raw_call(raw_func, *args)``: call with the arguments, return the result(s)."""
        return self._make_raw_call()

    @cached_property
    def raw_call_args(self) -> Callable[..., Any]:
        """``raw_call_args(raw_func, args)``: call with a sequence, return a list."""
        return self._make_raw_call_args()

    def __repr__(self) -> str:
        return f"Signature({list(self.params)!r} -> {list(self.results)!r})"

    def new_functype(self) -> wasmtime.FuncType:
        """A new wasmtime ``FuncType`` of this signature.

        Not shared between engines: wasmtime binds a function type to the
        first engine it is used with.
        """
        return wasmtime.FuncType(
            [_valtype(t) for t in self.params], [_valtype(t) for t in self.results]
        )

    # -- Python -> wasm ----------------------------------------------------------

    def _result_expression(self) -> str:
        if not self.results:
            return "None"
        if len(self.results) == 1:
            return "v.r0"
        return "(" + ", ".join(f"v.r{i}" for i in range(len(self.results))) + ")"

    def _call_body(self) -> str:
        # `store`, `v` and the args are bound by the caller of this fragment.
        # The context, func, buffer and trap cell are prebuilt ctypes objects,
        # so the C call converts nothing.
        stores = "".join(f"    v.a{i} = a{i}\n" for i in range(len(self.params)))
        # A host callback must never fail to start: ctypes would drop the
        # exception and return garbage as its trap. Its frame is one level
        # below this one, so Python must have room for one more frame here;
        # where argument conversion does not prove that, a call does (a
        # RecursionError then comes from here, before any wasm runs).
        probe = "    _probe_headroom()\n" if _PROBE_DEPTH else ""
        return (
            "    if store._closed:\n"
            "        store._raise_closed()\n"
            f"{stores}"
            f"{probe}"
            "    error = _call(store._ctx, self._func, self._buffer, _slots, store._trap_out)\n"
            "    if error or store._trap_cell.value:\n"
            "        store._raise_failure(error)\n"
        )

    def _make_raw_call(self) -> Callable[..., Any]:
        args = "".join(f", a{i}" for i in range(len(self.params)))
        source = (
            f"def raw_call(self{args}):\n"
            "    store = self._store\n"
            "    v = self._values\n"
            f"{self._call_body()}"
            f"    return {self._result_expression()}\n"
        )
        return _compile(source, "raw_call", self._namespace())

    def _make_raw_call_args(self) -> Callable[..., Any]:
        unpack = ""
        if self.params:
            names = ", ".join(f"a{i}" for i in range(len(self.params)))
            unpack = f"    {names}, = args\n"
        else:
            unpack = "    if args:\n        raise TypeError('expected no arguments')\n"
        results = "[" + ", ".join(f"v.r{i}" for i in range(len(self.results))) + "]"
        source = (
            "def raw_call_args(self, args):\n"
            f"{unpack}"
            "    store = self._store\n"
            "    v = self._values\n"
            f"{self._call_body()}"
            f"    return {results}\n"
        )
        return _compile(source, "raw_call_args", self._namespace())

    def _namespace(self) -> dict[str, Any]:
        from ._capi import func_call_unchecked

        return {
            "_call": func_call_unchecked,
            "_slots": self.slot_count,
            "_probe_headroom": probe_headroom,
        }

    # -- wasm -> Python ----------------------------------------------------------

    def host_callback(
        self,
        fn: Callable[..., Any],
        fail: Callable[[BaseException], int],
        reserve: CallbackReserve,
    ) -> Callable[[Any, Any, Any, Any], int]:
        """A C callback body that runs ``fn`` on the raw slots at ``args``.

        Any exception ``fn`` raises (or a result of the wrong shape) goes to
        ``fail``, which returns the ``wasm_trap_t *`` to hand back to wasm.
        If ``fail`` itself fails, the callback takes a trap from ``reserve``
        without calling anything (see :class:`CallbackReserve`).
        """
        shape = (len(self.params), len(self.results))
        factory = _CALLBACK_FACTORIES.get(shape)
        if factory is None:
            factory = _CALLBACK_FACTORIES.setdefault(shape, self._callback_factory())
        callback: Callable[[Any, Any, Any, Any], int] = factory(
            fn, fail, self.values_type.from_address, reserve
        )
        return callback

    def _callback_factory(self) -> Callable[..., Any]:
        # Compiled once per shape (parameter and result counts; the slot
        # types come in as ``_from_address``): every instantiation makes a
        # callback per trampoline, and compiling source costs far more than a
        # closure (a componentize-py guest has 22 signatures of 13 shapes).
        params = ", ".join(f"v.a{i}" for i in range(len(self.params)))
        needs_values = bool(self.params or self.results)
        lines = [
            "def make(_fn, _fail, _from_address, _reserve):",
            "  _traps = _reserve.traps",
            "  def callback(env, caller, args, count):",
            "    try:",
        ]
        if needs_values:
            lines.append("        v = _from_address(args)")
        if not self.results:
            lines.append(f"        if _fn({params}) is not None:")
            lines.append("            raise TypeError('host function must return None')")
        elif len(self.results) == 1:
            lines.append(f"        v.r0 = _fn({params})")
        else:
            targets = ", ".join(f"v.r{i}" for i in range(len(self.results)))
            lines.append(f"        {targets} = _fn({params})")
        # The last resort runs when even `_fail` could not run (no stack
        # left): attribute and list operations only, which call nothing and
        # so cannot fail. With no spare trap left, 0 (carry on) is the one
        # defined answer that remains.
        lines += [
            "        return 0",
            "    except BaseException as exc:",
            "        try:",
            "            return _fail(exc)",
            "        except BaseException:",
            "            _reserve.lost = exc",
            "            if _traps:",
            "                trap = _traps[-1]",
            "                del _traps[-1]",
            "                return trap",
            "            return 0",
            "  return callback",
        ]
        return _compile("\n".join(lines) + "\n", "make", {})


_CALLBACK_FACTORIES: dict[tuple[int, int], Callable[..., Any]] = {}


@cache
def signature(params: tuple[str, ...], results: tuple[str, ...]) -> Signature:
    """The shared :class:`Signature` of ``params -> results`` (core type names)."""
    for name in (*params, *results):
        if name not in CORE_TYPES:
            if name in _REFERENCE_TYPES:
                raise ValueError(
                    f"core type {name!r} is not supported on the fast call path "
                    "(only i32, i64, f32, f64); call the wasmtime.Func directly"
                )
            raise ValueError(f"unknown core value type {name!r}")
    return Signature(params, results)
