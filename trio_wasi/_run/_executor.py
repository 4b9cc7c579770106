"""Where wasm runs: inline on the trio thread, or on one thread per store.

ARCHITECTURE.md section 4: wasmtime allows one thread at a time inside a
store, and nested wasm stacks of one store must unwind in LIFO order. Python
cannot park a wasm stack on the trio thread, so a component whose wasm may
block (a synchronous lower of an async function, ``waitable-set.wait``, a
stackful lift, a blocking host function) runs on store threads.

Threaded mode gives every component instance that has core code a wasmtime
store of its own and a thread of its own (an *agent*): the component model
shares no core state between component instances, so this is sound, and it
lets the parked frames of *different* instances interleave freely, as the
specification's cooperative threads do. Within one instance, frames still
nest in LIFO order.

Exactly one agent runs at a time: it holds the *baton*. The baton protects
all canonical-ABI state, so none of it needs locks. An agent gives the baton
up when it finishes a job, when a frame parks (``block_until``), and while it
waits for a job it handed to another agent (``call_on``). A job whose frame
parks reports PARKED to whoever handed it over, who continues: that is how an
eagerly started callee that blocks returns control to its caller.

A parked agent resumes its frame when the baton is free, its own queue is
empty and its frame's condition holds; jobs queued for it run first, nested
on top of the parked frame. A wait that can never end (nothing runs, nothing
is queued, nothing can arrive from the trio side) is a trap.

Hand-offs are few and targeted. Every agent sleeps on a wake-up of its own
(a lock used as a semaphore, outside the executor's one lock) and is woken
only when the baton is handed to it; an agent that gets the baton back after
a job (more work is queued for it) goes on without sleeping, so a busy store
thread drains its queue per wake-up. A call from trio is queued straight onto the callee's
store thread. Trio-side callbacks made while an agent holds the baton are
collected and sent in one ``TrioToken.run_sync_soon`` when the baton leaves
that agent. Nothing polls: every change of canonical state happens under the
baton, and every hand-over re-examines who may go next, so the moment the
last runnable work parks is also the moment a deadlock is decided (the
parked frame traps) or the executor turns idle (``on_idle``).

While a non-async-typed call has blocked (its implicit thread switched to
another guest thread), only work that call lets run is served: every unit of
work carries a *tag* saying which synchronous call may run it (see
``ThreadedExecutor._grant_in_sync_call_locked``).

The inline executor runs everything on the trio thread with no hand-off; a
store runs inline only when nothing in it can block.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

import outcome
import trio

from .._abi._trap import trap
from .._errors import Trap

__all__ = [
    "ANY_TIME",
    "NOT_IN_SYNC_CALL",
    "PARKED",
    "Agent",
    "Executor",
    "InlineExecutor",
    "ThreadedExecutor",
]

T = TypeVar("T")


class _Parked:
    def __repr__(self) -> str:
        return "PARKED"


PARKED: Any = _Parked()
"""What ``call_on``/``run`` return when the job's frame parked instead of finishing."""

_seq = itertools.count()


class _Tag:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# Tags of runnable work. Besides these two, a tag is the component instance
# (``InstanceState``) of a guest thread that a synchronous call of that
# instance may resume.
ANY_TIME: Final[Any] = _Tag("ANY_TIME")
"""Host-side work (a result from trio, a stream hand-off): never held back."""
NOT_IN_SYNC_CALL: Final[Any] = _Tag("NOT_IN_SYNC_CALL")
"""Work no synchronous call lets run: a new task, a callback step, an exclusive lock holder."""

#: How many jobs in a row one agent may run before callbacks it made for the
#: trio side are sent anyway (they are otherwise sent when the baton leaves it).
_MAX_HELD = 32

#: How many parked frames one agent's thread may hold before calls from the
#: host wait to start on it. Each parked frame (a stackful task waiting, a
#: blocked synchronous call) stays on the thread's stack, and work started
#: meanwhile nests on top of it: about 16 Python frames and a few KiB of
#: machine stack per level, measured. Unbounded, a few dozen calls parked at
#: once reach Python's default recursion limit (1000) and a few hundred
#: wasmtime's wasm stack budget (512 KiB, counted from the thread's outermost
#: entry), and the instance is lost. At this depth new calls queue instead
#: (``Agent.entries``) and start once frames have unwound; only when nothing
#: else can make progress (every frame waits for a call still queued) does one
#: start past the bound.
MAX_PARKED = 24


