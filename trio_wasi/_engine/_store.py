"""Store: one wasmtime store with its exception tunnel and host callbacks.

The exception tunnel. A host function called from wasm cannot raise through
wasm frames; it returns a trap instead. The Python exception is parked in the
store's ``_tunnel`` slot, and the innermost raw call on this store that sees
the call end in a trap or error takes it and re-raises the original exception
(the carrying trap is discarded). If a host function lets that exception
propagate again, it is parked again and reaches the next call out, so nested
host -> wasm -> host calls unwind exactly like Python code would. The slot is
per store, not module-global: stores on other threads never see each other's
exceptions.

The trap message carries a per-store sequence number of the parked
exception, so an exception is only re-raised for the trap that carried it: if
some caller outside this module (wasmtime-py's generic API, say) observed the
trap instead, the stale exception is dropped rather than attached to an
unrelated later trap.

A host callback that cannot even park its exception (the Python stack was
exhausted when wasm called it, so its handler failed too) hands wasm a spare
trap made in advance and records the exception in the store's
:class:`~._signature.CallbackReserve`; the raw call that receives that trap
raises a Trap caused by the recorded exception. It may run with as little
stack as the callback had, so it does no more there than build the Trap and
replace the spare if it can; freeing the trap it received waits for the next
failure reported the ordinary way (or the store's close).
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import wasmtime

from .._errors import Error, LinkError, Trap
from . import _capi
from ._epoch import Deadline
from ._memory import LinearMemory
from ._rawfunc import RawFunc, new_raw_func
from ._signature import CallbackReserve, probe_headroom, signature

if TYPE_CHECKING:
    from .._limits import Limits
    from ._compile import Engine

#: The trap message of a guest that used up its ``Limits.fuel``.
FUEL_EXHAUSTED = "fuel exhausted: the guest used up its fuel (limit fuel)"
# wasmtime's trap code for running out of fuel, and the fuel of a store on a
# metering engine with no bound (wasmtime counts fuel in a u64).
_OUT_OF_FUEL = wasmtime.TrapCode.OUT_OF_FUEL.value
_UNMETERED_FUEL = (1 << 64) - 1
# Epoch deadline of a store nobody gives a Deadline: far beyond any run.
_NO_DEADLINE_TICKS = 1 << 62

__all__ = ["ExportRef", "Store", "StoreClosedError"]

# Spare traps (and epoch errors) a store keeps for callbacks that cannot
# report a failure: one per failure in a row before the store can make more.
_SPARES = 2
_SPARE_TRAP = b"host function failed with too little Python stack left to report its exception"
_SPARE_LENGTH = ctypes.c_size_t(len(_SPARE_TRAP))


class StoreClosedError(Error):
    """A closed :class:`Store` (or something living in it) was used."""


def _valtype_name(valtype: wasmtime.ValType) -> str:
    return str(valtype)


# A named export of a core instance, looked up only where it is used: the
# instance, the address of its handle (``wasmtime_instance_t``, inside the
# instance object, which the reference therefore keeps alive) and the encoded
# name. A plain tuple, because wiring a large component makes thousands.
ExportRef = tuple[wasmtime.Instance, int, bytes]


class Store:
    """A wasmtime store plus everything trio_wasi keeps per store.

    Only one thread may be inside a store at a time (ARCHITECTURE.md section
    4); nothing here locks.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        limits: Limits | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.engine = engine
        self.wasmtime = wasmtime.Store(engine.wasmtime)
        self._closed = False
        self._ctx = ctypes.c_void_p(_capi.context_address(self.wasmtime))
        self.deadline = deadline
        # wasmtime writes a trap pointer here only when a call traps; the
        # failure path resets it, so it is NULL whenever a call starts.
        self._trap_cell = ctypes.c_void_p()
        self._trap_out = ctypes.c_void_p(ctypes.addressof(self._trap_cell))
        self._tunnel: BaseException | None = None
        self._tunnel_tag = ""
        self._tunnel_count = 0
        self._reserve = CallbackReserve()
        # Traps and errors handed back by calls that ended in a lost failure,
        # freed by the next failure reported the ordinary way (see _restock).
        self._garbage: list[tuple[int | None, int | None]] = []
        # Host callbacks must outlive every call that may reach them: the
        # store owns them until it is closed. The wasmtime store holds them
        # too, in case it outlives this object.
        self._callbacks: list[Any] = []
        self.wasmtime._trio_wasi_callbacks = self._callbacks  # type: ignore[attr-defined]
        self._memories: weakref.WeakSet[LinearMemory] = weakref.WeakSet()
        self._memory_by_key: dict[bytes, LinearMemory] = {}
        # Set when the deadline ended a call: instantiation reports that as
        # the trap it is, not as a link error.
        self._interrupted = False
        self._install_deadline(deadline)
        self._restock()
        if limits is not None:
            self._apply_limits(limits)
        if engine.consume_fuel:
            # A metering engine's stores start with no fuel: without a bound
            # they get as much as wasmtime counts.
            fuel = limits.fuel if limits is not None else None
            self.wasmtime.set_fuel(_UNMETERED_FUEL if fuel is None else fuel)

    # -- limits --------------------------------------------------------------------

    def _apply_limits(self, limits: Limits) -> None:
        # wasmtime's store limiter: a memory.grow or table.grow past a bound
        # fails (-1), an instantiation that needs more fails with an error.
        def bound(value: int | None) -> int:
            return -1 if value is None else value

        self.wasmtime.set_limits(
            memory_size=bound(limits.max_memory_size),
            table_elements=bound(limits.max_table_elements),
            instances=bound(limits.max_instances),
            tables=bound(limits.max_tables),
            memories=bound(limits.max_memories),
        )

    def _install_deadline(self, deadline: Deadline | None) -> None:
        """Set the store's epoch deadline (epoch interruption is always on, see _epoch.py)."""
        if deadline is None:
            _capi.context_set_epoch_deadline(self._ctx, _NO_DEADLINE_TICKS)
            return

        reserve = self._reserve
        errors = reserve.errors

        def on_epoch(_ctx: int, _data: int, delta: int, kind: int) -> int:
            # Runs on the thread running this store's wasm, once per tick.
            try:
                if deadline.passed():
                    self._interrupted = True
                    message = deadline.reason.encode("utf-8", "replace")
                    error: int = _capi.error_new(message)
                    return error
                ctypes.c_uint64.from_address(delta).value = 1
                ctypes.c_uint8.from_address(kind).value = 0  # continue
                return 0
            except BaseException as exc:
                # As a host callback's last resort (CallbackReserve): no calls.
                reserve.lost = exc
                if errors:
                    spare = errors[-1]
                    del errors[-1]
                    return spare
                return 0

        callback = _capi.EPOCH_CALLBACK(on_epoch)
        self._callbacks.append(callback)
        store = _capi.store_address(self.wasmtime)
        _capi.store_epoch_deadline_callback(store, callback, None, None)
        _capi.context_set_epoch_deadline(self._ctx, 1)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def wasmtime_store(self) -> wasmtime.Store:
        """The underlying ``wasmtime.Store`` (for the generic API at set-up time)."""
        self._check_open()
        return self.wasmtime

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Release the wasmtime store, its memories' views and host callbacks.

        Idempotent. Every later use of the store, its RawFuncs or memories
        raises StoreClosedError.
        """
        if self._closed:
            return
        self._closed = True
        for memory in list(self._memories):
            memory._release()
        self.wasmtime.close()
        self._callbacks.clear()
        self._tunnel = None
        self._reserve.lost = None
        self._free_spares()

    def _free_spares(self) -> None:
        reserve = self._reserve
        for trap in reserve.traps:
            _capi.trap_delete(trap)
        for error in reserve.errors:
            _capi.error_delete(error)
        reserve.traps.clear()
        reserve.errors.clear()
        self._free_garbage()

    def _free_garbage(self) -> None:
        while self._garbage:
            trap, error = self._garbage.pop()
            if trap:
                _capi.trap_delete(trap)
            if error:
                _capi.error_delete(error)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _raise_closed(self) -> NoReturn:
        raise StoreClosedError("the store is closed")

    def _check_open(self) -> None:
        if self._closed:
            self._raise_closed()

    # -- failures ----------------------------------------------------------------

    def _restock(self) -> None:
        """Free what lost failures left behind and top up the spare traps and errors.

        Spare errors only serve the epoch deadline callback, which only a
        store with a deadline has.
        """
        reserve = self._reserve
        self._free_garbage()
        while len(reserve.traps) < _SPARES:
            reserve.traps.append(_capi.trap_new(_SPARE_TRAP, len(_SPARE_TRAP)))
        while self.deadline is not None and len(reserve.errors) < _SPARES:
            reserve.errors.append(_capi.error_new(_SPARE_TRAP))

    def _needs_restock(self) -> bool:
        reserve = self._reserve
        return bool(
            self._garbage
            or len(reserve.traps) < _SPARES
            or (self.deadline is not None and len(reserve.errors) < _SPARES)
        )

    def _raise_failure(self, error: int | None) -> NoReturn:
        """Turn a failed call (error pointer and/or trap cell) into an exception."""
        trap = self._trap_cell.value
        self._trap_cell.value = None
        self._interrupted = False
        reserve = self._reserve
        lost = reserve.lost
        if lost is not None:
            # A callback had no stack to report this, and this frame may have
            # as little: calls one level deep at most (building the Trap
            # among them); freeing `trap` and `error` waits for _restock.
            reserve.lost = None
            self._tunnel = None
            self._garbage.append((trap, error))
            try:
                # Replace the spare just used, so that the next such failure
                # has one too (bare C calls, see _capi.trap_new_bare).
                if len(reserve.traps) < _SPARES:
                    reserve.traps.append(_capi.trap_new_bare(_SPARE_TRAP, _SPARE_LENGTH))
                if self.deadline is not None and len(reserve.errors) < _SPARES:
                    reserve.errors.append(_capi.error_new_bare(_SPARE_TRAP))
            except RecursionError:
                pass  # no stack even for that: the next failure restocks
            raise Trap(
                f"host function failed before it could report it: {type(lost).__name__}: {lost!s}"
            ) from lost
        if trap:
            # The code first: reading the message deletes the trap.
            out_of_fuel = _capi.trap_code(trap) == _OUT_OF_FUEL
            text = _capi.trap_message(trap)
            if out_of_fuel:
                text = FUEL_EXHAUSTED
            if error:
                _capi.error_message(error)
        else:
            assert error
            text = _capi.error_message(error)
        if self._needs_restock():
            try:
                self._restock()
            except RecursionError:
                pass  # the failure itself matters more: a later one restocks
        self._raise_parked_or(text)

    def _raise_parked_or(self, text: str) -> NoReturn:
        parked = self._tunnel
        if parked is not None:
            self._tunnel = None
            if self._tunnel_tag in text:
                raise parked
        cause, backtrace = _capi.split_wasmtime_message(text)
        trap = Trap(cause)
        if backtrace:
            trap.add_note(backtrace)
        raise trap

    def _park(self, exc: BaseException) -> int:
        """Park ``exc`` in the tunnel and return a new trap for wasm to unwind with."""
        self._tunnel_count += 1
        self._tunnel_tag = f"[host exception #{self._tunnel_count}]"
        self._tunnel = exc
        if isinstance(exc, Trap):
            message = f"{exc} {self._tunnel_tag}"
        else:
            message = f"host function raised {type(exc).__qualname__}: {exc} {self._tunnel_tag}"
        encoded = message.encode("utf-8", "replace")
        trap: int = _capi.trap_new(encoded, len(encoded))
        return trap

    # -- set-up ------------------------------------------------------------------

    def instantiate(self, module: wasmtime.Module, imports: Sequence[Any]) -> wasmtime.Instance:
        """Instantiate ``module`` with ``imports`` (externs in import order).

        Each import is a wasmtime-py extern, a raw extern from :meth:`export`
        or an :data:`ExportRef` (looked up straight into the import array).
        A trap in the start function raises Trap (or the exception a host
        function raised); a missing or mistyped import raises LinkError. The
        C entry point is called directly: wasmtime-py's ``Instance`` spends
        more time converting the import list than wasmtime spends
        instantiating.
        """
        self._check_open()
        externs = self._extern_array(imports)
        out = _capi.new_instance_struct()
        # Room for a host callback's frame (start functions call them), as
        # the raw calls make sure of.
        probe_headroom()
        error = _capi.instance_new(
            self._ctx,
            _capi.module_address(module),
            ctypes.addressof(externs),
            len(imports),
            ctypes.addressof(out),
            self._trap_out,
        )
        if self._trap_cell.value or self._reserve.lost is not None:
            # A trap, or a failure a callback could only record (the epoch
            # callback answers with a spare error, not a trap): reported here,
            # as the raw calls report it, not left for a later failure.
            self._raise_failure(error)
        if error:
            text = _capi.error_message(error)
            if self._interrupted or (self._tunnel is not None and self._tunnel_tag in text):
                self._interrupted = False
                self._raise_parked_or(text)
            raise LinkError(f"cannot instantiate core module: {text}")
        return _capi.instance_from_struct(out)

    def _extern_array(self, imports: Sequence[Any]) -> Any:
        array = _capi.new_extern_array(len(imports))
        address = ctypes.addressof(array)
        size = ctypes.sizeof(_capi.ExternStruct)
        export_get = _capi.instance_export_get
        ctx = self._ctx
        # The one loop of instantiation that runs per import (thousands for a
        # componentize-py component), hence the local names.
        for index, item in enumerate(imports):
            kind = type(item)
            if kind is tuple:
                _, instance, name = item
                if not export_get(ctx, instance, name, len(name), address):
                    raise LinkError(f"core instance has no export {name.decode()!r}")
            elif kind is _capi.ExternStruct:
                array[index] = item
            else:
                # Every wasmtime-py extern class has ``_as_extern``; calling it
                # directly skips wasmtime-py's per-item dispatch, which imports
                # modules on every call.
                array[index] = item._as_extern()
            address += size
        return array

    def export(self, instance: wasmtime.Instance, name: str) -> Any:
        """The export ``name`` of ``instance`` as a raw extern, or None.

        Looks up one name: listing every export of an instance (what
        ``Instance.exports`` does) costs tens of microseconds per export, and
        a componentize-py instance has thousands of which a few are used. The
        result is a filled ``wasmtime_extern_t`` (``_capi.ExternStruct``),
        which :meth:`instantiate`, :meth:`raw_func` and :meth:`memory` accept
        as they accept wasmtime-py externs; :meth:`wrap` turns it into one.
        """
        self._check_open()
        return self._export_get(ctypes.addressof(instance._instance), name.encode("utf-8"))

    def _export_get(self, address: int, name: bytes) -> Any:
        out = _capi.new_extern_struct()
        found = _capi.instance_export_get(
            self._ctx, address, name, len(name), ctypes.addressof(out)
        )
        return out if found else None

    def instance_address(self, instance: wasmtime.Instance) -> int:
        """The address of ``instance``'s handle, as an :data:`ExportRef` holds it.

        Wiring a large component passes thousands of exports from instance to
        instance; a reference costs nothing until it is used, and used as an
        import it is looked up straight into the import array, so it never
        becomes a Python object. The handle lives inside the Python object,
        so a reference holds ``instance`` too: a dangling address could name
        another store's instance, which wasmtime answers by aborting.
        """
        address: int = ctypes.addressof(instance._instance)
        return address

    def wrap(self, extern: Any) -> Any:
        """``extern`` as a wasmtime-py object (raw externs and references are looked up)."""
        kind = type(extern)
        if kind is tuple:
            found = self._export_get(extern[1], extern[2])
            if found is None:
                raise LinkError(f"core instance has no export {extern[2].decode()!r}")
            extern = found
            kind = _capi.ExternStruct
        if kind is _capi.ExternStruct:
            return _capi.extern_from_struct(extern)
        return extern

    def table_func(self, table: Any, index: int) -> wasmtime.Func | None:
        """The function at ``index`` of a funcref ``table``; None when out of bounds or null."""
        self._check_open()
        found = self.wrap(table).get(self.wasmtime, index)
        return found if isinstance(found, wasmtime.Func) else None

    def raw_func(
        self, func: wasmtime.Func, params: Sequence[str], results: Sequence[str]
    ) -> RawFunc:
        """Bind ``func`` for fast calls; ``params``/``results`` are core type names.

        The declared signature is checked against the function's real type,
        since the unchecked call trusts it.
        """
        self._check_open()
        func = self.wrap(func)
        sig = signature(tuple(params), tuple(results))
        functype = func.type(self.wasmtime)
        actual = (
            tuple(_valtype_name(t) for t in functype.params),
            tuple(_valtype_name(t) for t in functype.results),
        )
        if actual != (sig.params, sig.results):
            raise TypeError(
                f"function has type {list(actual[0])} -> {list(actual[1])}, "
                f"not {list(sig.params)} -> {list(sig.results)}"
            )
        return new_raw_func(self, func, sig)

    def host_func(
        self, params: Sequence[str], results: Sequence[str], fn: Callable[..., Any]
    ) -> wasmtime.Func:
        """Make a host function that calls ``fn`` with unsigned ints / floats.

        ``fn`` returns None, one value, or a tuple (several results). If it
        raises, the calling wasm traps and the innermost RawFunc call out of
        wasm re-raises the same exception (a Trap raised by ``fn`` included).
        """
        self._check_open()
        sig = signature(tuple(params), tuple(results))
        callback = _capi.CALLBACK(sig.host_callback(fn, self._park, self._reserve))
        self._callbacks.append(callback)
        out = _capi.new_func_struct()
        _capi.func_new_unchecked(
            self._ctx,
            _capi.functype_address(self.engine.functype(sig)),
            callback,
            None,
            None,
            ctypes.addressof(out),
        )
        return _capi.func_from_struct(out)

    def memory(self, memory: wasmtime.Memory) -> LinearMemory:
        """Fast access to the bytes of ``memory`` (which must belong to this store)."""
        self._check_open()
        memory = self.wrap(memory)
        # One LinearMemory per wasm memory, so that canonical options naming
        # the same memory through different aliases compare equal by identity.
        key = bytes(memory._memory)
        linear = self._memory_by_key.get(key)
        if linear is None:
            linear = LinearMemory(self, memory)
            self._memories.add(linear)
            self._memory_by_key[key] = linear
        return linear
