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

The inline executor runs everything on the trio thread with no hand-off; a
store runs inline only when nothing in it can block.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from .._abi._trap import trap
from .._errors import Trap

__all__ = ["PARKED", "Agent", "Executor", "InlineExecutor", "ThreadedExecutor"]

T = TypeVar("T")


class _Parked:
    def __repr__(self) -> str:
        return "PARKED"


PARKED: Any = _Parked()
"""What ``call_on``/``run`` return when the job's frame parked instead of finishing."""


class Agent:
    """The thread that runs one store's wasm (threaded mode)."""

    def __init__(self, ex: ThreadedExecutor, name: str) -> None:
        self.ex = ex
        self.name = name
        self.queue: collections.deque[_Job] = collections.deque()
        self.jobs: list[_Job] = []  # jobs running on this thread, innermost last
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.ident: int | None = None

    def start(self) -> None:
        self.thread.start()

    def _main(self) -> None:
        ex = self.ex
        self.ident = threading.get_ident()
        with ex.cond:
            while True:
                ex.cond.wait_for(lambda: ex.stopping or (ex.owner is None and ex.has_job(self)))
                if ex.stopping:
                    return
                job = ex.next_job(self)
                assert job is not None
                ex.owner = self
                ex.generation += 1
                ex.cond.release()
                try:
                    self.run_job(job)
                finally:
                    ex.cond.acquire()
                    ex.owner = None
                    ex.cond.notify_all()

    def run_job(self, job: _Job) -> None:
        """Run ``job`` on this thread (the baton is held)."""
        self.jobs.append(job)
        try:
            job.outcome = outcome.capture(job.fn)
        finally:
            self.jobs.pop()
        if job.outcome is not None and isinstance(job.outcome, outcome.Error):
            if not job.wants_result:
                self.ex.on_error(job.outcome.error)
        job.finish(done=True)


class _Job:
    """A unit of work for an agent.

    A *chain* job is handed over by a frame that waits for it (``call_on``):
    it belongs to that frame's active call chain, so it may run while the
    agent's own frames are active. Any other job is *fresh* (a host call, a
    callback step, a result from the trio side): it runs only when the agent
    is idle or its frames are parked, never inside an active chain, which
    keeps the re-entrance rules intact.
    """

    __slots__ = ("_notify", "chain", "fn", "outcome", "seq", "state", "wants_result")

    PENDING, PARKED, DONE = range(3)
    _counter = itertools.count()

    def __init__(
        self, fn: Callable[[], Any], notify: Callable[[], None] | None, *, chain: bool = False
    ) -> None:
        self.fn = fn
        self.chain = chain
        # Fresh jobs start in the order they were queued, across all agents,
        # so that scheduling is deterministic.
        self.seq = next(_Job._counter)
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

    def new_agent(self, name: str) -> Agent | None:
        """A thread for one store (threaded mode), or None (inline)."""
        return None

    async def run(self, fn: Callable[[], T], agent: Agent | None = None) -> T:
        """Trio side: run ``fn`` on the wasm side; PARKED if its frame parked."""
        raise NotImplementedError

    def post(self, fn: Callable[[], None], agent: Agent | None = None) -> None:
        """Queue ``fn`` for the wasm side (from trio or from the wasm side)."""
        raise NotImplementedError

    def call_on(self, agent: Agent | None, fn: Callable[[], T]) -> T:
        """Wasm side: run ``fn`` on ``agent``'s thread; PARKED if it parked there."""
        return fn()

    def on_agent(self, agent: Agent | None) -> bool:
        """Whether the calling thread is ``agent``'s (always, inline)."""
        return True

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        stalled: Callable[[], bool] = lambda: False,
    ) -> None:
        raise NotImplementedError

    def outside_begin(self) -> None:
        """Count trio-side work that will later ``post`` to the wasm side."""

    def outside_end(self) -> None:
        """The matching end of :meth:`outside_begin`."""

    def is_idle(self) -> bool:
        """Nothing is running or queued, and no trio-side work will post."""
        raise NotImplementedError

    def _first_fresh(self, agent: Agent) -> _Job | None:
        for job in agent.queue:
            if not job.chain:
                return job
        return None

    def _fresh_turn(self, agent: Agent) -> _Job | None:
        """``agent``'s oldest fresh job, if it is the oldest of all agents' (lock held)."""
        if self.active_chains:
            return None
        mine = self._first_fresh(agent)
        if mine is None:
            return None
        for other in self.agents:
            if other is not agent:
                theirs = self._first_fresh(other)
                if theirs is not None and theirs.seq < mine.seq:
                    return None
        return mine

    def has_job(self, agent: Agent) -> bool:
        """Whether ``agent`` has a job it may start now (lock held)."""
        if any(job.chain for job in agent.queue):
            return True
        return self._fresh_turn(agent) is not None

    def next_job(self, agent: Agent) -> _Job | None:
        """Take the job ``agent`` should start now: chain jobs first (lock held)."""
        queue = agent.queue
        for job in queue:
            if job.chain:
                queue.remove(job)
                return job
        job = self._fresh_turn(agent)
        if job is not None:
            queue.remove(job)
        return job

    def drain(self) -> None:
        """Run the work queued for the calling agent right now (``thread.yield``)."""

    def yield_park(self, describe: Callable[[], str], stalled: Callable[[], bool]) -> None:
        """Wasm side: park the current frame until other ready work had a turn."""

    def on_error(self, exc: BaseException) -> None:
        """An exception escaped a job nobody waits for (replaced by the runtime)."""

    def close(self) -> None:
        """Stop the executor (idempotent)."""


