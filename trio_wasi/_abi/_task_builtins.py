"""The canonical built-ins that act on tasks, waitable sets and subtasks.

Each ``canon`` built-in becomes one core function (CanonicalABI.md,
"Canonical Definitions"): :class:`TaskBuiltins` makes the bodies for one
component instance. A body takes the flat core arguments the guest passes and
returns its flat results. "The current task" is the task that called the
built-in, as the :class:`~trio_wasi._abi._scheduler.Scheduler` reports it;
where the specification suspends the caller (``waitable-set.wait``, a
synchronous ``subtask.cancel``) the body asks the task to block, which the
scheduler carries out.

Stream, future and error-context built-ins live in ``_stream_builtins``; the
guest-thread ones (``thread.*``, ``context.*``) belong to the runtime, which
owns guest threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _types as T
from ._flat import CoreValueIter, values_lifter_for
from ._handles import InstanceState
from ._layout import MAX_FLAT_PARAMS
from ._memory import Memory
from ._options import CanonOptions, LiftLowerContext
from ._scheduler import Scheduler
from ._store import store as store_value
from ._tasks import Task
from ._trap import trap, trap_if
from ._waitables import (
    BLOCKED,
    EventCode,
    EventTuple,
    Subtask,
    Waitable,
    WaitableSet,
)

__all__ = ["Body", "TaskBuiltins", "leave_check"]

Body = Callable[..., Any]


def leave_check(inst: InstanceState) -> None:
    """Trap when ``inst`` may not call out (CanonicalABI.md ``may_leave``)."""
    if not inst.may_leave:
        trap("cannot leave component instance")


class TaskBuiltins:
    """Builds the bodies of the task, waitable and subtask built-ins for one instance."""

    def __init__(self, rt: Scheduler, inst: InstanceState) -> None:
        self.rt = rt
        self.inst = inst

    def _task(self, *, blocking: bool = False) -> Task:
        task = self.rt.maybe_current_task()
        if task is None:
            # Only a start function runs wasm outside a task: it is part of a
            # synchronous instantiation, a synchronous task that has not returned.
            trap_if(blocking, "cannot block a synchronous task before returning")
            return self.rt.current_task()  # traps
        return task

    # -- for the stream and future built-ins -------------------------------------------

    def copy_wait(self, name: str) -> Callable[[Waitable], None]:
        """The ``wait`` a synchronous stream or future built-in blocks with (``_stream_builtins``).

        It suspends the current task until ``end`` has its event.
        """
        rt = self.rt

        def wait(end: Waitable) -> None:
            rt.current_task().block_until(end.has_pending_event, False, f"{name} to finish")

        return wait

    def may_block(self, body: Callable[..., int]) -> Callable[..., int]:
        """``body`` of a synchronous copy or cancel, after the checks of a call that may block.

        A task that may not block traps on the call, before the operands are
        looked at (the suite's trap-if-block-and-sync.wast).
        """
        inst, rt = self.inst, self.rt

        def checked(*args: Any) -> int:
            if not inst.may_leave:
                trap("cannot leave component instance")
            task = rt.maybe_current_task()
            if task is not None and not task.may_block and not rt.others_ready(task):
                trap("cannot block a synchronous task before returning")
            return body(*args)

        return checked

    # -- backpressure --------------------------------------------------------------

    def backpressure_inc(self) -> Body:
        inst = self.inst

        def body() -> None:
            inst.backpressure += 1
            trap_if(inst.backpressure >= 2**16, "backpressure counter overflow")

        return body

    def backpressure_dec(self) -> Body:
        inst, rt = self.inst, self.rt

        def body() -> None:
            inst.backpressure -= 1
            trap_if(inst.backpressure < 0, "backpressure counter underflow")
            rt.instance_changed(inst)

        return body

    # -- task.return / task.cancel / context -----------------------------------

    def task_return(self, result: T.ValueType | None, options: CanonOptions) -> Body:
        inst = self.inst
        lift_result = values_lifter_for(() if result is None else (result,), MAX_FLAT_PARAMS)

        maybe_current_task = self.rt.maybe_current_task

        def body(*flat: Any) -> None:
            task = maybe_current_task()
            if task is None:
                task = self._task()  # (traps: no task)
            if not inst.may_leave:
                trap("cannot leave component instance")
            opts = task.opts
            if not opts.is_async:
                trap("`task.return` called by a synchronously-lifted task")
            # Only the options that matter for lifting this result must agree
            # with the lift's (a memory, when one is named; the encoding).
            # (Types compare by identity first: it is usually the same object.)
            expected = task.ft.result
            if (
                (expected is not result and expected != result)
                or (options.memory is not None and options.memory is not opts.memory)
                or opts.string_encoding != options.string_encoding
            ):
                trap("invalid `task.return` signature and/or options for current task")
            # The result goes to the task's caller: host values when that is the
            # host. (The task is its own borrow scope, Task.scope.)
            cx = LiftLowerContext(options, inst, task, hooks=task.value_hooks())
            values = lift_result(cx, CoreValueIter(flat))
            task.return_(values)

        return body

    def task_cancel(self) -> Body:
        inst = self.inst

        def body() -> None:
            task = self._task()
            leave_check(inst)
            trap_if(not task.opts.is_async, "`task.cancel` called by a synchronously-lifted task")
            task.cancel()

        return body

    # -- waitable sets ---------------------------------------------------------------

    def waitable_set_new(self) -> Body:
        inst = self.inst

        def body() -> int:
            if not inst.may_leave:
                trap("cannot leave component instance")
            return inst.table.add(WaitableSet())

        return body

    def _wset(self, si: int) -> WaitableSet:
        wset = self.inst.table.get(si)
        if type(wset) is not WaitableSet:
            trap(f"handle index {si} is not a waitable set")
        return wset

    def _store_event(self, memory: Memory, ptr: int, event: EventTuple) -> int:
        code, p1, p2 = event
        cx = LiftLowerContext(CanonOptions(memory=memory), self.inst)
        store_value(cx, p1, T.U32, ptr)
        store_value(cx, p2, T.U32, ptr + 4)
        return int(code)

    def waitable_set_wait(self, cancellable: bool, memory: Memory) -> Body:
        inst = self.inst

        def body(si: int, ptr: int) -> int:
            task = self._task(blocking=True)
            leave_check(inst)
            wset = self._wset(si)
            wset.num_waiting += 1
            try:
                cancelled = task.block_until(wset.has_pending_event, cancellable, "a waitable set")
            finally:
                wset.num_waiting -= 1
            event = (int(EventCode.TASK_CANCELLED), 0, 0) if cancelled else wset.get_pending_event()
            return self._store_event(memory, ptr, event)

        return body

    def waitable_set_poll(self, cancellable: bool, memory: Memory) -> Body:
        inst = self.inst

        def body(si: int, ptr: int) -> int:
            task = self._task()
            leave_check(inst)
            wset = self._wset(si)
            event: EventTuple
            if task.deliver_pending_cancel(cancellable):
                event = (int(EventCode.TASK_CANCELLED), 0, 0)
            elif not wset.has_pending_event():
                event = (int(EventCode.NONE), 0, 0)
            else:
                event = wset.get_pending_event()
            return self._store_event(memory, ptr, event)

        return body

    def waitable_set_drop(self) -> Body:
        inst = self.inst

        def body(si: int) -> None:
            if not inst.may_leave:
                trap("cannot leave component instance")
            wset = inst.table.remove(si)
            if type(wset) is not WaitableSet:
                trap(f"handle index {si} is not a waitable set")
            if wset.num_waiting > 0:
                trap("cannot drop waitable set with waiters")
            wset.drop()

        return body

    def waitable_join(self) -> Body:
        inst = self.inst

        def body(wi: int, si: int) -> None:
            if not inst.may_leave:
                trap("cannot leave component instance")
            w = inst.table.get(wi)
            if not isinstance(w, Waitable):
                trap(f"handle index {wi} is not a waitable")
            if w.has_sync_waiter:
                trap("waitable cannot be used synchronously while added to a waitable set")
            w.join(None if si == 0 else self._wset(si))

        return body

    # -- subtasks ------------------------------------------------------------------

    def subtask_cancel(self, is_async: bool) -> Body:
        inst = self.inst

        def body(i: int) -> int:
            task = self._task()
            leave_check(inst)
            if not is_async and not task.may_block and not self.rt.others_ready(task):
                # It may block: checked before the operand (trap-if-block-and-sync.wast).
                trap("cannot block a synchronous task before returning")
            subtask = inst.table.get(i)
            trap_if(not isinstance(subtask, Subtask), f"handle index {i} is not a subtask")
            assert isinstance(subtask, Subtask)
            trap_if(
                subtask.resolve_delivered(),
                "`subtask.cancel` called after terminal status delivered",
            )
            trap_if(subtask.cancellation_requested, "`subtask.cancel` called twice")
            trap_if(
                subtask.in_waitable_set() and not is_async,
                "waitable cannot be used synchronously while added to a waitable set",
            )
            if not subtask.resolved():
                subtask.cancellation_requested = True
                assert subtask.on_cancel is not None
                subtask.on_cancel(inst)
                if not subtask.resolved():
                    if not is_async:
                        subtask.has_sync_waiter = True
                        try:
                            task.block_until(
                                subtask.has_pending_event, False, "a subtask's cancellation"
                            )
                        finally:
                            subtask.has_sync_waiter = False
                    else:
                        return BLOCKED
            if not subtask.has_pending_event():
                # Resolved during the eager start, before a handle existed.
                subtask.deliver_resolve()
                return int(subtask.state)
            code, index, _payload = subtask.get_pending_event()
            assert code == EventCode.SUBTASK and index == i
            return int(subtask.state)

        return body

    def subtask_drop(self) -> Body:
        inst = self.inst

        def body(i: int) -> None:
            if not inst.may_leave:
                trap("cannot leave component instance")
            subtask = inst.table.remove(i)
            if type(subtask) is not Subtask:
                trap(f"handle index {i} is not a subtask")
            subtask.drop()

        return body

    # -- threads -------------------------------------------------------------------

    def thread_yield(self, cancellable: bool) -> Body:
        inst, rt = self.inst, self.rt

        def body() -> int:
            task = self._task()
            leave_check(inst)
            if task.deliver_pending_cancel(cancellable):
                return 1
            rt.yield_now(task)
            if task.deliver_pending_cancel(cancellable):
                return 1
            return 0

        return body
