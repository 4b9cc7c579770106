"""Waitables, waitable sets and subtasks (CanonicalABI.md "Waitable State").

Rules:

* a waitable (subtask, stream end, future end) holds at most one *pending
  event*, stored as a thunk so that delivering it can update state at the
  moment of delivery (CanonicalABI.md: ``get_pending_event``);
* a waitable belongs to at most one waitable set; joining moves it;
* a waitable set's event is the pending event of any member; which member
  is delivered first is not specified, and this implementation takes the
  member that has been waiting longest (a deterministic choice keeps runs
  reproducible);
* a waitable with a *synchronous waiter* (a blocking built-in waiting on it
  directly) may not be joined to a set.

Nothing here blocks. Whoever waits registers a *waker*, a plain callable
invoked when an event may have become available; the scheduler decides what a
waker does (set a trio event, or nothing when the waiter polls on its own
thread). Wakers may be called spuriously; waiters always re-check.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, final

from ._resources import BorrowScope
from ._trap import trap

__all__ = [
    "BLOCKED",
    "EventCode",
    "EventTuple",
    "Subtask",
    "SubtaskState",
    "Waitable",
    "WaitableSet",
    "Waker",
]

# The value a non-blocking built-in returns when its operation did not finish.
BLOCKED = 0xFFFF_FFFF


class EventCode(enum.IntEnum):
    """Event codes delivered to waiting guests (CanonicalABI.md "Waitable State")."""

    NONE = 0
    SUBTASK = 1
    STREAM_READ = 2
    STREAM_WRITE = 3
    FUTURE_READ = 4
    FUTURE_WRITE = 5
    TASK_CANCELLED = 6


EventTuple = tuple[int, int, int]
Waker = Callable[[], None]


class Waitable:
    """Something a guest can wait on: holds at most one pending event."""

    __slots__ = ("_pending", "has_sync_waiter", "sync_waker", "wset")

    def __init__(self) -> None:
        # (CopyEnd.__init__ sets these fields itself: keep the two in step.)
        self._pending: Callable[[], EventTuple] | None = None
        self.wset: WaitableSet | None = None
        self.has_sync_waiter = False
        # Set by a blocking built-in waiting on this waitable alone.
        self.sync_waker: Waker | None = None

    def set_pending_event(self, pending: Callable[[], EventTuple] | None) -> None:
        self._pending = pending
        if pending is not None:
            self._wake()

    def _wake(self) -> None:
        if self.wset is not None:
            self.wset.member_has_event(self)
        if self.sync_waker is not None:
            self.sync_waker()

    def has_pending_event(self) -> bool:
        return self._pending is not None

    def in_waitable_set(self) -> bool:
        return self.wset is not None

    def get_pending_event(self) -> EventTuple:
        pending = self._pending
        assert pending is not None
        self._pending = None
        return pending()

    def join(self, wset: WaitableSet | None) -> None:
        assert not self.has_sync_waiter
        if self.wset is not None:
            self.wset.elems.remove(self)
        self.wset = wset
        if wset is not None:
            wset.elems.append(self)
            if self._pending is not None:
                wset.member_has_event(self)

    def drop(self) -> None:
        assert not self.has_sync_waiter
        if self.wset is not None:  # (else joining no set changes nothing)
            self.join(None)


@final
class WaitableSet:
    """A set of waitables a task waits on together."""

    __slots__ = ("_more_wakers", "_waker", "elems", "num_waiting")

    def __init__(self) -> None:
        self.elems: list[Waitable] = []
        self.num_waiting = 0
        # Who to tell when a member has an event, in the order added: one
        # slot for the usual single waiter (no list kept per waiting task),
        # a list for any others.
        self._waker: Waker | None = None
        self._more_wakers: list[Waker] | None = None

    def add_waker(self, waker: Waker) -> None:
        """Call ``waker()`` whenever a member has an event, until removed."""
        if self._waker is None:
            self._waker = waker
        elif self._more_wakers is None:
            self._more_wakers = [waker]
        else:
            self._more_wakers.append(waker)

    def remove_waker(self, waker: Waker) -> None:
        """Undo :meth:`add_waker` (nothing if ``waker`` is not registered)."""
        more = self._more_wakers
        if self._waker is waker:
            self._waker = more.pop(0) if more else None
        elif more and waker in more:
            more.remove(waker)
        if not more:
            self._more_wakers = None

    def member_has_event(self, w: Waitable) -> None:
        waker = self._waker
        if waker is None:
            return
        more = self._more_wakers
        if more is None:
            waker()
            return
        # Those registered now, even if a waker adds or removes some.
        for each in [waker, *more]:
            each()

    def has_pending_event(self) -> bool:
        # (``Waitable.has_pending_event`` of each, inline: asked on every wake-up.)
        for w in self.elems:
            if w._pending is not None:
                return True
        return False

    def get_pending_event(self) -> EventTuple:
        for idx, w in enumerate(self.elems):
            if w.has_pending_event():
                # Rotate the delivered member to the back: fair, and
                # deterministic.
                del self.elems[idx]
                self.elems.append(w)
                return w.get_pending_event()
        raise AssertionError("no member of the waitable set has an event")

    def drop(self) -> None:
        if self.elems:
            trap("cannot drop waitable set with members")
        if self.num_waiting > 0:
            trap("cannot drop waitable set with waiters")


class SubtaskState(enum.IntEnum):
    """Subtask states as delivered to guests (CanonicalABI.md "Subtask State")."""

    STARTING = 0
    STARTED = 1
    RETURNED = 2
    CANCELLED_BEFORE_STARTED = 3
    CANCELLED_BEFORE_RETURNED = 4


@final
class Subtask(Waitable):
    """The caller's handle on an async-lowered call in progress.

    ``scope`` is the call's borrow bookkeeping: handles lent to the callee stay
    lent until the resolution is delivered to the caller.
    """

    __slots__ = (
        "_delivered",
        "cancellation_requested",
        "flat_results",
        "on_cancel",
        "scope",
        "state",
    )

    def __init__(self) -> None:
        super().__init__()
        self.state = SubtaskState.STARTING
        self.on_cancel: Callable[[Any], None] | None = None
        self.scope = BorrowScope()
        self.cancellation_requested = False
        # A shared empty tuple until resolved: nothing per waiting call.
        self.flat_results: Sequence[Any] = ()
        self._delivered = False

    def resolved(self) -> bool:
        return self.state >= SubtaskState.RETURNED

    def resolve(self, state: SubtaskState, flat_results: Sequence[Any]) -> None:
        assert state == SubtaskState.RETURNED or not flat_results
        assert not self.resolved()
        self.state = state
        self.flat_results = flat_results

    def resolve_cancelled(self) -> None:
        """The callee acknowledged cancellation: before or after it started."""
        started = self.state is not SubtaskState.STARTING
        self.resolve(
            SubtaskState.CANCELLED_BEFORE_RETURNED
            if started
            else SubtaskState.CANCELLED_BEFORE_STARTED,
            [],
        )

    def deliver_resolve(self) -> None:
        assert not self._delivered and self.resolved()
        self.scope.release()
        self._delivered = True
        # A resolved subtask cannot be cancelled; the callee's cancel hook
        # usually leads back here (through the caller's on_resolve), and
        # dropping it lets the call's objects die by reference counting.
        self.on_cancel = None

    def resolve_delivered(self) -> bool:
        return self._delivered

    def drop(self) -> None:
        if not self._delivered:
            trap("cannot drop a subtask which has not yet resolved")
        super().drop()
