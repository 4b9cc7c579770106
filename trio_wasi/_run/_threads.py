"""Guest threads of a component instance (CanonicalABI.md "Thread State", "canon thread.*").

Every task runs on an *implicit thread*; ``thread.new-indirect`` makes more
threads of the calling task, each running a function taken from a core
table. The specification gives every thread an index in a per-instance
thread table (separate from the handle table) and two context slots.

The implicit thread's record is made lazily, the first time a built-in needs
it, so calls that never ask pay nothing; its context slots are the task's
``storage``, and its index is released when the task exits (``release``).

On the store-thread execution model (``_executor``) a guest thread is a stack
of its own, so it is an *agent* of its own: a thread of the same wasmtime
store, made when the guest thread first runs, whose one job calls the thread
function. Exactly one agent holds the baton, so exactly one guest thread runs
wasm at a time. A thread that suspends parks its frame (``block_until``)
with the condition "someone resumed me"; ``thread.resume-later`` sets that
condition, so the executor runs the thread again in its usual order;
``thread.suspend-then-resume`` and ``thread.yield-then-resume`` also name the
agent that must get the baton next (``ThreadedExecutor.hand_off``), so the
switch is a direct hand-off with no other work in between. Nothing polls.
While a non-async-typed call is blocked (its implicit thread switched away),
only threads of its own instance that need no exclusive lock may run: each
parked frame and queued start says which call may run it (``run_tag``), and
the call's own block says which call is blocked (``sync_scope``).

Two limits of wasmtime's C API shape this (measured with wasmtime 50):

- its stack limit is per store and set by the outermost entry, so a store
  whose wasm runs on several OS threads gets a permanent outermost
  activation on a low stack (``_stackroot``);
- it records the latest entry into a store in the store and walks the stack
  from there when a trap unwinds; a trap in a frame of an older entry makes
  that walk panic and abort the process. So the entries of such a store end
  in LIFO order (``StoreEntries``): a parked thread resumes only while its
  entry is the store's latest. A guest that needs another order (a thread
  switches back to one it left, and stays suspended) ends in a deadlock trap
  instead of hanging. Lifting this needs wasm-level stack switching.

A thread function that returns leaves the thread table; the specification's
check that the last thread of a task to exit finds the task resolved is not
made (a task ends with its implicit thread, see ``Task.exit``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, final

from .._abi._handles import InstanceState
from .._abi._tasks import TaskState
from .._abi._trap import trap, trap_if
from ._executor import ANY_TIME, NOT_IN_SYNC_CALL

if TYPE_CHECKING:
    from .._abi._tasks import Task
    from ._executor import Agent
    from ._runtime import InstanceRuntime, StoreHandle

__all__ = [
    "GuestThread",
    "ThreadBuiltins",
    "ThreadTable",
    "current_storage",
    "current_thread",
    "entries_of",
    "implicit_thread",
    "others_ready",
    "register_store",
    "release",
    "run_tag",
    "stack_guard",
    "sync_scope",
    "thread_table",
]

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
    """One thread of a task (CanonicalABI.md "Thread").

    ``suspended``: parked by a ``thread.suspend*`` built-in (or not started
    yet) with nobody having resumed it; ``woken``: resumed, not yet running
    again. ``agent`` is the agent whose thread runs (or last ran) it.
    """

    __slots__ = (
        "agent",
        "entry",
        "handle",
        "index",
        "started",
        "storage",
        "suspended",
        "task",
        "woken",
    )

    def __init__(self, task: Task, index: int) -> None:
        self.task = task
        self.index = index
        self.agent: Agent | None = None
        # The thread function, for threads made by thread.new-indirect.
        self.entry: Callable[[], None] | None = None
        # The store handle it runs in (threads made by thread.new-indirect).
        self.handle: StoreHandle | None = None
        self.started = True
        self.suspended = False
        self.woken = False
        self.storage = task.storage


_tables: weakref.WeakKeyDictionary[InstanceState, ThreadTable] = weakref.WeakKeyDictionary()


def thread_table(inst: InstanceState) -> ThreadTable:
    """The thread table of ``inst`` (made on first use)."""
    table = _tables.get(inst)
    if table is None:
        table = _tables[inst] = ThreadTable()
    return table


@final
class StoreEntries:
    """The wasm activations of one store with guest threads, oldest first.

    Agents of such a store enter it from several OS threads. wasmtime keeps
    the store's record of the latest entry (for walking the stack when a trap
    unwinds) in the store itself and restores it on exit, so the entries must
    still end in LIFO order: a trap in a frame whose entry is not the latest
    aborts the process (measured with wasmtime 50: its stack walker panics).
    So a parked frame of an agent resumes, or traps, only while that agent's
    entry is the latest (``on_top``); guest threads that interleave
    otherwise wait.
    """

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active: list[Agent] = []

    def on_top(self, agent: Agent) -> bool:
        active = self.active
        return not active or active[-1] is agent

    def call(self, agent: Agent, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Call ``fn`` (which enters the store) as an activation of ``agent``."""
        active = self.active
        active.append(agent)
        try:
            return fn(*args)
        finally:
            # The innermost activation of this agent: the last occurrence.
            for i in range(len(active) - 1, -1, -1):
                if active[i] is agent:
                    del active[i]
                    break


