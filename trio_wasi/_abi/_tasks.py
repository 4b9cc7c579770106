"""The state of one call into a lifted function (CanonicalABI.md "Task State").

Rules:

* a task is INITIAL until its callee starts (receives its arguments), then
  STARTED; it resolves exactly once, by ``task.return`` (a value) or by
  ``task.cancel`` (acknowledging a cancellation); a second resolution traps;
* a cancellation request on an INITIAL task (still waiting to enter its
  instance) is delivered at once: the task never starts and resolves
  cancelled; on a task waiting cancellably (between callback steps, or in a
  cancellable built-in) it is delivered at once; otherwise it stays
  PENDING_CANCEL until the task next waits cancellably;
* ``task.cancel`` is only legal once a cancellation was delivered;
* borrowed handles must all be dropped before the task resolves and exits;
* only ``async``-typed tasks may block, unless another guest thread of their
  instance can use the stack meanwhile;
* an ``async`` task that needs its instance's exclusive lock (synchronous and
  callback lifts) holds it while it runs and gives it up when it exits.

Nothing here blocks or schedules: a wait goes to the :class:`Scheduler`
(``_scheduler``), and a task that waits between steps is woken through the
:class:`TaskDriver` the scheduler attached to it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, final

from ._options import AsyncValueHooks, CanonOptions, StringEncoding
from ._resources import BorrowScope
from ._stream_builtins import GUEST_ASYNC_VALUES
from ._trap import trap, trap_if
from ._waitables import WaitableSet

if TYPE_CHECKING:
    from ._handles import InstanceState
    from ._scheduler import Scheduler, TaskDriver
    from ._types import FuncType

__all__ = [
    "CALLBACK_EXIT",
    "CALLBACK_WAIT",
    "CALLBACK_YIELD",
    "OnResolve",
    "OnStart",
    "Task",
    "TaskFunc",
    "TaskState",
    "TaskWait",
]

# What a callback step returns in its low four bits (CanonicalABI.md "canon lift").
CALLBACK_EXIT = 0
CALLBACK_YIELD = 1
CALLBACK_WAIT = 2

OnStart = Callable[[], list[Any]]
OnResolve = Callable[[list[Any] | None, StringEncoding | None], None]


class TaskState(enum.IntEnum):
    """Where a task is in its life (CanonicalABI.md "Task State")."""

    INITIAL = 1
    STARTED = 2
    PENDING_CANCEL = 3
    CANCEL_DELIVERED = 4
    RESOLVED = 5


class TaskFunc(Protocol):
    """What a task needs of the lifted function it runs."""

    @property
    def rt(self) -> Scheduler: ...

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> FuncType: ...

    @property
    def options(self) -> CanonOptions: ...

    @property
    def state(self) -> InstanceState: ...

    @property
    def host_hooks(self) -> AsyncValueHooks: ...


@final
class TaskWait:
    """What a waiting task waits for (between callback steps, or to enter).

    ``kind`` is "enter" (its instance's backpressure or exclusive lock holds
    the call back), "yield" (ready at once) or "wait" (an event of ``wset``).
    """

    __slots__ = ("cancellable", "kind", "wset")

    def __init__(self, kind: str, cancellable: bool, wset: WaitableSet | None = None) -> None:
        self.kind = kind
        self.cancellable = cancellable
        self.wset = wset

    def has_event(self) -> bool:
        wset = self.wset
        return wset is None or wset.has_pending_event()


def _started() -> list[Any]:
    raise AssertionError("a task starts once")


@final
class Task(BorrowScope):
    """One call into a lifted function (CanonicalABI.md "Task State").

    ``rt`` is the scheduler running it, ``inst`` the callee's instance and
    ``caller`` the calling instance (None for the host). A task is its own
    :class:`BorrowScope` (the specification's task counts its borrows
    itself): one object less for each call that waits.
    """

    __slots__ = (
        "caller",
        "cancel_now",
        "cancellable",
        "driver",
        "exited",
        "ft",
        "func",
        "inst",
        "on_resolve",
        "on_start",
        "opts",
        "rt",
        "source_encoding",
        "state",
        "storage",
        "thread",
        "wait",
    )

    def __init__(
        self,
        func: TaskFunc,
        caller: InstanceState | None,
        on_start: OnStart,
        on_resolve: OnResolve,
        source_encoding: StringEncoding | None,
    ) -> None:
        self.func = func
        self.rt: Scheduler = func.rt
        self.ft = func.type
        self.opts = func.options
        self.inst = func.state
        self.caller = caller
        self.on_start = on_start
        self.on_resolve = on_resolve
        self.source_encoding = source_encoding
        super().__init__()
        self.state = TaskState.INITIAL
        self.storage = [0, 0]
        # The implicit thread's record, made by the scheduler when a built-in
        # first needs it (guest threads).
        self.thread: Any = None
        # A frame of this task parked in a cancellable wait.
        self.cancellable = False
        self.cancel_now = False
        self.wait: TaskWait | None = None
        self.driver: TaskDriver | None = None
        self.exited = False

    def __repr__(self) -> str:
        return f"<Task {self.func.name} {self.state.name}>"

    @property
    def scope(self) -> BorrowScope:
        """The task's borrow bookkeeping: the task itself."""
        return self

    @property
    def may_block(self) -> bool:
        return self.ft.is_async

    def value_hooks(self) -> AsyncValueHooks:
        """Hooks for the arguments and result: host channels when the host is the caller."""
        return self.func.host_hooks if self.caller is None else GUEST_ASYNC_VALUES

    def needs_exclusive(self) -> bool:
        # CanonicalABI.md "Task.needs_exclusive": stackful async lifts opt out.
        return not self.opts.is_async or self.opts.callback is not None

    def start(self) -> list[Any]:
        """The callee starts: take its arguments (CanonicalABI.md "canon lift")."""
        assert self.state is TaskState.INITIAL
        self.state = TaskState.STARTED
        on_start = self.on_start
        # Called once: not kept while the task runs and waits.
        self.on_start = _started
        return on_start()

    def return_(self, result: list[Any]) -> None:
        """Resolve with ``result`` (CanonicalABI.md "Task.return")."""
        # Plain ifs (not trap_if): this runs once per call.
        if self.state is TaskState.RESOLVED:
            trap("task already returned a value")
        if self.num_borrows > 0:
            trap("borrow handles still remain at the end of the call")
        self.state = TaskState.RESOLVED
        self.on_resolve(result, self.opts.string_encoding)

    def cancel(self) -> None:
        """Resolve as cancelled (CanonicalABI.md "canon task.cancel")."""
        trap_if(
            self.state is not TaskState.CANCEL_DELIVERED,
            "`task.cancel` called by task which has not been cancelled",
        )
        trap_if(self.scope.num_borrows > 0, "borrow handles still remain at the end of the call")
        self.state = TaskState.RESOLVED
        self.on_resolve(None, None)

    def deliver_pending_cancel(self, cancellable: bool) -> bool:
        """CanonicalABI.md "Task.deliver_pending_cancel": True when delivered now."""
        if cancellable and self.state is TaskState.PENDING_CANCEL:
            self.state = TaskState.CANCEL_DELIVERED
            return True
        return False

    def exit(self) -> None:
        """The task's implicit thread returned (CanonicalABI.md "exit_implicit_thread")."""
        if self.state is not TaskState.RESOLVED:
            trap("task exited without returning a value")
        # The task is its own borrow scope (``scope``).
        if self.num_borrows > 0:
            trap("borrow handles still remain at the end of the call")
        if self.lent_host_reps is not None:
            self.release_host_objects()
        if self.thread is not None:
            self.rt.release_thread(self)
        if self.ft.is_async and self.needs_exclusive() and self.inst.exclusive is self:
            self.inst.exclusive = None
        self.exited = True
        self.rt.instance_changed(self.inst)
        driver = self.driver
        if driver is not None:
            driver.finished()
            # The driver points back at the task: no cycle left behind.
            self.driver = None

    # -- waiting with a parked frame (stackful, sync lowers, built-ins) --------

    def block_until(
        self, ready: Callable[[], bool], cancellable: bool, what: str, *, nested: bool = False
    ) -> bool:
        """Suspend the current frame until ``ready()``; True when cancelled instead.

        CanonicalABI.md "Thread.suspend_until" for a task's frame. ``nested``:
        the wait is for a synchronous callee that is still running (its guest
        threads switched), not a block of this task.
        """
        if self.deliver_pending_cancel(cancellable):
            return True
        if ready():
            return False
        rt = self.rt
        if not self.may_block and not nested and not rt.others_ready(self):
            # Another ready thread of the instance can use the stack meanwhile
            # (the suite's trap-if-sync-and-waitable-set.wast); otherwise a
            # synchronous task that blocks could never go on.
            trap("cannot block a synchronous task before returning")
        self.cancellable = cancellable
        self.cancel_now = False
        inst = self.inst
        # A callback-lifted task that already returned its value and then
        # blocks in a synchronous built-in lets other tasks of its instance
        # start meanwhile (the suite's sync-streams.wast; one that has not
        # returned keeps them out, async-calls-sync.wast); it takes the
        # exclusive lock back to resume.
        release = (
            self.opts.callback is not None
            and inst.exclusive is self
            and self.state is TaskState.RESOLVED
        )
        if release:
            inst.exclusive = None
            rt.instance_changed(inst)

        def resumable() -> bool:
            if not (ready() or self.cancel_now):
                return False
            return not release or inst.exclusive is None

        try:
            rt.block_until(resumable, lambda: f"{self!r} waits for {what}", blocks=not nested)
        finally:
            self.cancellable = False
            if release:
                inst.exclusive = self
        if self.cancel_now:
            self.cancel_now = False
            return True
        return False

    # -- cancellation ------------------------------------------------------------

    def request_cancellation(self, caller: InstanceState | None) -> None:
        """The caller cancels the call: handled where the task's wasm runs."""
        self.rt.run_for(self, lambda: self.cancellation_requested(caller))

    def cancellation_requested(self, caller: InstanceState | None) -> None:
        """CanonicalABI.md "Task.request_cancellation" (where the task's wasm runs)."""
        state = self.state
        if state is TaskState.RESOLVED or state is TaskState.CANCEL_DELIVERED:
            return
        if state is TaskState.PENDING_CANCEL:
            return
        if state is TaskState.INITIAL:
            # Still waiting to enter: it never started, so it resolves at once
            # (CANCELLED_BEFORE_STARTED), on this stack.
            self.state = TaskState.CANCEL_DELIVERED
            if self.driver is not None and self.wait is not None:
                self.driver.resume(cancelled=True)
            return
        wait = self.wait
        exclusive_ok = not (self.needs_exclusive() and self.inst.exclusive not in (None, self))
        if (
            wait is not None
            and wait.cancellable
            and exclusive_ok
            and self.inst.may_enter_from(caller)
        ):
            # A callback task waiting between steps: deliver now, on this stack.
            self.state = TaskState.CANCEL_DELIVERED
            self.rt.enter(self.inst, caller)
            try:
                assert self.driver is not None
                self.driver.resume(cancelled=True)
            finally:
                self.rt.leave(self.inst, caller)
        elif self.cancellable:
            # A parked frame: it sees the cancellation when it resumes.
            self.state = TaskState.CANCEL_DELIVERED
            self.cancel_now = True
        else:
            self.state = TaskState.PENDING_CANCEL
            if self.driver is not None:
                self.driver.poke()

    # -- entering, and waiting between steps -----------------------------------------

    def has_backpressure(self) -> bool:
        """Whether the instance's backpressure or exclusive lock keeps this task out."""
        inst = self.inst
        return inst.backpressure > 0 or (self.needs_exclusive() and inst.exclusive is not None)

    def must_wait_to_enter(self) -> bool:
        """CanonicalABI.md "Task.enter_implicit_thread": wait before starting?

        Only ``async``-typed functions queue, behind backpressure, the
        exclusive lock and any task already queued.
        """
        if not self.ft.is_async:
            return False
        return self.has_backpressure() or self.inst.num_waiting_to_enter > 0

    def held_back_by(self, cancelled: bool) -> InstanceState | None:
        """The instance that keeps this waiting task from its next step now, or None.

        Beyond its own event, a task needs its instance free of backpressure
        to enter, its exclusive lock free for a callback step, and no active
        frame in it or an enclosing instance (``may_enter``). A task that
        resumes to be cancelled needs only the last.
        """
        inst = self.inst
        wait = self.wait
        if not cancelled and wait is not None:
            if wait.kind == "enter":
                if self.has_backpressure():
                    return inst
            elif inst.exclusive is not None:
                return inst
        holder: InstanceState | None = inst
        while holder is not None:
            if not holder.may_enter:
                return holder
            holder = holder.parent
        return None

    def callback_returned(self, packed: int) -> bool:
        """A callback step returned ``packed``: exit, or wait; True when it now waits.

        CanonicalABI.md "canon lift", one iteration of the callback loop: EXIT
        ends the task; YIELD and WAIT (on the waitable set in the upper bits)
        release the exclusive lock until the next step.
        """
        code = packed & 0xF
        if code > CALLBACK_WAIT:
            trap("unsupported callback code")
        if code == CALLBACK_EXIT:
            self.exit()
            return False
        inst = self.inst
        if inst.exclusive is self:
            inst.exclusive = None
        self.rt.instance_changed(inst)
        if code == CALLBACK_YIELD:
            self.wait = TaskWait("yield", cancellable=True)
        else:
            wset = inst.table.get(packed >> 4)
            if type(wset) is not WaitableSet:
                trap("invalid waitable set handle")
            wset.num_waiting += 1
            self.wait = TaskWait("wait", cancellable=True, wset=wset)
        return True

    def cancel_pending(self) -> bool:
        """Whether the task's wait ends in a cancellation (it waits: ``wait`` is set)."""
        wait = self.wait
        assert wait is not None
        if self.state is TaskState.CANCEL_DELIVERED and wait.kind == "enter":
            return True
        return self.state is TaskState.PENDING_CANCEL and wait.cancellable

    def wait_over(self) -> bool:
        """Whether the task's own wait is over: an event, or a cancellation to deliver."""
        wait = self.wait
        assert wait is not None
        return self.cancel_pending() or wait.has_event()