class InlineExecutor(Executor):
    """Wasm runs on the trio thread; blocking is impossible (and a trap)."""

    def __init__(self) -> None:
        self._outside = 0

    async def run(self, fn: Callable[[], T], agent: Agent | None = None) -> T:
        return fn()

    def post(self, fn: Callable[[], None], agent: Agent | None = None) -> None:
        fn()

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        fn()

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        stalled: Callable[[], bool] = lambda: False,
    ) -> None:
        if not ready():
            # The linker runs a store inline only when nothing in it can
            # block, so reaching here means a wait that cannot be served.
            trap(f"cannot block on the trio thread: {describe()}")

    def outside_begin(self) -> None:
        self._outside += 1

    def outside_end(self) -> None:
        self._outside -= 1

    def is_idle(self) -> bool:
        return self._outside == 0


# How long a yielding frame waits for someone else to take the baton.
_YIELD_SECONDS = 0.002


class ThreadedExecutor(Executor):
    """Wasm runs on agent threads, one per store, passing a single baton."""

    threaded = True

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.owner: Agent | None = None
        self.generation = 0
        self.stopping = False
        # Frames waiting for a job they handed to another agent. While any
        # does, one synchronous call chain is in flight and only its own
        # (chain) jobs may run anywhere: it is the one running thread.
        self.active_chains = 0
        self.agents: list[Agent] = []
        self._outside = 0
        self._token = trio.lowlevel.current_trio_token()
        # Jobs that touch no store (host calls, results of host imports) run
        # on a thread of their own, which owns no wasm.
        self.home = self.new_agent("trio_wasi scheduler")

    def new_agent(self, name: str) -> Agent:
        agent = Agent(self, name)
        self.agents.append(agent)
        agent.start()
        return agent

    def _current_agent(self) -> Agent | None:
        ident = threading.get_ident()
        for agent in self.agents:
            if agent.ident == ident:
                return agent
        return None

    def on_agent(self, agent: Agent | None) -> bool:
        return agent is None or agent.ident == threading.get_ident()

    # -- trio side -----------------------------------------------------------------

    async def run(self, fn: Callable[[], T], agent: Agent | None = None) -> T:
        if self.stopping:
            raise Trap("the store is closed")
        done = trio.Event()
        token = self._token

        def notify() -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        job = _Job(fn, notify)
        with self.cond:
            (agent or self.home).queue.append(job)
            self.cond.notify_all()
        # A job cannot be abandoned half-way (it runs wasm): wait for it even
        # when cancelled, then let the cancellation through.
        with trio.CancelScope(shield=True):
            await done.wait()
        if job.state == _Job.PARKED:
            result: T = PARKED
            return result
        assert job.outcome is not None
        return job.outcome.unwrap()  # type: ignore[no-any-return]

    def post(self, fn: Callable[[], None], agent: Agent | None = None) -> None:
        with self.cond:
            (agent or self.home).queue.append(_Job(fn, None))
            self.cond.notify_all()

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        try:
            self._token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    def outside_begin(self) -> None:
        with self.cond:
            self._outside += 1

    def outside_end(self) -> None:
        with self.cond:
            self._outside -= 1
            self.cond.notify_all()

    def is_idle(self) -> bool:
        with self.cond:
            return self._idle_locked()

    def _idle_locked(self) -> bool:
        return self._outside == 0 and self.owner is None and not any(a.queue for a in self.agents)

    # -- wasm side -----------------------------------------------------------------

    def call_on(self, agent: Agent | None, fn: Callable[[], T]) -> T:
        if agent is None or agent.ident == threading.get_ident():
            return fn()
        me = self._current_agent()
        assert me is not None and self.owner is me, "call_on outside the wasm side"
        job = _Job(fn, lambda: None, chain=True)
        with self.cond:
            agent.queue.append(job)
            self.active_chains += 1
            try:
                self._wait_locked(me, lambda: job.state != _Job.PENDING, park=False, describe=None)
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
    ) -> None:
        me = self._current_agent()
        assert me is not None and self.owner is me, "block_until outside the wasm side"
        if ready():
            return
        # The innermost job's frame parks: whoever handed it over continues.
        if me.jobs:
            me.jobs[-1].finish(done=False)
        with self.cond:
            self._wait_locked(me, ready, park=True, describe=describe, stalled=stalled)

    def _wait_locked(
        self,
        me: Agent,
        ready: Callable[[], bool],
        *,
        park: bool,
        describe: Callable[[], str] | None,
        stalled: Callable[[], bool] = lambda: False,
        poll: float = 0.05,
    ) -> None:
        """Give up the baton until ``ready()``; run this agent's queued jobs meanwhile.

        Called with ``self.cond`` held and the baton owned by ``me``; returns
        the same way.
        """
        self.owner = None
        self.cond.notify_all()
        idle_generation = -1
        idle_polls = 0
        while True:
            if self.stopping:
                self.owner = me
                trap("the store was closed while a call was blocked")
            if self.owner is None:
                job = self.next_job(me)
                if job is not None:
                    self.owner = me
                    self.generation += 1
                    self.cond.release()
                    try:
                        me.run_job(job)
                    finally:
                        self.cond.acquire()
                        self.owner = None
                        self.cond.notify_all()
                    continue
                # A parked frame resumes only between call chains: a chain in
                # flight (say, lowering the result this frame waits for) must
                # finish first.
                if (not park or self.active_chains == 0) and ready():
                    self.owner = me
                    self.generation += 1
                    return
                if park and describe is not None:
                    if stalled() and self._outside == 0:
                        self.owner = me
                        # Only tasks that keep yielding run, and what this
                        # frame waits for lies below them.
                        trap(
                            "deadlock detected: event loop cannot make further progress: "
                            + describe()
                        )
                    if self._idle_locked() and idle_generation == self.generation:
                        # Idle for several polls in a row with no baton
                        # hand-over: no parked frame anywhere is ready.
                        idle_polls += 1
                        if idle_polls >= 3:
                            self.owner = me
                            trap(
                                "deadlock detected: event loop cannot make further progress: "
                                + describe()
                            )
                    else:
                        idle_polls = 0
                    idle_generation = self.generation
            self.cond.wait(timeout=poll)

    def _first_fresh(self, agent: Agent) -> _Job | None:
        for job in agent.queue:
            if not job.chain:
                return job
        return None

    def _fresh_turn(self, agent: Agent) -> _Job | None:
        """``agent``'s oldest fresh job, if it is the oldest of all agents' (lock held)."""
        if self.active_chains:
            return None
        mine = self._first_fresh(agent)
        if mine is None:
            return None
        for other in self.agents:
            if other is not agent:
                theirs = self._first_fresh(other)
                if theirs is not None and theirs.seq < mine.seq:
                    return None
        return mine

    def has_job(self, agent: Agent) -> bool:
        """Whether ``agent`` has a job it may start now (lock held)."""
        if any(job.chain for job in agent.queue):
            return True
        return self._fresh_turn(agent) is not None

    def next_job(self, agent: Agent) -> _Job | None:
        """Take the job ``agent`` should start now: chain jobs first (lock held)."""
        queue = agent.queue
        for job in queue:
            if job.chain:
                queue.remove(job)
                return job
        job = self._fresh_turn(agent)
        if job is not None:
            queue.remove(job)
        return job

    def yield_park(self, describe: Callable[[], str], stalled: Callable[[], bool]) -> None:
        me = self._current_agent()
        assert me is not None and self.owner is me, "yield outside the wasm side"
        # A yielding frame is ready again at once, but only after others had
        # the chance to run (CanonicalABI.md "thread.yield"); a caller waiting
        # for this job's eager part carries on, as with any block.
        if me.jobs:
            me.jobs[-1].finish(done=False)
        generation = self.generation
        deadline = time.monotonic() + _YIELD_SECONDS

        def ready() -> bool:
            if self.generation != generation:
                return True
            # Nobody took the baton: nothing else could run.
            return time.monotonic() >= deadline and not any(a.queue for a in self.agents)

        with self.cond:
            self._wait_locked(
                me, ready, park=True, describe=describe, stalled=stalled, poll=_YIELD_SECONDS
            )

    def drain(self) -> None:
        me = self._current_agent()
        if me is None:
            return
        with self.cond:
            pending = len(me.queue)
        for _ in range(pending):
            with self.cond:
                if not me.queue:
                    return
                job = me.queue.popleft()
            me.run_job(job)

    def close(self) -> None:
        with self.cond:
            if not self.stopping:
                self.stopping = True
                self.cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        for agent in self.agents:
            if agent.thread is not threading.current_thread():
                agent.thread.join(timeout)
