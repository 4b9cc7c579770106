"""LinearMemory: a writable memoryview onto a wasm linear memory.

The engine is configured with ``memory_may_move=False`` (see ``_config.py``),
so a memory keeps its base address and only its size changes. ``view()``
therefore asks wasmtime for the current size (one C call) and rebuilds the
memoryview only after growth. The base address is re-read on rebuild anyway,
which keeps the code correct even for memories that may move: a move only
happens when the memory grows, and growth changes the size.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import wasmtime

from .._errors import Error
from . import _capi

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["PAGE_SIZE", "LinearMemory"]

PAGE_SIZE = 65536


class LinearMemory:
    """Byte access to one memory of a store.

    ``view()`` is valid until the memory grows; views taken before growth
    keep seeing the old (shorter) length. Closing the store releases the
    views it can.
    """

    __slots__ = ("__weakref__", "_ctx", "_memory", "_mp", "_size", "_store", "_view", "memory")

    def __init__(self, store: Store, memory: wasmtime.Memory) -> None:
        self._store = store
        self.memory = memory
        self._ctx: Any = store._ctx
        self._mp = ctypes.c_void_p(_capi.memory_address(memory))
        self._size = -1
        self._view = memoryview(b"")

    def view(self) -> memoryview:
        """A writable, format 'B' view of the whole memory as it is now."""
        if self._store._closed:
            self._store._raise_closed()
        size: int = _capi.memory_data_size(self._ctx, self._mp)
        if size != self._size:
            self._rebuild(size)
        return self._view

    def _rebuild(self, size: int) -> None:
        base = _capi.memory_data(self._ctx, self._mp) if size else None
        if base:
            array = (ctypes.c_ubyte * size).from_address(base)
            self._view = memoryview(array).cast("B")
        else:
            self._view = memoryview(bytearray())
        self._size = size

    @property
    def data_address(self) -> int:
        """The address of byte 0 (for ``ctypes.memmove``); stable across growth."""
        self._store._check_open()
        address: int | None = _capi.memory_data(self._ctx, self._mp)
        return address or 0

    def data_size(self) -> int:
        """The current size in bytes."""
        self._store._check_open()
        size: int = _capi.memory_data_size(self._ctx, self._mp)
        return size

    def size(self) -> int:
        """The current size in pages."""
        self._store._check_open()
        pages: int = _capi.memory_size(self._ctx, self._mp)
        return pages

    def grow(self, delta: int) -> int:
        """Grow by ``delta`` pages and return the previous size in pages.

        Raises Error if the memory cannot grow that far.
        """
        self._store._check_open()
        if delta < 0:
            raise ValueError("cannot grow a memory by a negative number of pages")
        previous = ctypes.c_uint64()
        error = _capi.memory_grow(self._ctx, self._mp, delta, ctypes.addressof(previous))
        if error:
            raise Error(f"cannot grow memory by {delta} pages: {_capi.error_message(error)}")
        return previous.value

    def _release(self) -> None:
        # Views into a closed store would read freed memory; release what we
        # can (views sliced from ours keep their own export and may refuse).
        try:
            self._view.release()
        except BufferError:
            pass
        self._view = memoryview(b"")
        self._size = -1
