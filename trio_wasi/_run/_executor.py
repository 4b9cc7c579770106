"""Where a store's wasm runs: inline on the trio thread, or on a store thread.

ARCHITECTURE.md section 4: wasmtime allows one thread in a store at a time and
nested wasm stacks must unwind in LIFO order. Python cannot park a wasm stack
on the trio thread, so a store whose wasm may block (a synchronous lower of an
async function, ``waitable-set.wait``, a stackful lift, a blocking host
function) runs its wasm on a thread of its own. Such a thread blocks *inside*
the host function that asked to wait, and while it waits it keeps running
the other work queued for the store (new calls, callback steps, results of
host imports) on top of its stack; the wait ends when its condition holds and
everything above it has returned. A wait whose condition can no longer come
true (nothing queued, nothing outstanding on the trio side) is a trap.

A store that cannot block runs inline: every wasm call is an ordinary call
on the trio thread, with no hand-off at all.

Both executors offer the same four operations:

``run(fn)`` (trio side, async)
    run ``fn`` where the store's wasm runs and return its result.
``post(fn)`` (trio side)
    apply a state change on the wasm side (host import finished, host stream
    data arrived); never waits.
``call_soon_trio(fn)`` (wasm side)
    run ``fn`` on the trio thread (wake a trio task, start one); never waits.
``block_until(ready, describe)`` (wasm side, inside a host function)
    wait until ``ready()`` holds, running queued work meanwhile.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from .._abi._trap import trap
from .._errors import Trap

__all__ = ["Executor", "InlineExecutor", "ThreadedExecutor"]

T = TypeVar("T")


class Executor:
    """Interface shared by the inline and threaded executors."""

    threaded = False

    async def run(self, fn: Callable[[], T]) -> T:
        raise NotImplementedError

    def post(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

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

    def close(self) -> None:
        """Stop the executor (idempotent)."""

    def is_idle(self) -> bool:
        """Nothing is running or queued, and no trio-side work will post."""
        raise NotImplementedError

    def drain(self) -> None:
        """Run the work queued right now (wasm side; ``thread.yield``)."""


class InlineExecutor(Executor):
    """Wasm runs on the trio thread; blocking is impossible (and a trap)."""

    def __init__(self) -> None:
        self._outside = 0

    def outside_begin(self) -> None:
        self._outside += 1

    def outside_end(self) -> None:
        self._outside -= 1

    def is_idle(self) -> bool:
        return self._outside == 0

    async def run(self, fn: Callable[[], T]) -> T:
        return fn()

    def post(self, fn: Callable[[], None]) -> None:
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


_STOP = object()


class ThreadedExecutor(Executor):
    """Wasm runs on a dedicated store thread fed by a queue."""

    threaded = True

    def __init__(self, name: str = "trio_wasi store") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._token = trio.lowlevel.current_trio_token()
        self._outside = 0
        self._lock = threading.Lock()
        self._closed = False
        self._running = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    # -- store thread ----------------------------------------------------------

    def _main(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._running = True
            try:
                item()
            except BaseException as exc:  # keep the store thread alive
                self.on_error(exc)
            finally:
                self._running = False

    def on_error(self, exc: BaseException) -> None:
        """Called with an exception that escaped a queued item (replaced by the runtime)."""

    def is_idle(self) -> bool:
        with self._lock:
            outside = self._outside
        return outside == 0 and not self._running and self._queue.empty()

    def drain(self) -> None:
        assert self.on_store_thread()
        for _ in range(self._queue.qsize()):
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                self._queue.put(_STOP)
                return
            item()

    def on_store_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        stalled: Callable[[], bool] = lambda: False,
    ) -> None:
        assert self.on_store_thread()
        while not ready():
            if stalled():
                with self._lock:
                    idle = self._outside == 0
                if idle:
                    # Only tasks that keep yielding run above this frame, and
                    # what this frame waits for lies below it on the stack.
                    trap(
                        "deadlock detected: event loop cannot make further progress "
                        f"(in LIFO order): {describe()}"
                    )
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                with self._lock:
                    idle = self._outside == 0
                # Nothing queued and nothing on the trio side that could
                # post: the condition can never come true in LIFO order.
                if idle and self._queue.empty() and not ready():
                    trap(
                        "deadlock detected: event loop cannot make further progress: "
                        + describe()
                    )
                continue
            if item is _STOP:
                # Closing while blocked: unwind the wasm stack with a trap.
                self._queue.put(_STOP)
                trap("the store was closed while a call was blocked")
            item()

    # -- trio side -------------------------------------------------------------

    async def run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise Trap("the store is closed")
        done = trio.Event()
        result: list[outcome.Outcome[T]] = []
        token = self._token

        def job() -> None:
            result.append(outcome.capture(fn))
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                pass

        self._queue.put(job)
        # The job cannot be abandoned half-way (it runs wasm): wait for it even
        # when cancelled, then let the cancellation through.
        with trio.CancelScope(shield=True):
            await done.wait()
        return result[0].unwrap()

    def post(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        try:
            self._token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    def outside_begin(self) -> None:
        with self._lock:
            self._outside += 1

    def outside_end(self) -> None:
        with self._lock:
            self._outside -= 1
        # Wake a blocked store thread so it re-checks for deadlock promptly.
        self._queue.put(_noop)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def _noop() -> None:
    pass
