"""The runtime's part of the task built-ins: guest-thread state.

``context.get``/``context.set`` act on the calling guest thread's slots and
``thread.index`` names it; guest threads belong to the runtime (``_threads``),
so these bodies live here. Every other task, waitable-set and subtask built-in
is the canonical ABI's (``_abi._task_builtins``).
"""

from __future__ import annotations

from .._abi._task_builtins import Body, TaskBuiltins, leave_check
from ._threads import current_storage, current_thread

__all__ = ["BuiltinFactory"]


class BuiltinFactory(TaskBuiltins):
    """The task and waitable built-ins of one instance, with the thread-state ones."""

    def context_get(self, index: int) -> Body:
        maybe_current_task = self.rt.maybe_current_task

        def body() -> int:
            task = maybe_current_task()
            if task is None:
                task = self._task()  # (traps: no task)
            return current_storage(task)[index]

        return body

    def context_set(self, index: int) -> Body:
        maybe_current_task = self.rt.maybe_current_task

        def body(value: int) -> None:
            task = maybe_current_task()
            if task is None:
                task = self._task()  # (traps: no task)
            current_storage(task)[index] = value

        return body

    def thread_index(self) -> Body:
        inst = self.inst

        def body() -> int:
            # CanonicalABI.md "canon thread.index".
            task = self._task()
            leave_check(inst)
            return current_thread(task).index

        return body