class _FrameWait:
    """A frame of an agent waiting for the baton: to resume, or to run jobs."""

    __slots__ = (
        "describe",
        "on_top",
        "park",
        "ready",
        "scope",
        "seq",
        "stalled",
        "tag",
        "unwindable",
    )

    def __init__(
        self,
        ready: Callable[[], bool],
        park: bool,
        describe: Callable[[], str] | None = None,
        stalled: Callable[[], bool] | None = None,
        unwindable: Callable[[], bool] | None = None,
        tag: Any = ANY_TIME,
        scope: Any = None,
        on_top: Callable[[], bool] | None = None,
    ) -> None:
        self.ready = ready
        # False while the frame may not trap (a deadlock): a later wasm
        # entry of its store is still active (guest threads, see _threads),
        # or it is a suspended guest thread that a later call may resume.
        self.unwindable = unwindable
        # Only the first of those: whether its store's latest entry is its own.
        self.on_top = on_top
        # Which synchronous call may resume it (see the tags above), and the
        # instance whose non-async-typed call blocks while it is parked (None:
        # it is not such a block).
        self.tag = tag
        self.scope = scope
        # A parked frame lets its caller go on; a hop wait (park=False) is
        # part of the running call chain.
        self.park = park
        self.describe = describe
        self.stalled = stalled
        # When it started waiting: parked frames and fresh jobs are served
        # in this order.
        self.seq = next(_seq)


class Agent:
    """The thread that runs one store's wasm (threaded mode)."""

    def __init__(self, ex: ThreadedExecutor, name: str) -> None:
        self.ex = ex
        self.name = name
        # Woken only when the baton is handed to this agent (or on close): a
        # lock used as a one-token semaphore (released: a wake-up is pending).
        # Waking and waiting are single C calls, not threading.Condition's
        # Python code and per-wait lock; the waiter re-checks its condition,
        # so a stale token costs one extra look, never a missed wake-up.
        self._wakeup = threading.Lock()
        self._wakeup.acquire()
        self.chain: collections.deque[_Job] = collections.deque()
        self.fresh: collections.deque[_Job] = collections.deque()
        # Calls from the host that start a task here: fresh jobs that wait
        # while ``parked`` frames reach MAX_PARKED.
        self.entries: collections.deque[_Job] = collections.deque()
        self.parked = 0  # frames of this thread parked in block_until/yield_park
        self.jobs: list[_Job] = []  # jobs running on this thread, innermost last
        # The fresh job picked out of turn during a synchronous call (see
        # ThreadedExecutor._grant_in_sync_call_locked).
        self.picked: _Job | None = None
        self.waits: list[_FrameWait] = []  # frames of this thread waiting, innermost last
        # What the baton was handed to this agent for: "job", "entry",
        # "resume" or "deadlock".
        self.granted: str | None = None
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.ident: int | None = None

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        """Let this agent's thread look at the baton again (``ex.lock`` held)."""
        try:
            self._wakeup.release()
        except RuntimeError:
            pass  # a wake-up is already pending

    def sleep(self) -> None:
        """Wait for :meth:`wake` with ``ex.lock`` released (held on entry and exit).

        Trio-side callbacks this thread handed on are sent first, outside the
        lock: the trio thread they wake may need the lock at once.
        """
        ex = self.ex
        lock = ex.lock
        lock.release()
        try:
            if ex.outbox:
                ex.send_outbox()
            self._wakeup.acquire()
        finally:
            lock.acquire()

    def _main(self) -> None:
        ex = self.ex
        self.ident = threading.get_ident()
        ex.by_ident[self.ident] = self
        try:
            self._loop()
        finally:
            # What this thread queued for trio before the executor stopped.
            ex.send_outbox()

    def _loop(self) -> None:
        ex = self.ex
        with ex.lock:
            while True:
                while not (ex.stopping or ex.owner is self):
                    self.sleep()
                if ex.stopping:
                    return
                kind, self.granted = self.granted, None
                if self.chain or kind == "entry" or self.picked is not None:
                    job = ex.take_job(self, kind)
                else:
                    job = self.fresh.popleft()  # (take_job's usual case, inline)
                ex.lock.release()
                try:
                    self.run_job(job)
                finally:
                    ex.lock.acquire()
                    ex.release_locked()

    def run_job(self, job: _Job) -> None:
        """Run ``job`` on this thread (the baton is held)."""
        self.jobs.append(job)
        try:
            value = job.fn()
            if job.wants_result:
                # (Only a waiter reads the outcome; posted jobs have none.)
                job.outcome = outcome.Value(value)
        except BaseException as exc:
            job.outcome = outcome.Error(exc)
            # A job whose frame parked already told its waiter PARKED; nobody
            # reads its outcome any more, so a failure after resuming (a trap
            # after a blocking host call) must be reported here too.
            if not job.wants_result or job.state == _Job.PARKED:
                self.jobs.pop()
                self.ex.on_error(exc)
                job.finish(done=True)
                return
        self.jobs.pop()
        if not job.wants_result:
            job.state = _Job.DONE  # (finish, inline: nobody waits to be told)
        else:
            job.finish(done=True)