_entries_by_handle: weakref.WeakKeyDictionary[Any, StoreEntries] = weakref.WeakKeyDictionary()
_entries_by_agent: weakref.WeakKeyDictionary[Any, StoreEntries] = weakref.WeakKeyDictionary()


def register_store(handle: StoreHandle) -> None:
    """Track the activations of a store with guest threads (its agent is made)."""
    entries = _entries_by_handle[handle] = StoreEntries()
    assert handle.agent is not None
    _entries_by_agent[handle.agent] = entries


def entries_of(handle: StoreHandle) -> StoreEntries | None:
    return _entries_by_handle.get(handle)


def stack_guard(agent: Agent | None) -> Callable[[], bool] | None:
    """For a parked frame of ``agent``: whether it may resume or trap now (None: always)."""
    if not _entries_by_agent or agent is None:
        return None
    entries = _entries_by_agent.get(agent)
    if entries is None:
        return None
    return lambda: entries.on_top(agent)


# Explicit guest threads running now, by the OS thread of their agent.
_running: dict[int, GuestThread] = {}


def current_thread(task: Task) -> GuestThread:
    """The thread of ``task`` that is calling a built-in."""
    if _running:
        found = _running.get(threading.get_ident())
        if found is not None and found.task is task:
            return found
    return implicit_thread(task)


def run_tag(task: Task | None) -> Any:
    """Which synchronous call may resume the calling thread once it parks (``_executor`` tags).

    CanonicalABI.md "canon lift": a non-async-typed call that blocks resumes
    only threads of its own instance, and not one that needs the instance's
    exclusive lock (the implicit thread of an async-typed synchronous or
    callback lift). A frame with no task is host-side work.
    """
    if task is None:
        return ANY_TIME
    if _running:
        found = _running.get(threading.get_ident())
        if found is not None and found.task is task:
            return task.inst  # a guest thread made by thread.new-indirect
    if task.ft.is_async and task.needs_exclusive():
        return NOT_IN_SYNC_CALL
    return task.inst


def sync_scope(task: Task) -> InstanceState | None:
    """The instance whose non-async-typed call blocks if the calling thread blocks now.

    That is the case when the calling thread is the implicit thread of a task
    whose function type is not ``async`` and which has not returned yet
    (CanonicalABI.md "canon lift", the loop after the first resume); a block
    of any other thread happens inside such a call at most.
    """
    if task.ft.is_async or task.state is TaskState.RESOLVED:
        return None
    if _running:
        found = _running.get(threading.get_ident())
        if found is not None and found.task is task:
            return None
    return task.inst


