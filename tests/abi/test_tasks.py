"""Tasks, canon lower and the task/waitable-set/subtask built-ins, under a plain-Python scheduler.

No trio and no wasmtime: the scheduler below runs "other work" (queued
callables) when a task blocks, so every wait ends by construction.
"""

from __future__ import annotations

import ast
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import trio_wasi._abi
from trio_wasi._abi import (
    U32,
    BorrowType,
    BytesMemory,
    CanonOptions,
    InstanceState,
    ResourceType,
    resource_new,
)
from trio_wasi._abi._handles import HandleTable
from trio_wasi._abi._lower import ComponentFunc, OnCancel, async_lower, noop_cancel, sync_lower
from trio_wasi._abi._options import AsyncValueHooks, StringEncoding
from trio_wasi._abi._scheduler import Scheduler
from trio_wasi._abi._stream_builtins import GUEST_ASYNC_VALUES
from trio_wasi._abi._task_builtins import TaskBuiltins
from trio_wasi._abi._tasks import (
    CALLBACK_EXIT,
    CALLBACK_WAIT,
    CALLBACK_YIELD,
    OnResolve,
    OnStart,
    Task,
    TaskState,
    TaskWait,
)
from trio_wasi._abi._trap import trap
from trio_wasi._abi._types import FuncType
from trio_wasi._abi._waitables import (
    BLOCKED,
    EventCode,
    EventTuple,
    Subtask,
    SubtaskState,
    Waitable,
)
from trio_wasi._errors import Trap


class FakeScheduler:
    """Runs queued work while a task blocks; records what the ABI asked of it."""

    def __init__(self) -> None:
        self.current: list[Task] = []
        self.work: list[Callable[[], None]] = []
        self.blocks: list[str] = []
        self.changed: list[InstanceState] = []
        self.yields = 0
        self.released: list[Task] = []

    def maybe_current_task(self) -> Task | None:
        return self.current[-1] if self.current else None

    def current_task(self) -> Task:
        if not self.current:
            trap("no task is running")
        return self.current[-1]

    def block_until(
        self, ready: Callable[[], bool], describe: Callable[[], str], *, blocks: bool = False
    ) -> None:
        self.blocks.append(describe())
        while not ready():
            assert self.work, f"deadlock: {describe()}"
            self.work.pop(0)()

    def instance_changed(self, inst: InstanceState) -> None:
        self.changed.append(inst)

    def enter(self, inst: InstanceState, caller: InstanceState | None) -> None:
        inst.enter_from(caller)

    def leave(self, inst: InstanceState, caller: InstanceState | None) -> None:
        inst.leave_to(caller)

    def others_ready(self, task: Task) -> bool:
        return False

    def yield_now(self, task: Task) -> None:
        self.yields += 1

    def run_for(self, task: Task, fn: Callable[[], None]) -> None:
        fn()

    def release_thread(self, task: Task) -> None:
        self.released.append(task)
        task.thread = None


class FakeFunc:
    """The lifted function a task runs."""

    def __init__(self, rt: Scheduler, ft: FuncType, options: CanonOptions) -> None:
        self.rt = rt
        self.name = "f"
        self.type = ft
        self.options = options
        self.state = InstanceState()
        self.host_hooks: AsyncValueHooks = GUEST_ASYNC_VALUES


class FakeDriver:
    def __init__(self) -> None:
        self.log: list[str] = []

    def poke(self) -> None:
        self.log.append("poke")

    def resume(self, cancelled: bool) -> None:
        self.log.append(f"resume cancelled={cancelled}")

    def finished(self) -> None:
        self.log.append("finished")


ASYNC_FT = FuncType(params=(), result=U32, is_async=True)
SYNC_FT = FuncType(params=(), result=U32)
CALLBACK_OPTS = CanonOptions(is_async=True, callback=object())