class _Job:
    """A unit of work for an agent.

    A *chain* job is handed over by a frame that waits for it (``call_on``):
    it belongs to that frame's active call chain, so it may run while the
    agent's own frames are active. Any other job is *fresh* (a host call, a
    callback step, a result from the trio side): it runs only when no call
    chain is in flight, never inside one, which keeps the re-entrance rules
    intact.
    """

    __slots__ = ("_notify", "chain", "fn", "outcome", "seq", "state", "tag", "wants_result")

    PENDING, PARKED, DONE = range(3)

    def __init__(
        self,
        fn: Callable[[], Any],
        notify: Callable[[], None] | None,
        *,
        chain: bool = False,
        tag: Any = ANY_TIME,
    ) -> None:
        self.fn = fn
        self.chain = chain
        # Which synchronous call may run it (fresh jobs; see the tags above).
        self.tag = tag
        self.seq = next(_seq)
        self.state = _Job.PENDING
        self.outcome: outcome.Outcome[Any] | None = None
        self._notify = notify
        self.wants_result = notify is not None

    def finish(self, *, done: bool) -> None:
        previous = self.state
        self.state = _Job.DONE if done else _Job.PARKED
        if previous == _Job.PENDING and self._notify is not None:
            self._notify()


class Executor:
    """Interface shared by the inline and threaded executors."""

    threaded = False
    # Moves whenever work is queued or the baton changes hands.
    activity = 0
    # Set once the executor closes.
    stopping = False

    def new_agent(self, name: str) -> Agent | None:
        """A thread for one store (threaded mode), or None (inline)."""
        return None

    async def run(
        self,
        fn: Callable[[], T],
        agent: Agent | None = None,
        tag: Any = ANY_TIME,
        *,
        entry: bool = False,
    ) -> T:
        """Trio side: run ``fn`` on the wasm side; PARKED if its frame parked.

        ``tag``: which synchronous call may run it (``ANY_TIME``, ``NOT_IN_SYNC_CALL``
        or an instance), as for :meth:`post`.

        ``entry``: ``fn`` starts a task from the host. On a store thread that
        holds :data:`MAX_PARKED` parked frames it waits until some unwind,
        and cancelling the caller meanwhile withdraws it (nothing ran).
        """
        raise NotImplementedError

    def post(self, fn: Callable[[], None], agent: Agent | None = None, tag: Any = ANY_TIME) -> None:
        """Queue ``fn`` for the wasm side (from trio or from the wasm side).

        ``tag`` says whether it may run while a non-async-typed call is blocked:
        always (host-side work), never (it starts or resumes a thread no such
        call lets run), or only during a call of the instance it names.
        """
        raise NotImplementedError

    def call_on(self, agent: Agent | None, fn: Callable[[], T]) -> T:
        """Wasm side: run ``fn`` on ``agent``'s thread; PARKED if it parked there."""
        return fn()

    def on_agent(self, agent: Agent | None) -> bool:
        """Whether the calling thread is ``agent``'s (always, inline)."""
        return True

    def current_agent(self) -> Agent | None:
        """The agent whose thread is calling (None inline, or off the wasm side)."""
        return None

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        stalled: Callable[[], bool] = lambda: False,
        unwindable: Callable[[], bool] | None = None,
        *,
        tag: Any = ANY_TIME,
        scope: Any = None,
        on_top: Callable[[], bool] | None = None,
    ) -> None:
        """Wasm side: park the current frame until ``ready()``.

        ``tag``: which synchronous call may resume it; ``scope``: the instance
        whose non-async-typed call blocks here (None: not such a block);
        ``on_top``: whether the frame's store entry is the latest (None: always).
        """
        raise NotImplementedError

    def outside_begin(self) -> None:
        """Count trio-side work that will later ``post`` to the wasm side."""

    def outside_end(self) -> None:
        """The matching end of :meth:`outside_begin`."""

    def is_idle(self) -> bool:
        """Nothing is running or queued, and no trio-side work will post."""
        raise NotImplementedError

    def yield_park(
        self,
        describe: Callable[[], str],
        stalled: Callable[[], bool],
        ready: Callable[[], bool] | None = None,
        unwindable: Callable[[], bool] | None = None,
        *,
        tag: Any = ANY_TIME,
        scope: Any = None,
    ) -> None:
        """Wasm side: park the current frame until other ready work had a turn.

        ``tag`` and ``scope`` as for :meth:`block_until`.
        """

    def hand_off_to(self, agent: Agent) -> None:
        """Wasm side: the next time the baton is free, it goes to ``agent`` if it can run."""

    def on_error(self, exc: BaseException) -> None:
        """An exception escaped a job nobody waits for (replaced by the runtime)."""

    def on_idle(self) -> None:
        """The executor just turned idle (replaced by the runtime; may run off trio)."""

    def close(self) -> None:
        """Stop the executor (idempotent)."""


