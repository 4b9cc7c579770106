"""A permanent outermost wasm activation for stores whose guest threads interleave.

Guest threads (``thread.new-indirect``) are stacks of their own: each runs on
an agent thread of its own, and the built-ins that switch threads hand the
baton from one parked frame to another, so the wasm frames of one store on
different OS threads unwind in any order, not LIFO.

wasmtime keeps one stack limit per store: the outermost entry into the store
sets it to that thread's stack pointer minus ``max_wasm_stack``, a nested
entry (from any thread) keeps it, and the outermost exit resets it to "every
call traps". Measured with wasmtime 50: a second OS thread entering a store
while another is inside it traps at once with "call stack exhausted" when its
stack lies below the first one's limit, and a frame that outlives the
outermost activation traps at its next call.

So a store with guest threads gets a *root* before any of its guest code runs
on agents: an OS thread whose stack is mapped at a low address (below every
thread stack of the process) enters the store through a tiny module and parks
inside a host function until the instance closes. Every other entry is then
nested, the limit never resets, and every agent's stack lies above it.

The price: within such a store the stack limit no longer bounds an agent's
own recursion, so unbounded recursion there ends at the thread's guard page (a
crash) instead of a "call stack exhausted" trap. Only stores of components
that create guest threads pay it.
"""

from __future__ import annotations

import ctypes
import platform
import threading
from typing import Any, Final, final

import wasmtime

from .._errors import LinkError

__all__ = ["StackRoot", "supported"]

_PROT_READ: Final = 0x1
_PROT_WRITE: Final = 0x2
_MAP_PRIVATE: Final = 0x02
_MAP_ANONYMOUS: Final = 0x20
_MAP_NORESERVE: Final = 0x4000
_MAP_FIXED_NOREPLACE: Final = 0x100000
_MAP_FAILED: Final = ctypes.c_void_p(-1).value
#: How many stores with guest threads may be open at once (one slot each).
_SLOTS: Final = 4096

#: Where root stacks are placed: far below the mappings the kernel hands out
#: top-down for thread stacks and libraries (1 TiB up, one slot per root).
_LOW_ADDRESS: Final = 0x10_0000_0000
#: The root runs one Python callback and one wasm call; reserved, not committed.
_STACK_SIZE: Final = 8 << 20
#: Large enough for glibc's pthread_attr_t on every 64-bit Linux.
_ATTR_SIZE: Final = 128

_ROOT_WAT: Final = """
(module
  (import "" "park" (func $park))
  (func (export "root") (call $park)))
"""

_THREAD_FUNC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


def supported() -> bool:
    """Whether this platform can place a root stack (64-bit Linux with glibc)."""
    return platform.system() == "Linux" and ctypes.sizeof(ctypes.c_void_p) == 8


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.pthread_attr_setstack.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    libc.pthread_create.argtypes = [
        ctypes.POINTER(ctypes.c_ulong),
        ctypes.c_void_p,
        _THREAD_FUNC,
        ctypes.c_void_p,
    ]
    libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    return libc


def _map_low_stack(libc: Any) -> int:
    """Map a root stack at the lowest free slot from ``_LOW_ADDRESS`` up."""
    flags = _MAP_PRIVATE | _MAP_ANONYMOUS | _MAP_NORESERVE | _MAP_FIXED_NOREPLACE
    for slot in range(_SLOTS):
        want = _LOW_ADDRESS + slot * _STACK_SIZE
        got = libc.mmap(want, _STACK_SIZE, _PROT_READ | _PROT_WRITE, flags, -1, 0)
        if got == want:
            return want
        if got is not None and got != _MAP_FAILED:
            # A kernel without MAP_FIXED_NOREPLACE took it as a hint and
            # placed the mapping elsewhere: not low enough, try the next slot.
            libc.munmap(got, _STACK_SIZE)
    raise LinkError(f"cannot map a root stack for guest threads (errno {ctypes.get_errno()})")


@final
class StackRoot:
    """The parked outermost activation of one wasmtime store (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        if not supported():
            raise LinkError("guest threads need 64-bit Linux (see trio_wasi/_run/_stackroot.py)")
        self._release = threading.Event()
        self._parked = threading.Event()
        self._error: BaseException | None = None
        self._joined = False
        wt: wasmtime.Store = store.wasmtime
        module = wasmtime.Module(store.engine.wasmtime, _ROOT_WAT)
        park = wasmtime.Func(wt, wasmtime.FuncType([], []), self._park)
        root = wasmtime.Instance(wt, module, [park]).exports(wt)["root"]
        assert isinstance(root, wasmtime.Func)

        def body(_arg: Any) -> Any:
            try:
                root(wt)
            except BaseException as exc:  # reported to whoever made the root
                self._error = exc
                self._parked.set()
            return None

        libc = self._libc = _libc()
        self._body = _THREAD_FUNC(body)  # kept alive as long as the thread
        self._stack: int = _map_low_stack(libc)
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        libc.pthread_attr_init(attr)
        libc.pthread_attr_setstack(attr, self._stack, _STACK_SIZE)
        tid = ctypes.c_ulong()
        rc = libc.pthread_create(ctypes.byref(tid), attr, self._body, None)
        libc.pthread_attr_destroy(attr)
        if rc != 0:
            libc.munmap(self._stack, _STACK_SIZE)
            raise LinkError(f"cannot start the root thread for guest threads (error {rc})")
        self._tid = tid.value
        self._parked.wait()
        if self._error is not None:
            self.release()
            raise LinkError(f"cannot enter the store from the root thread: {self._error}")

    def _park(self) -> None:
        self._parked.set()
        self._release.wait()

    def release(self) -> None:
        """Let the root return out of the store and end its thread (idempotent).

        Called once no other wasm of the store runs (the executor is stopped).
        """
        if self._joined:
            return
        self._joined = True
        self._release.set()
        self._libc.pthread_join(self._tid, None)
        self._libc.munmap(self._stack, _STACK_SIZE)