class Call:
    """One task and what its caller saw."""

    def __init__(
        self,
        ft: FuncType = ASYNC_FT,
        options: CanonOptions = CALLBACK_OPTS,
        sched: FakeScheduler | None = None,
    ) -> None:
        self.sched = sched or FakeScheduler()
        self.func = FakeFunc(self.sched, ft, options)
        self.resolved: list[tuple[list[Any] | None, StringEncoding | None]] = []
        self.task = Task(self.func, None, self.on_start, self.on_resolve, None)

    def on_start(self) -> list[Any]:
        return ["arg"]

    def on_resolve(self, results: list[Any] | None, encoding: StringEncoding | None) -> None:
        self.resolved.append((results, encoding))

    def run(self) -> Task:
        """Start the task and make it the current one."""
        assert self.task.start() == ["arg"]
        self.sched.current.append(self.task)
        return self.task


# -- the task state machine ----------------------------------------------------------


def test_a_task_resolves_once() -> None:
    call = Call()
    task = call.run()
    assert task.state is TaskState.STARTED
    task.return_([7])
    assert call.resolved == [([7], "utf8")]
    with pytest.raises(Trap, match="task already returned a value"):
        task.return_([8])
    with pytest.raises(Trap, match="has not been cancelled"):
        task.cancel()
    assert call.resolved == [([7], "utf8")]


def test_exit_needs_a_resolution_and_releases_the_lock() -> None:
    call = Call()
    task = call.run()
    inst = task.inst
    inst.exclusive = task
    driver = FakeDriver()
    task.driver = driver
    task.thread = object()
    with pytest.raises(Trap, match="exited without returning a value"):
        task.exit()
    task.return_([1])
    task.exit()
    assert inst.exclusive is None
    assert task.exited
    assert call.sched.changed[-1] is inst
    assert call.sched.released == [task]
    assert driver.log == ["finished"]
    assert task.driver is None


def test_cancel_before_start_resolves_without_starting() -> None:
    call = Call()
    task = call.task
    driver = FakeDriver()
    task.driver = driver
    task.wait = TaskWait("enter", cancellable=True)
    task.request_cancellation(None)
    assert task.state is TaskState.CANCEL_DELIVERED
    assert driver.log == ["resume cancelled=True"]
    assert task.cancel_pending()
    # What the driver does then: acknowledge, never start.
    task.cancel()
    assert call.resolved == [(None, None)]
    assert task.state is TaskState.RESOLVED
    # Later requests change nothing.
    task.request_cancellation(None)
    assert driver.log == ["resume cancelled=True"]


def test_cancel_waits_for_a_cancellable_point() -> None:
    call = Call()
    task = call.run()
    driver = FakeDriver()
    task.driver = driver
    task.request_cancellation(None)
    assert task.state is TaskState.PENDING_CANCEL
    assert driver.log == ["poke"]
    task.request_cancellation(None)
    assert task.state is TaskState.PENDING_CANCEL
    assert not task.deliver_pending_cancel(False)
    assert task.deliver_pending_cancel(True)
    assert task.state is TaskState.CANCEL_DELIVERED
    task.cancel()
    assert call.resolved == [(None, None)]


def test_cancel_reaches_a_task_waiting_between_steps() -> None:
    call = Call()
    task = call.run()
    driver = FakeDriver()
    task.driver = driver
    task.wait = TaskWait("wait", cancellable=True)
    task.request_cancellation(None)
    assert task.state is TaskState.CANCEL_DELIVERED
    assert driver.log == ["resume cancelled=True"]
    # The step ran with the instance entered, and left it after.
    assert task.inst.may_enter


def test_cancel_reaches_a_parked_frame() -> None:
    call = Call()
    task = call.run()
    call.sched.work.append(lambda: task.request_cancellation(None))
    assert task.block_until(lambda: False, True, "nothing")
    assert task.state is TaskState.CANCEL_DELIVERED
    assert call.sched.blocks == ["<Task f STARTED> waits for nothing"]
    # Not cancellable: the request stays pending and the wait ends on its condition.
    other = Call()
    t2 = other.run()
    flag: list[bool] = []
    other.sched.work += [lambda: t2.request_cancellation(None), lambda: flag.append(True)]
    assert not t2.block_until(lambda: bool(flag), False, "a flag")
    assert t2.state is TaskState.PENDING_CANCEL