class InlineExecutor(Executor):
    """Wasm runs on the trio thread; blocking is impossible (and a trap)."""

    def __init__(self) -> None:
        self._outside = 0

    async def run(
        self,
        fn: Callable[[], T],
        agent: Agent | None = None,
        tag: Any = ANY_TIME,
        *,
        entry: bool = False,
    ) -> T:
        self.activity += 1
        return fn()

    def post(self, fn: Callable[[], None], agent: Agent | None = None, tag: Any = ANY_TIME) -> None:
        self.activity += 1
        fn()

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        fn()

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        stalled: Callable[[], bool] = lambda: False,
        unwindable: Callable[[], bool] | None = None,
        *,
        tag: Any = ANY_TIME,
        scope: Any = None,
        on_top: Callable[[], bool] | None = None,
    ) -> None:
        if not ready():
            # The linker runs a store inline only when nothing in it can
            # block, so reaching here means a wait that cannot be served.
            trap(f"cannot block on the trio thread: {describe()}")

    def outside_begin(self) -> None:
        self._outside += 1

    def outside_end(self) -> None:
        self._outside -= 1
        if self._outside == 0:
            self.on_idle()

    def is_idle(self) -> bool:
        return self._outside == 0


class ThreadedExecutor(Executor):
    """Wasm runs on agent threads, one per store, passing a single baton.

    The baton is handed over deterministically (``release_locked``): first to
    the running call chain (its chain jobs, or the frame whose hop finished),
    then to whichever is oldest among queued fresh jobs and ready parked
    frames. A run is therefore reproducible, whatever the OS does with the
    threads.
    """

    threaded = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: Agent | None = None
        self.stopping = False
        # Frames waiting for a job they handed to another agent. While any
        # does, one synchronous call chain is in flight and only its own
        # (chain) work may run anywhere: it is the one running thread.
        self.active_chains = 0
        self.agents: list[Agent] = []
        self.by_ident: dict[int, Agent] = {}
        self._outside = 0
        self._token = trio.lowlevel.current_trio_token()
        # Trio-side callbacks made by the baton holder, sent together when
        # the baton leaves it.
        self._to_trio: list[Callable[[], None]] = []
        # Batches of them waiting to be sent, oldest first (see send_outbox).
        self.outbox: collections.deque[list[Callable[[], None]]] = collections.deque()
        self._send_lock = threading.Lock()
        # Jobs the same agent ran in a row while callbacks waited in
        # ``_to_trio``: bounded, so a task that yields forever cannot keep
        # the trio side from ever hearing of a finished call.
        self._held = 0
        # Jobs that name no store (results for host stream ends, say) run
        # on a thread of their own, which owns no wasm; made on first use.
        self._home: Agent | None = None
        # Set by the baton holder: who gets the baton next (a guest thread
        # switch, see _threads), ahead of every other rule.
        self.hand_off: Agent | None = None
        # Parked frames of non-async-typed calls that blocked, innermost last:
        # while there is one, only work its call lets run is served.
        self.sync_calls: list[_FrameWait] = []

    def new_agent(self, name: str) -> Agent:
        agent = Agent(self, name)
        self.agents.append(agent)
        agent.start()
        return agent

    def _home_agent(self) -> Agent:
        if self._home is None:
            self._home = self.new_agent("trio_wasi scheduler")
        return self._home

    def current_agent(self) -> Agent | None:
        return self.by_ident.get(threading.get_ident())

    def on_agent(self, agent: Agent | None) -> bool:
        return agent is None or agent.ident == threading.get_ident()

    # -- handing the baton over ------------------------------------------------------

    def release_locked(self) -> None:
        """Give the baton up and hand it to whoever goes next (lock held)."""
        previous = self.owner
        self.owner = None
        if self.stopping:
            # Frames still parked unwind in turn (``_wait_locked``).
            for agent in self.agents:
                agent.wake()
        self._grant_locked()
        if self._to_trio:
            if self.owner is not previous:
                self._flush_trio()
            else:
                self._held += 1
                if self._held >= _MAX_HELD:
                    self._flush_trio()
                    # The baton stays with this agent, which is not about to
                    # sleep (where queued batches are sent): send them now.
                    self.send_outbox()

    def _grant_locked(self) -> None:
        if self.owner is not None or self.stopping:
            return
        target = self.hand_off
        if target is not None:
            self.hand_off = None
            # (A switch goes to a thread of the switching thread's instance,
            # which a synchronous call of that instance lets run.)
            if target.chain or target.fresh:
                self._give(target, "job")
                return
            if target.waits and target.waits[-1].ready():
                self._give(target, "resume")
                return
        agents = self.agents
        # 1. The running call chain: a chain job, or the frame whose hop ended.
        for agent in agents:
            if agent.chain:
                self._give(agent, "job")
                return
            waits = agent.waits
            if waits:
                hop = waits[-1]
                if not hop.park and hop.ready():
                    self._give(agent, "resume")
                    return
        if self.active_chains:
            return
        if self.sync_calls and self._grant_in_sync_call_locked(self.sync_calls[-1]):
            return
        # 2. The oldest fresh job or ready parked frame.
        best: _FrameWait | _Job | None = None
        best_agent: Agent | None = None
        kind = ""
        queued = False
        parked: list[tuple[Agent, _FrameWait]] = []
        # The oldest call from the host held back only by MAX_PARKED.
        held: _Job | None = None
        held_agent: Agent | None = None
        for agent in agents:
            top = agent.waits[-1] if agent.waits else None
            if top is not None and not top.park:
                continue  # inside a chain (cannot happen with no chain active)
            if agent.fresh:
                queued = True
                fresh = agent.fresh[0]
                if best is None or fresh.seq < best.seq:
                    best, best_agent, kind = fresh, agent, "job"
            if top is not None:
                if top.describe is not None:
                    parked.append((agent, top))
                if (best is None or top.seq < best.seq) and top.ready():
                    best, best_agent, kind = top, agent, "resume"
            if agent.entries:
                queued = True
                entry = self._admissible(agent, top)
                if entry is None:
                    pass
                elif agent.parked < MAX_PARKED:
                    if best is None or entry.seq < best.seq:
                        best, best_agent, kind = entry, agent, "entry"
                elif held is None or entry.seq < held.seq:
                    held, held_agent = entry, agent
        if best is None and held_agent is not None and self._outside == 0:
            # Nothing else can run, nor arrive from the trio side: going past
            # the bound is the only way on, rather than a deadlock.
            best, best_agent, kind = held, held_agent, "entry"
        if parked and self._outside == 0:
            # Only tasks that keep yielding run, and what a parked frame
            # waits for lies below them; or nothing at all can run: the
            # oldest parked frame traps (it cannot make progress).
            unwindable = [p for p in parked if p[1].unwindable is None or p[1].unwindable()]
            for agent, top in unwindable:
                if top.stalled is not None and top.stalled():
                    self._give(agent, "deadlock")
                    return
            if best is None and unwindable:
                # (A frame that may not trap now waits: a suspended guest
                # thread, which a later call may still resume.)
                agent, _ = min(unwindable, key=lambda p: p[1].seq)
                self._give(agent, "deadlock")
                return
        if best_agent is not None:
            # (_give, inline: the usual hand-over after each job)
            self.activity += 1
            self.owner = best_agent
            best_agent.granted = kind
            if best_agent.ident != threading.get_ident():
                best_agent.wake()
        elif not queued and self._outside == 0:
            self.on_idle()

    def _grant_in_sync_call_locked(self, call: _FrameWait) -> bool:
        """Step 2 while a non-async-typed call is blocked; False: serve as usual.

        CanonicalABI.md "canon lift": once the implicit thread of a call whose
        function type is not ``async`` blocks before returning, the call
        resumes, one after the other, threads of the callee's own instance
        that are ready, and traps when there is none; nothing else runs
        meanwhile. definitions.py leaves out the thread holding the
        instance's exclusive lock (the call may be using the instance's one
        shadow stack); the suite (during-sync-call-no-exclusive-resume.wast)
        leaves out, for the same reason, every thread that needs that lock:
        the implicit thread of an async-typed synchronous or callback lift.
        A tag says which work qualifies: the callee instance's tag (its guest
        threads, and implicit threads that need no lock), or host-side work
        (``ANY_TIME``), which is no thread at all.
        """
        inst = call.scope
        best: _FrameWait | _Job | None = None
        best_agent: Agent | None = None
        kind = ""
        for agent in self.agents:
            top = agent.waits[-1] if agent.waits else None
            if top is not None and not top.park:
                continue
            for job in agent.fresh:
                tag = job.tag
                if tag is ANY_TIME or tag is inst:
                    if best is None or job.seq < best.seq:
                        best, best_agent, kind = job, agent, "job"
                    break
            if (
                top is not None
                and (top.tag is ANY_TIME or top.tag is inst)
                and (best is None or top.seq < best.seq)
                and top.ready()
            ):
                best, best_agent, kind = top, agent, "resume"
        if best_agent is not None:
            if kind == "job":
                assert isinstance(best, _Job)
                best_agent.picked = best
            self._give(best_agent, kind)
            return True
        if self._outside:
            return True  # the trio side may still send what the call waits for
        # No thread the call lets run can go on: the call traps, through a
        # frame that may trap now (the latest entry of its store): the call's
        # own, else one of its instance, else the oldest.
        choice: tuple[int, int, Agent] | None = None
        for agent in self.agents:
            top = agent.waits[-1] if agent.waits else None
            if top is None or not top.park or top.describe is None:
                continue
            if top.on_top is not None and not top.on_top():
                continue
            rank = 0 if top is call else 1 if top.tag is inst else 2
            if choice is None or (rank, top.seq) < choice[:2]:
                choice = (rank, top.seq, agent)
        if choice is None:
            # Nothing may trap without breaking the LIFO order of store
            # entries: serve as usual rather than hang.
            return False
        self._give(choice[2], "deadlock")
        return True

    @staticmethod
    def _admissible(agent: Agent, top: _FrameWait | None) -> _Job | None:
        """The call from the host that could start on ``agent`` now, if any (lock held).

        It would nest on top of the agent's parked frames: not while the
        innermost could resume (it would then wait for the new call to
        finish or park; resuming first lets a stack whose frames are all
        ready unwind before it grows). The caller also holds it back while
        the agent holds MAX_PARKED parked frames, unless nothing else can
        make progress.
        """
        if top is not None and top.ready():
            return None
        return agent.entries[0]

    def _give(self, agent: Agent, kind: str) -> None:
        self.activity += 1
        self.owner = agent
        agent.granted = kind
        if agent.ident != threading.get_ident():
            # An agent handing the baton to itself goes on without sleeping:
            # a token left for it would only cost it an extra look later.
            agent.wake()

    def take_job(self, agent: Agent, kind: str | None) -> _Job:
        """The job ``agent`` was granted the baton for: chain first (lock held)."""
        if agent.chain:
            return agent.chain.popleft()
        if kind == "entry":
            return agent.entries.popleft()
        picked = agent.picked
        if picked is not None:
            agent.picked = None
            agent.fresh.remove(picked)
            return picked
        return agent.fresh.popleft()

    def _flush_trio(self) -> None:
        # Lock held: the batch is queued in baton order; the agent that gave
        # the baton up sends it just before it sleeps (Agent.sleep), without
        # the lock, so the trio thread it wakes never waits for the lock on
        # a thread that is itself waiting for the GIL.
        self.outbox.append(self._to_trio)
        self._to_trio = []
        self._held = 0

    def send_outbox(self) -> None:
        """Send the queued batches to trio, oldest first (any thread, lock not held)."""
        outbox = self.outbox
        # One sender at a time, so that batches reach trio in the order queued.
        with self._send_lock:
            while outbox:
                batch = outbox.popleft()

                def run_batch(batch: list[Callable[[], None]] = batch) -> None:
                    for fn in batch:
                        fn()

                try:
                    self._token.run_sync_soon(run_batch)
                except trio.RunFinishedError:
                    pass

    # -- trio side -----------------------------------------------------------------

    async def run(
        self,
        fn: Callable[[], T],
        agent: Agent | None = None,
        tag: Any = ANY_TIME,
        *,
        entry: bool = False,
    ) -> T:
        if self.stopping:
            raise Trap("the store is closed")
        me = trio.lowlevel.current_task()
        job = _Job(fn, lambda: self.call_soon_trio(lambda: trio.lowlevel.reschedule(me)), tag=tag)
        target = agent or self._home_agent()
        queue = target.entries if entry else target.fresh
        with self.lock:
            queue.append(job)
            self._grant_locked()

        def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
            # An entry still waiting for its turn has run nothing: it may go.
            with self.lock:
                if entry and job.state == _Job.PENDING and job in queue:
                    queue.remove(job)
                    return trio.lowlevel.Abort.SUCCEEDED
            return trio.lowlevel.Abort.FAILED

        # A job cannot be abandoned half-way (it runs wasm): once it started,
        # wait for it even when cancelled (the abort fails), then let the
        # cancellation through at the caller's next checkpoint.
        await trio.lowlevel.wait_task_rescheduled(abort)
        if job.state == _Job.PARKED:
            result: T = PARKED
            return result
        assert job.outcome is not None
        return job.outcome.unwrap()  # type: ignore[no-any-return]

    def post(self, fn: Callable[[], None], agent: Agent | None = None, tag: Any = ANY_TIME) -> None:
        job = _Job(fn, None, tag=tag)
        with self.lock:
            (agent or self._home_agent()).fresh.append(job)
            if self.owner is None:
                self._grant_locked()

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        owner = self.owner
        if owner is not None and owner.ident == threading.get_ident():
            self._to_trio.append(fn)
            return
        try:
            self._token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    def outside_begin(self) -> None:
        with self.lock:
            self._outside += 1

    def outside_end(self) -> None:
        with self.lock:
            self._outside -= 1
            if self._outside == 0:
                # What parked frames wait for may no longer be able to come.
                self._grant_locked()

    def is_idle(self) -> bool:
        with self.lock:
            return self._idle_locked()

    def _idle_locked(self) -> bool:
        return (
            self._outside == 0
            and self.owner is None
            and not any(a.fresh or a.chain or a.entries for a in self.agents)
        )

    # -- wasm side -----------------------------------------------------------------

    def call_on(self, agent: Agent | None, fn: Callable[[], T]) -> T:
        if agent is None or agent.ident == threading.get_ident():
            return fn()
        me = self.current_agent()
        assert me is not None and self.owner is me, "call_on outside the wasm side"
        job = _Job(fn, None, chain=True)
        job.wants_result = True
        with self.lock:
            agent.chain.append(job)
            self.active_chains += 1
            try:
                self._wait_locked(me, _FrameWait(lambda: job.state != _Job.PENDING, park=False))
            finally:
                self.active_chains -= 1
        if job.state == _Job.PARKED:
            result: T = PARKED
            return result
        assert job.outcome is not None
        return job.outcome.unwrap()  # type: ignore[no-any-return]

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        stalled: Callable[[], bool] = lambda: False,
        unwindable: Callable[[], bool] | None = None,
        *,
        tag: Any = ANY_TIME,
        scope: Any = None,
        on_top: Callable[[], bool] | None = None,
    ) -> None:
        me = self.current_agent()
        assert me is not None and self.owner is me, "block_until outside the wasm side"
        if ready():
            return
        # The innermost job's frame parks: whoever handed it over continues.
        if me.jobs:
            me.jobs[-1].finish(done=False)
        with self.lock:
            wait = _FrameWait(
                ready,
                True,
                describe,
                stalled=stalled,
                unwindable=unwindable,
                tag=tag,
                scope=scope,
                on_top=on_top,
            )
            self._wait_locked(me, wait)

    def _wait_locked(self, me: Agent, wait: _FrameWait) -> None:
        """Give up the baton until ``wait.ready()``; run this agent's jobs meanwhile.

        Called with ``self.lock`` held and the baton owned by ``me``; returns
        the same way.
        """
        me.waits.append(wait)
        if wait.scope is not None:
            self.sync_calls.append(wait)
        if wait.park:
            me.parked += 1
        try:
            self.release_locked()
            while True:
                while self.owner is not me and not self.stopping:
                    me.sleep()
                if self.stopping:
                    # Parked frames unwind one at a time, and a store's latest
                    # entry first (guest threads, see _threads): wasmtime
                    # allows neither two threads in a store nor other orders.
                    while (self.owner is not None and self.owner is not me) or (
                        wait.unwindable is not None and not wait.unwindable()
                    ):
                        me.sleep()
                    self.owner = me
                    trap("the store was closed while a call was blocked")
                kind, me.granted = me.granted, None
                if kind == "resume":
                    return
                if kind == "deadlock":
                    assert wait.describe is not None
                    trap(
                        "deadlock detected: event loop cannot make further progress: "
                        + wait.describe()
                    )
                job = self.take_job(me, kind)
                self.lock.release()
                try:
                    me.run_job(job)
                finally:
                    self.lock.acquire()
                    self.release_locked()
        finally:
            me.waits.pop()
            if wait.scope is not None:
                self.sync_calls.remove(wait)
            if wait.park:
                me.parked -= 1

    def yield_park(
        self,
        describe: Callable[[], str],
        stalled: Callable[[], bool],
        ready: Callable[[], bool] | None = None,
        unwindable: Callable[[], bool] | None = None,
        *,
        tag: Any = ANY_TIME,
        scope: Any = None,
    ) -> None:
        me = self.current_agent()
        assert me is not None and self.owner is me, "yield outside the wasm side"
        # A yielding frame is ready again at once, but it waits behind every
        # older fresh job and ready frame (CanonicalABI.md "thread.yield"); a
        # caller waiting for this job's eager part carries on, as with any
        # block.
        if me.jobs:
            me.jobs[-1].finish(done=False)
        with self.lock:
            wait = _FrameWait(
                ready or (lambda: True),
                True,
                describe,
                stalled=stalled,
                unwindable=unwindable,
                tag=tag,
                scope=scope,
                # (A yielding frame waits for nothing but its store-entry order.)
                on_top=ready,
            )
            self._wait_locked(me, wait)

    def hand_off_to(self, agent: Agent) -> None:
        assert self.owner is not None, "hand_off_to outside the wasm side"
        self.hand_off = agent

    def close(self) -> None:
        with self.lock:
            if not self.stopping:
                self.stopping = True
                for agent in self.agents:
                    agent.wake()
                if self._to_trio:
                    self._flush_trio()
        self.send_outbox()

    def join(self, timeout: float | None = None) -> None:
        for agent in self.agents:
            if agent.thread is not threading.current_thread():
                agent.thread.join(timeout)