def current_storage(task: Task) -> list[int]:
    """The context slots of the calling thread (CanonicalABI.md "canon context.get")."""
    if _running:
        found = _running.get(threading.get_ident())
        if found is not None and found.task is task:
            return found.storage
    return task.storage


def others_ready(task: Task) -> bool:
    """Whether a thread of ``task``'s instance other than the caller is ready to run."""
    table = _tables.get(task.inst)
    if table is None:
        return False
    me = current_thread(task)
    return any(t is not None and t is not me and t.woken for t in table._array)


def implicit_thread(task: Task) -> GuestThread:
    """The implicit thread of ``task`` (CanonicalABI.md "Task.enter_implicit_thread")."""
    thread: GuestThread | None = task.thread
    if thread is None:
        table = thread_table(task.inst)
        thread = GuestThread(task, 0)
        thread.index = table.add(thread)
        task.thread = thread
    return thread


def release(task: Task) -> None:
    """Give the implicit thread's index back (CanonicalABI.md "Task.exit_implicit_thread")."""
    thread: GuestThread | None = task.thread
    if thread is not None:
        task.thread = None
        thread_table(task.inst).remove(thread.index)


def _leave_check(inst: InstanceState) -> None:
    if not inst.may_leave:
        trap("cannot leave component instance")