def test_a_synchronous_task_may_not_block() -> None:
    call = Call(SYNC_FT, CanonOptions())
    task = call.run()
    assert not task.block_until(lambda: True, False, "ready at once")
    with pytest.raises(Trap, match="cannot block a synchronous task"):
        task.block_until(lambda: False, False, "never")
    assert call.sched.blocks == []


def test_a_returned_callback_task_lets_others_in_while_it_blocks() -> None:
    call = Call()
    task = call.run()
    inst = task.inst
    inst.exclusive = task
    task.return_([0])
    seen: list[object] = []
    call.sched.work.append(lambda: seen.append(inst.exclusive))
    assert not task.block_until(lambda: bool(seen), False, "other work")
    assert seen == [None]
    assert inst.exclusive is task
    assert call.sched.changed == [inst]


# -- the built-ins -------------------------------------------------------------------


class Guest:
    """A task of one instance, its built-ins and a memory for events."""

    def __init__(self, ft: FuncType = ASYNC_FT, options: CanonOptions = CALLBACK_OPTS) -> None:
        self.call = Call(ft, options)
        self.task = self.call.run()
        self.sched = self.call.sched
        self.inst = self.task.inst
        self.memory = BytesMemory()
        self.b = TaskBuiltins(self.sched, self.inst)

    @property
    def table(self) -> HandleTable:
        return self.inst.table

    def event_at(self, code: int, ptr: int = 16) -> EventTuple:
        p1, p2 = struct.unpack_from("<II", self.memory.view(), ptr)
        return (code, p1, p2)


def waitable_with(index: list[int], code: EventCode, payload: int) -> Callable[[], EventTuple]:
    return lambda: (int(code), index[0], payload)


def test_waitable_set_wait_delivers_in_join_order_and_blocks_when_empty() -> None:
    g = Guest()
    si = g.b.waitable_set_new()()
    ws = [Waitable() for _ in range(3)]
    idx = [[g.table.add(w)] for w in ws]
    join = g.b.waitable_join()
    for i in idx:
        join(i[0], si)
    ws[2].set_pending_event(waitable_with(idx[2], EventCode.STREAM_READ, 3))
    ws[0].set_pending_event(waitable_with(idx[0], EventCode.STREAM_WRITE, 1))
    wait = g.b.waitable_set_wait(False, g.memory)
    code = wait(si, 16)
    assert g.event_at(code) == (int(EventCode.STREAM_WRITE), idx[0][0], 1)
    code = wait(si, 16)
    assert g.event_at(code) == (int(EventCode.STREAM_READ), idx[2][0], 3)
    assert g.sched.blocks == []
    # Nothing pending: the task blocks until other work gives the middle one an event.
    g.sched.work.append(
        lambda: ws[1].set_pending_event(waitable_with(idx[1], EventCode.FUTURE_READ, 9))
    )
    code = wait(si, 16)
    assert g.event_at(code) == (int(EventCode.FUTURE_READ), idx[1][0], 9)
    assert len(g.sched.blocks) == 1
    # Waiters are counted only while they wait; members keep the set alive.
    with pytest.raises(Trap, match="cannot drop waitable set with members"):
        g.b.waitable_set_drop()(si)


def test_waitable_set_wait_cancelled() -> None:
    g = Guest()
    si = g.b.waitable_set_new()()
    g.sched.work.append(lambda: g.task.request_cancellation(None))
    code = g.b.waitable_set_wait(True, g.memory)(si, 16)
    assert code == int(EventCode.TASK_CANCELLED)
    assert g.task.state is TaskState.CANCEL_DELIVERED


