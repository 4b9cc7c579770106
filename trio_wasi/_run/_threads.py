"""Guest threads of a component instance (CanonicalABI.md "Thread State").

Every task runs on an *implicit thread*; the specification gives that thread
an index in a per-instance thread table (separate from the handle table) and
two context slots. This runtime creates the implicit thread's record lazily,
the first time a built-in needs it (``thread.index``), so that calls which
never ask for their thread index pay nothing for it; the context slots of the
implicit thread are the task's ``storage``. The record's index is released
when the task exits (``release``).

Explicitly created threads (``thread.new-indirect`` and the switching
built-ins) are not supported: see the module ``_link`` for the built-ins the
linker refuses.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Final, final

from .._abi._handles import InstanceState
from .._abi._trap import trap, trap_if

if TYPE_CHECKING:
    from ._tasks import Task

__all__ = ["GuestThread", "ThreadTable", "implicit_thread", "release", "thread_table"]

#: CanonicalABI.md "Table": at most 2**28 - 1 live entries.
MAX_LENGTH: Final = 2**28 - 1


@final
class ThreadTable:
    """The threads of one component instance, by index (index 0 is never used)."""

    __slots__ = ("_array", "_free")

    def __init__(self) -> None:
        self._array: list[GuestThread | None] = [None]
        self._free: list[int] = []

    def add(self, thread: GuestThread) -> int:
        if self._free:
            i = self._free.pop()
            self._array[i] = thread
            return i
        i = len(self._array)
        trap_if(i > MAX_LENGTH, "thread table is full")
        self._array.append(thread)
        return i

    def get(self, i: int) -> GuestThread:
        found = self._array[i] if 0 <= i < len(self._array) else None
        if found is None:
            trap(f"thread index {i} is not a thread of this instance")
        assert found is not None
        return found

    def remove(self, i: int) -> None:
        self.get(i)
        self._array[i] = None
        self._free.append(i)


@final
class GuestThread:
    """One thread of a task: its index in the instance's thread table."""

    __slots__ = ("index", "task")

    def __init__(self, task: Task, index: int) -> None:
        self.task = task
        self.index = index


_tables: weakref.WeakKeyDictionary[InstanceState, ThreadTable] = weakref.WeakKeyDictionary()


def thread_table(inst: InstanceState) -> ThreadTable:
    """The thread table of ``inst`` (made on first use)."""
    table = _tables.get(inst)
    if table is None:
        table = _tables[inst] = ThreadTable()
    return table


def implicit_thread(task: Task) -> GuestThread:
    """The implicit thread of ``task`` (CanonicalABI.md "Task.enter_implicit_thread")."""
    thread = task.thread
    if thread is None:
        table = thread_table(task.inst)
        thread = GuestThread(task, 0)
        thread.index = table.add(thread)
        task.thread = thread
    return thread


def release(task: Task) -> None:
    """Give the implicit thread's index back (CanonicalABI.md "Task.exit_implicit_thread")."""
    thread = task.thread
    if thread is not None:
        task.thread = None
        thread_table(task.inst).remove(thread.index)
