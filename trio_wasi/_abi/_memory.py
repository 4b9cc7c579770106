"""The linear-memory interface the canonical ABI reads and writes through.

The ABI never keeps a view across a call that can run wasm: ``realloc`` may
grow the memory, which can move it (wasmtime's data pointer changes), so a
stale view would read or write freed address space. Code fetches a fresh
:meth:`Memory.view` after every such call; :class:`BytesMemory` makes stale
views harmless but visibly wrong (they keep the old bytes), so tests catch a
missed refresh.
"""

from __future__ import annotations

from typing import Protocol, final

__all__ = ["PAGE_SIZE", "BytesMemory", "Memory"]

PAGE_SIZE = 65536


class Memory(Protocol):
    """A linear memory as the ABI sees it."""

    def view(self) -> memoryview:
        """A writable, format ``'B'`` view of the whole current memory."""
        ...


@final
class BytesMemory:
    """A :class:`Memory` backed by a bytearray, for tests and host buffers."""

    __slots__ = ("_data",)

    def __init__(self, size: int = PAGE_SIZE) -> None:
        self._data = bytearray(size)

    def view(self) -> memoryview:
        """A view of the current contents (invalidated by :meth:`grow`)."""
        return memoryview(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def grow(self, pages: int) -> int:
        """Grow by ``pages`` 64 KiB pages; returns the old size in pages.

        The contents move to a new buffer, as a real memory may, so views taken
        before the call no longer see the memory.
        """
        old = len(self._data)
        data = bytearray(old + pages * PAGE_SIZE)
        data[:old] = self._data
        self._data = data
        return old // PAGE_SIZE