def test_waitable_set_poll() -> None:
    g = Guest()
    si = g.b.waitable_set_new()()
    poll = g.b.waitable_set_poll(True, g.memory)
    assert poll(si, 16) == int(EventCode.NONE)
    w = Waitable()
    wi = [g.table.add(w)]
    g.b.waitable_join()(wi[0], si)
    w.set_pending_event(waitable_with(wi, EventCode.STREAM_WRITE, 4))
    g.task.request_cancellation(None)
    # A pending cancellation comes first when the poll is cancellable...
    assert poll(si, 16) == int(EventCode.TASK_CANCELLED)
    # ... and the event is still there after.
    code = poll(si, 16)
    assert g.event_at(code) == (int(EventCode.STREAM_WRITE), wi[0], 4)
    assert g.sched.blocks == []


def test_waitable_set_handles_are_checked() -> None:
    g = Guest()
    w = g.table.add(Waitable())
    with pytest.raises(Trap, match=f"handle index {w} is not a waitable set"):
        g.b.waitable_set_wait(False, g.memory)(w, 16)
    with pytest.raises(Trap, match="unknown handle index 99"):
        g.b.waitable_join()(99, 0)
    g.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        g.b.waitable_set_new()()


def test_task_return_checks_the_signature_and_resolves_once() -> None:
    g = Guest()
    wrong = g.b.task_return(None, CanonOptions())
    with pytest.raises(Trap, match=r"invalid `task\.return` signature"):
        wrong()
    ret = g.b.task_return(U32, CanonOptions())
    ret(42)
    assert g.call.resolved == [([42], "utf8")]
    with pytest.raises(Trap, match="task already returned a value"):
        ret(43)
    sync = Guest(SYNC_FT, CanonOptions())
    with pytest.raises(Trap, match="called by a synchronously-lifted task"):
        sync.b.task_return(U32, CanonOptions())(1)


def test_task_cancel_builtin() -> None:
    g = Guest()
    cancel = g.b.task_cancel()
    with pytest.raises(Trap, match="has not been cancelled"):
        cancel()
    g.task.request_cancellation(None)
    assert g.task.deliver_pending_cancel(True)
    cancel()
    assert g.call.resolved == [(None, None)]


def test_backpressure_counts_and_wakes() -> None:
    g = Guest()
    inc, dec = g.b.backpressure_inc(), g.b.backpressure_dec()
    inc()
    assert g.inst.backpressure == 1
    dec()
    assert g.inst.backpressure == 0
    assert g.sched.changed == [g.inst]
    with pytest.raises(Trap, match="backpressure counter underflow"):
        dec()


def test_thread_yield_delivers_a_pending_cancel() -> None:
    g = Guest()
    yield_ = g.b.thread_yield(True)
    assert yield_() == 0
    assert g.sched.yields == 1
    g.task.request_cancellation(None)
    assert yield_() == 1
    assert g.sched.yields == 1


# -- subtasks --------------------------------------------------------------------------


def test_subtask_states_in_order() -> None:
    sub = Subtask()
    seen = [sub.state]
    sub.state = SubtaskState.STARTED
    seen.append(sub.state)
    sub.resolve(SubtaskState.RETURNED, [5])
    seen.append(sub.state)
    assert seen == [SubtaskState.STARTING, SubtaskState.STARTED, SubtaskState.RETURNED]
    assert sub.resolved() and not sub.resolve_delivered()
    with pytest.raises(Trap, match="not yet resolved"):
        sub.drop()
    sub.deliver_resolve()
    sub.drop()
    before = Subtask()
    before.resolve_cancelled()
    assert before.state is SubtaskState.CANCELLED_BEFORE_STARTED


