"""What the canonical ABI's task logic needs from a runtime that schedules it.

The task state machine (``_tasks``) and the task, subtask and waitable-set
built-ins (``_task_builtins``) follow the specification's state rules and
never block, switch stacks or touch an event loop themselves. Where the
specification suspends the current thread or lets another task run, they call
the :class:`Scheduler` they were given; where a waiting task is woken, they
call the :class:`TaskDriver` the scheduler attached to it. The runtime
(``trio_wasi._run``) implements both on trio and wasmtime; the ABI tests
implement them with a few lines of plain Python.

The methods are the ones the hot paths already called on the runtime
directly, so going through the protocol costs no extra call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._handles import InstanceState
    from ._tasks import Task

__all__ = ["Scheduler", "TaskDriver"]


class Scheduler(Protocol):
    """The runtime side of tasks: which task runs, blocking, and wake-ups."""

    def maybe_current_task(self) -> Task | None:
        """The task whose wasm called the built-in running now, or None (a start function)."""
        ...

    def current_task(self) -> Task:
        """Like :meth:`maybe_current_task`; traps when no task is running."""
        ...

    def block_until(
        self, ready: Callable[[], bool], describe: Callable[[], str], *, blocks: bool = False
    ) -> None:
        """Suspend the current frame until ``ready()``; other work may run meanwhile.

        ``describe()`` names the wait in a deadlock or timeout message. The
        caller has checked ``ready()`` and the may-block rules already.
        ``blocks``: the calling thread blocks (CanonicalABI.md "Thread"), as
        opposed to waiting for a synchronous callee that is still running;
        a block of a non-async-typed call restricts what runs meanwhile.
        """
        ...

    def instance_changed(self, inst: InstanceState) -> None:
        """Backpressure, the exclusive lock or an enter flag of ``inst`` changed.

        Tasks held back by ``inst`` (to enter, or to take its lock) may go on.
        """
        ...

    def enter(self, inst: InstanceState, caller: InstanceState | None) -> None:
        """Enter ``inst`` from ``caller`` for a step the scheduler did not start."""
        ...

    def leave(self, inst: InstanceState, caller: InstanceState | None) -> None:
        """Undo :meth:`enter`."""
        ...

    def others_ready(self, task: Task) -> bool:
        """Whether another thread of ``task``'s instance is ready to run (guest threads).

        A synchronous task may only block when one is: it can use the stack meanwhile.
        """
        ...

    def yield_now(self, task: Task) -> None:
        """``thread.yield`` from a frame: let other ready work run first."""
        ...

    def run_for(self, task: Task, fn: Callable[[], None]) -> None:
        """Run ``fn`` where ``task``'s wasm runs (its store's thread), now or soon."""
        ...

    def release_thread(self, task: Task) -> None:
        """``task`` exited: give its implicit guest thread's record back."""
        ...


class TaskDriver(Protocol):
    """The scheduler's side of one task that waits between steps or to enter."""

    def poke(self) -> None:
        """The task's wait may be over (an event, a cancellation): look soon."""
        ...

    def resume(self, cancelled: bool) -> None:
        """Run the task's next step now; the caller checked that its wait is over."""
        ...

    def finished(self) -> None:
        """The task exited: stop waking it."""
        ...