class ThreadBuiltins:
    """The ``thread.*`` built-ins of one component instance (CanonicalABI.md "canon thread.*")."""

    def __init__(self, rt: InstanceRuntime, inst: InstanceState) -> None:
        self.rt = rt
        self.inst = inst

    def _current(self) -> GuestThread:
        task = self.rt.current_task()
        _leave_check(self.inst)
        return current_thread(task)

    def _other(self, i: int) -> GuestThread:
        return thread_table(self.inst).get(i)

    # -- starting and waking -------------------------------------------------------

    def _start(self, thread: GuestThread) -> None:
        """Queue the first run of a thread made by thread.new-indirect on an agent of its own."""
        rt = self.rt
        ex = rt.executor
        task = thread.task
        entry = thread.entry
        assert entry is not None and ex.threaded
        thread.started = True
        agent = ex.new_agent(f"trio_wasi guest thread {thread.index}")
        assert agent is not None
        thread.agent = agent
        table = thread_table(self.inst)
        assert thread.handle is not None
        entries = _entries_by_handle[thread.handle]
        _entries_by_agent[agent] = entries

        def run() -> None:
            if rt.poisoned is not None:
                # The instance trapped after the thread was made ready: none
                # of its wasm runs again, so the thread never starts.
                return
            key = threading.get_ident()
            _running[key] = thread
            thread.woken = False  # running now, no longer waiting to run
            current = rt.current
            current.append(task)
            try:
                entries.call(agent, entry, ())
            finally:
                current.pop()
                del _running[key]
            # CanonicalABI.md "canon thread.new-indirect": the thread function
            # returned, so the thread leaves its task and the thread table.
            table.remove(thread.index)

        # A synchronous call of this instance may start it.
        ex.post(run, agent, tag=self.inst)

    def _wake(self, thread: GuestThread, *, now: bool) -> None:
        """Resume ``thread``: ``now`` hands it the baton next, else it runs in turn."""
        thread.suspended = False
        thread.woken = True
        if not thread.started:
            self._start(thread)
        if now and thread.agent is not None:
            self.rt.executor.hand_off_to(thread.agent)

    def _suspend(self, me: GuestThread, cancellable: bool) -> int:
        """Suspend the calling thread until another resumes it; 1 when cancelled instead."""
        # Nothing resumes a plain suspend but other threads: a task that may
        # not block must not wait for them.
        trap_if(
            not me.task.may_block and not others_ready(me.task),
            "cannot block a synchronous task before returning",
        )
        me.suspended = True
        return int(self._park(me, cancellable, "is suspended"))

    def _park(self, me: GuestThread, cancellable: bool, what: str) -> bool:
        """Park the calling thread until woken (or cancelled); True when cancelled."""
        task = me.task
        rt = self.rt
        me.agent = rt.executor.current_agent()
        task.cancellable = cancellable
        task.cancel_now = False
        try:
            if me.woken:
                # Still ready (a yield to another thread): it runs again after
                # the thread it handed the baton to, behind older ready work.
                rt.park_yielding(lambda: f"{task!r} {what}", blocks=True)
            else:
                # Only another thread resumes it, maybe in a later call: it
                # is a deadlock only while another thread is ready but
                # cannot run before this one (_threads.StoreEntries).
                rt.block_until(
                    lambda: me.woken or task.cancel_now,
                    lambda: f"{task!r} {what}, and a thread it made ready cannot run before it",
                    trap_when=lambda: others_ready(task),
                    blocks=True,
                )
        finally:
            task.cancellable = False
            me.woken = False
        me.suspended = False
        if task.cancel_now:
            task.cancel_now = False
            return True
        return False

    # -- the built-ins -------------------------------------------------------------

    def new_indirect(self, handle: Any, table: Any) -> Callable[[int, int], int]:
        inst = self.inst

        def body(fi: int, c: int) -> int:
            task = self.rt.current_task()
            _leave_check(inst)
            store = handle.store
            f = store.table_func(table, fi)
            if f is None:
                trap(f"thread.new-indirect: no function at table index {fi}")
            try:
                raw = store.raw_func(f, ["i32"], [])
            except TypeError:
                trap("thread.new-indirect: indirect call type mismatch")
            thread = GuestThread(task, 0)
            thread.storage = [0, 0]
            thread.started = False
            thread.suspended = True
            thread.entry = lambda: raw(c)
            thread.handle = handle
            thread.index = thread_table(inst).add(thread)
            return thread.index

        return body

    def resume_later(self) -> Callable[[int], None]:
        def body(i: int) -> None:
            self.rt.current_task()
            _leave_check(self.inst)
            other = self._other(i)
            trap_if(not other.suspended, "thread is not suspended")
            self._wake(other, now=False)

        return body

    def suspend(self, cancellable: bool) -> Callable[[], int]:
        def body() -> int:
            me = self._current()
            task = me.task
            if task.deliver_pending_cancel(cancellable):
                return 1
            return self._suspend(me, cancellable)

        return body

    def switch(self, cancellable: bool, *, stay_ready: bool) -> Callable[[int], int]:
        """thread.suspend-then-resume (``stay_ready`` False) and thread.yield-then-resume."""

        def body(i: int) -> int:
            me = self._current()
            other = self._other(i)
            trap_if(not other.suspended, "thread is not suspended")
            if me.task.deliver_pending_cancel(cancellable):
                return 1
            return self._switch(me, other, cancellable, stay_ready=stay_ready)

        return body

    def _switch(
        self, me: GuestThread, other: GuestThread, cancellable: bool, *, stay_ready: bool
    ) -> int:
        if stay_ready:
            me.woken = True
        else:
            me.suspended = True
        self._wake(other, now=True)
        what = "yields to another thread" if stay_ready else "switched to another thread"
        return int(self._park(me, cancellable, what))

    def promote(self, cancellable: bool, *, stay_ready: bool) -> Callable[[int], int]:
        """thread.suspend-then-promote (``stay_ready`` False) and thread.yield-then-promote."""

        def body(i: int) -> int:
            me = self._current()
            other = self._other(i)
            task = me.task
            if task.deliver_pending_cancel(cancellable):
                return 1
            if other.woken and other is not me:
                # Ready and waiting: it goes next, directly.
                other.woken = False
                other.suspended = True
                return self._switch(me, other, cancellable, stay_ready=stay_ready)
            if stay_ready:
                self.rt.yield_now(task)
                return int(task.deliver_pending_cancel(cancellable))
            return self._suspend(me, cancellable)

        return body