def _subtask_in(g: Guest, started: bool) -> tuple[Subtask, int, list[str]]:
    sub = Subtask()
    if started:
        sub.state = SubtaskState.STARTED
    i = g.table.add(sub)
    log: list[str] = []

    def event() -> EventTuple:
        if not sub.resolve_delivered():
            sub.deliver_resolve()
        return (int(EventCode.SUBTASK), i, int(sub.state))

    def resolve() -> None:
        log.append("resolved")
        sub.resolve_cancelled()
        sub.set_pending_event(event)

    def on_cancel(caller: Any) -> None:
        log.append("cancel requested")
        g.sched.work.append(resolve)

    sub.on_cancel = on_cancel
    return sub, i, log


def test_subtask_cancel_async_then_sync() -> None:
    g = Guest()
    sub, i, log = _subtask_in(g, started=True)
    # Asynchronous: the callee has not acknowledged yet.
    assert g.b.subtask_cancel(True)(i) == BLOCKED
    with pytest.raises(Trap, match="called twice"):
        g.b.subtask_cancel(True)(i)
    g.sched.work.pop(0)()
    assert sub.has_pending_event()

    # Synchronous: blocks until the acknowledgement arrives.
    g2 = Guest()
    _sub2, i2, log2 = _subtask_in(g2, started=False)
    state = g2.b.subtask_cancel(False)(i2)
    assert state == int(SubtaskState.CANCELLED_BEFORE_STARTED)
    assert log2 == ["cancel requested", "resolved"]
    assert len(g2.sched.blocks) == 1
    with pytest.raises(Trap, match="after terminal status delivered"):
        g2.b.subtask_cancel(False)(i2)
    g2.b.subtask_drop()(i2)
    with pytest.raises(Trap, match=f"unknown handle index {i2}"):
        g2.b.subtask_drop()(i2)
    assert log == ["cancel requested", "resolved"]


def test_a_synchronous_task_cannot_cancel_synchronously() -> None:
    g = Guest(SYNC_FT, CanonOptions())
    _sub, i, log = _subtask_in(g, started=True)
    with pytest.raises(Trap, match="cannot block a synchronous task"):
        g.b.subtask_cancel(False)(i)
    assert log == []


# -- the boundary ----------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_abi_package_imports_no_runtime() -> None:
    abi = Path(trio_wasi._abi.__file__).parent
    modules = sorted(abi.glob("*.py"))
    assert {"_tasks.py", "_task_builtins.py", "_scheduler.py", "_lower.py"} <= {
        p.name for p in modules
    }
    for path in modules:
        for name in _imports(path):
            root = name.lstrip(".").split(".")[0]
            assert root not in {"trio", "wasmtime"}, (path.name, name)
            if name.startswith(".."):
                # Only the package's error types and its frozen-class helper
                # (plain Python), outside _abi.
                assert name in {".._errors", ".._frozen"}, (path.name, name)


# -- canon lower: the caller's side of a subtask --------------------------------------


class Callee(ComponentFunc):
    """A component function that starts and resolves only when told to."""

    def __init__(self, ft: FuncType) -> None:
        self.type = ft
        self.name = "callee"
        self.calls: list[tuple[OnStart, OnResolve]] = []
        self.cancels: list[object] = []

    def invoke(
        self,
        caller: InstanceState | None,
        on_start: OnStart,
        on_resolve: OnResolve,
        source_encoding: StringEncoding | None,
    ) -> OnCancel:
        self.calls.append((on_start, on_resolve))
        return self.cancels.append


NO_VALUES = FuncType(params=(), result=None, is_async=True)


def test_async_lower_subtask_states_in_order() -> None:
    g = Guest()
    callee = Callee(NO_VALUES)
    lowered = async_lower(g.sched, callee, CanonOptions(is_async=True), g.inst, GUEST_ASYNC_VALUES)
    packed = lowered()
    assert packed & 0xF == int(SubtaskState.STARTING)
    index = packed >> 4
    sub = g.table.get(index)
    assert isinstance(sub, Subtask)
    si = g.b.waitable_set_new()()
    g.b.waitable_join()(index, si)
    poll = g.b.waitable_set_poll(False, g.memory)
    assert poll(si, 16) == int(EventCode.NONE)
    on_start, on_resolve = callee.calls[0]
    assert on_start() == []
    code = poll(si, 16)
    assert g.event_at(code) == (int(EventCode.SUBTASK), index, int(SubtaskState.STARTED))
    on_resolve([], None)
    code = poll(si, 16)
    assert g.event_at(code) == (int(EventCode.SUBTASK), index, int(SubtaskState.RETURNED))
    assert sub.resolve_delivered()
    g.b.waitable_join()(index, 0)
    g.b.subtask_drop()(index)


def test_async_lower_resolved_during_the_eager_start_has_no_handle() -> None:
    g = Guest()

    class Eager(Callee):
        def invoke(
            self,
            caller: InstanceState | None,
            on_start: OnStart,
            on_resolve: OnResolve,
            source_encoding: StringEncoding | None,
        ) -> OnCancel:
            on_start()
            on_resolve([], None)
            return noop_cancel

    lowered = async_lower(g.sched, Eager(NO_VALUES), CanonOptions(), g.inst, GUEST_ASYNC_VALUES)
    assert lowered() == int(SubtaskState.RETURNED)
    assert len(g.table) == 0


def test_sync_lower_blocks_until_the_callee_resolves() -> None:
    g = Guest()
    callee = Callee(FuncType(params=(), result=U32, is_async=True))
    lowered = sync_lower(g.sched, callee, CanonOptions(), g.inst, GUEST_ASYNC_VALUES)

    def finish() -> None:
        on_start, on_resolve = callee.calls[0]
        on_start()
        on_resolve([5], None)

    g.sched.work.append(finish)
    assert lowered() == 5
    assert len(g.sched.blocks) == 1
    # A synchronous task may not make that call.
    s = Guest(SYNC_FT, CanonOptions())
    blocked = sync_lower(s.sched, callee, CanonOptions(), s.inst, GUEST_ASYNC_VALUES)
    with pytest.raises(Trap, match="cannot block a synchronous task"):
        blocked()
    assert len(callee.calls) == 1


class Immediate(Callee):
    """A callee that runs to completion when invoked (as a plain host function does)."""

    def __init__(self, ft: FuncType, fn: Callable[..., Any]) -> None:
        super().__init__(ft)
        self.fn = fn
        self.seen: list[list[Any]] = []
        self.immediate = self.call_now

    def call_now(self, args: list[Any], lower: Any, cx: Any, vi: Any) -> list[Any]:
        self.seen.append(args)
        out: list[Any] = lower(cx, [self.fn(*args)], vi)
        return out


def test_sync_lower_of_an_immediate_callee_makes_no_subtask() -> None:
    g = Guest()
    rt = ResourceType("r", instance=InstanceState(), dtor=None)
    handle = resource_new(g.inst, rt, 7)
    lends: list[int] = []

    def fn(borrowed: Any, n: int) -> int:
        # The borrow is lent for the duration of the call, and only then.
        lends.append(g.table.get(handle).num_lends)
        return n + 1

    callee = Immediate(FuncType(params=(("self", BorrowType(rt)), ("n", U32)), result=U32), fn)
    lowered = sync_lower(g.sched, callee, CanonOptions(), g.inst, GUEST_ASYNC_VALUES)
    assert lowered(handle, 41) == 42
    assert lends == [1]
    assert g.table.get(handle).num_lends == 0
    assert callee.calls == []  # invoke was never needed
    assert len(g.sched.blocks) == 0
    assert len(g.table) == 1  # the resource alone: no subtask handle


def test_sync_lower_of_an_immediate_async_callee_keeps_the_blocking_rule() -> None:
    # An async-typed callee may block in general, so a synchronous task may
    # not call it synchronously, even when this one would not block.
    callee = Immediate(FuncType(params=(), result=U32, is_async=True), lambda: 5)
    s = Guest(SYNC_FT, CanonOptions())
    blocked = sync_lower(s.sched, callee, CanonOptions(), s.inst, GUEST_ASYNC_VALUES)
    with pytest.raises(Trap, match="cannot block a synchronous task"):
        blocked()
    assert callee.seen == []
    g = Guest()
    allowed = sync_lower(g.sched, callee, CanonOptions(), g.inst, GUEST_ASYNC_VALUES)
    assert allowed() == 5


# -- entering and the callback loop ---------------------------------------------------


def test_entering_waits_behind_backpressure_and_the_lock() -> None:
    call = Call()
    task = call.task
    inst = task.inst
    assert not task.must_wait_to_enter()
    inst.backpressure = 1
    assert task.must_wait_to_enter()
    task.wait = TaskWait("enter", cancellable=True)
    assert task.held_back_by(False) is inst
    # A task resumed to be cancelled needs only to enter.
    assert task.held_back_by(True) is None
    inst.backpressure = 0
    assert task.held_back_by(False) is None
    inst.exclusive = Call().task
    assert task.must_wait_to_enter()
    inst.exclusive = None
    inst.num_waiting_to_enter = 1
    assert task.must_wait_to_enter()
    # Synchronous functions never queue; a stackful lift ignores the lock.
    assert not Call(SYNC_FT, CanonOptions()).task.must_wait_to_enter()
    stackful = Call(options=CanonOptions(is_async=True)).task
    stackful.inst.exclusive = task
    assert not stackful.must_wait_to_enter()


def test_a_waiting_task_is_held_back_by_an_entered_ancestor() -> None:
    call = Call()
    task = call.task
    parent = InstanceState()
    child = InstanceState(parent=parent)
    task.inst = child
    task.wait = TaskWait("wait", cancellable=True)
    assert task.held_back_by(False) is None
    parent.enter_from(None)
    assert task.held_back_by(False) is parent
    parent.leave_to(None)
    assert task.held_back_by(False) is None


def test_callback_codes() -> None:
    g = Guest()
    task = g.task
    g.inst.exclusive = task
    assert task.callback_returned(CALLBACK_YIELD)
    assert task.wait is not None and task.wait.kind == "yield"
    assert g.inst.exclusive is None
    assert g.sched.changed == [g.inst]
    si = g.b.waitable_set_new()()
    assert task.callback_returned(CALLBACK_WAIT | si << 4)
    wait = task.wait
    assert wait is not None and wait.kind == "wait" and wait.wset is g.table.get(si)
    assert wait.wset.num_waiting == 1
    with pytest.raises(Trap, match="unsupported callback code"):
        task.callback_returned(3)
    other = g.table.add(Waitable())
    with pytest.raises(Trap, match="invalid waitable set handle"):
        task.callback_returned(CALLBACK_WAIT | other << 4)
    with pytest.raises(Trap, match="exited without returning"):
        task.callback_returned(CALLBACK_EXIT)
    task.return_([0])
    assert not task.callback_returned(CALLBACK_EXIT)
    assert task.exited


def test_a_synchronous_copy_blocks_through_the_scheduler() -> None:
    g = Guest()
    end = Waitable()
    g.sched.work.append(lambda: end.set_pending_event(lambda: (0, 0, 0)))
    g.b.copy_wait("stream.read")(end)
    assert g.sched.blocks == ["<Task f STARTED> waits for stream.read to finish"]
    assert end.has_pending_event()
    # The may-block checks come before the body looks at its operands.
    ran: list[int] = []
    body = g.b.may_block(lambda i: ran.append(i) or 0)
    assert body(3) == 0
    s = Guest(SYNC_FT, CanonOptions())
    with pytest.raises(Trap, match="cannot block a synchronous task"):
        s.b.may_block(lambda i: ran.append(i) or 0)(4)
    g.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        body(5)
    assert ran == [3]
