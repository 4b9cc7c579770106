"""Component instances as seen by the embedding application."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, final

import trio

from ._binary import _model as M
from ._component import Component
from ._errors import Error, ExportError, Trap
from ._hostdefs import HostContext
from ._link import HostDefinitions, InstanceItems, LinkedComponent, prelink
from ._resolve import describe
from ._run._executor import InlineExecutor, ThreadedExecutor
from ._run._runtime import StoreRuntime
from ._run._tasks import ComponentFunc, OnCancel

__all__ = ["Instance", "Instantiation"]

# How long a cancelled host call waits for the guest to acknowledge the
# cancellation (task.cancel) or return, before it gives up on the task.
CANCEL_GRACE_SECONDS = 5.0


@final
class Instance:
    """An instantiated component: its exports, callable from trio.

    Every task the instance runs lives in the instance's nursery, so a task
    that keeps working after returning its value (streaming a body, say)
    finishes inside the ``async with`` block that opened the instance, and
    leaving that block cancels whatever is still running.

    A trap poisons the instance: later calls raise :class:`Trap` without
    entering wasm, because the guest's state may be inconsistent.
    """

    def __init__(self, exports: InstanceItems, rt: StoreRuntime) -> None:
        self.trap_on_deadlock = False
        self._exports = exports
        self._rt = rt
        self._closed = False

    @classmethod
    def _create(
        cls,
        component: Component | LinkedComponent,
        host: HostDefinitions,
        *,
        threaded_ok: bool,
        force_thread: bool = False,
        data: Any = None,
    ) -> Instance:
        # Every link error is raised here, before any store exists or wasm runs;
        # a pre-linked component carries its own (already checked) definitions.
        linked = prelink(component, host) if isinstance(component, Component) else component
        # What the dry walk already knows is refused before any store exists.
        if linked.may_block and not threaded_ok:
            raise _may_block_error(linked.may_block)
        rt = StoreRuntime(InlineExecutor())
        context = HostContext(data)
        context._drops = dict(host.drops)
        context._spawn = rt.spawn
        rt.context = context
        try:
            exports, may_block = linked._instantiate(rt)
            # The instance's own walk has the last word: host definitions bound
            # per instance are only known to be `async def` once bound.
            if may_block and not threaded_ok:
                raise _may_block_error(may_block)
        except BaseException:
            _close_stores(rt)
            raise
        for state in rt.states:
            state.host_reps.on_drop = context._drop_host_object
        if may_block or force_thread:
            executor = ThreadedExecutor()
            executor.on_error = rt.poison  # type: ignore[method-assign]
            rt.executor = executor
            for n, handle in enumerate(rt.stores):
                handle.agent = executor.new_agent(f"trio_wasi store {n}")
        return cls(exports, rt)

    # -- lookup --------------------------------------------------------------

    def _func(self, name: str) -> ComponentFunc:
        """The exported function ``name`` (``"f"`` or ``"pkg:ns/iface#f"``).

        Raises :class:`Error` (also a ``KeyError``) naming what is missing.
        """
        items = self._exports
        path = name.split("#") if "#" in name else [name]
        for i, part in enumerate(path):
            if part not in items:
                where = f"`{'#'.join(path[:i])}`" if i else "the component"
                known = ", ".join(sorted(items)) or "none"
                raise ExportError(f"{where} has no export `{part}` (exports: {known})")
            sort, item = items[part]
            if i < len(path) - 1:
                if sort is not M.Sort.INSTANCE:
                    raise ExportError(f"export `{part}` is a {sort.value}, not an instance")
                items = item
            elif sort is not M.Sort.FUNC:
                raise ExportError(f"export `{name}` is a {sort.value}, not a function")
            else:
                func: ComponentFunc = item
                return func
        raise ExportError(f"no export `{name}`")

    def _checked_func(self, name: str, args: tuple[Any, ...]) -> ComponentFunc:
        func = self._func(name)
        params = func.type.params
        if len(args) != len(params):
            wanted = ", ".join(f"{p}: {describe(t)}" for p, t in params) or "none"
            missing = [p for p, _ in params[len(args) :]]
            detail = f"; missing `{missing[0]}`" if missing else ""
            raise Error(
                f"`{name}` takes {len(params)} argument{'s' if len(params) != 1 else ''} "
                f"({wanted}), got {len(args)}{detail}"
            )
        return func

    @property
    def exports(self) -> dict[str, str]:
        """Top-level export names and their sorts (``"func"``, ``"instance"``, ...)."""
        return {name: sort.value for name, (sort, _) in self._exports.items()}

    def signature(self, name: str) -> str:
        """The WIT type of the exported function ``name``, e.g. ``func(x: u32) -> string``."""
        return describe(self._func(name).type)

    @property
    def threaded(self) -> bool:
        """Whether this instance's wasm runs on a store thread of its own."""
        return self._rt.executor.threaded

    # -- calls ---------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise Error("the instance is closed")
        if self._rt.poisoned is not None:
            raise Trap(
                "cannot enter component instance "
                f"(poisoned by an earlier trap: {self._rt.poisoned})"
            )

    async def call(self, name: str, *args: Any) -> Any:
        """Call an export and return its result (``None`` if it has none).

        The call returns when the guest's task returns its value; the task may
        keep running afterwards inside the instance. Cancelling the caller asks
        the guest to cancel the task (it sees TASK_CANCELLED); the call then
        returns the value if the task returned first, and otherwise re-raises
        the cancellation once the guest acknowledged it.
        """
        self._check_usable()
        func = self._checked_func(name, args)
        rt = self._rt
        ex = rt.executor
        done = trio.Event()
        box: dict[str, Any] = {}

        def finish() -> None:
            done.set()

        def on_start() -> list[Any]:
            return list(args)

        def on_resolve(results: list[Any] | None, encoding: object) -> None:
            box["results"] = results
            ex.call_soon_trio(finish)

        def on_trap(exc: BaseException) -> None:
            box.setdefault("error", exc)
            ex.call_soon_trio(finish)

        def start() -> OnCancel:
            rt.current.append(None)
            try:
                return func.invoke(None, on_start, on_resolve, None)
            except Trap as exc:
                rt.poison(exc)
                raise
            finally:
                rt.current.pop()

        rt.host_waiters.add(on_trap)
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            on_cancel = await ex.run(start)
            try:
                await self._wait(done)
            except trio.Cancelled:
                await self._cancel_task(on_cancel, done)
                if "results" in box and box["results"] is not None:
                    results = box["results"]
                    return results[0] if results else None
                raise
        finally:
            rt.host_waiters.discard(on_trap)
        if "error" in box:
            err = box["error"]
            raise Trap(str(err)) from err
        results = box["results"]
        if results is None:
            raise Trap("the task acknowledged a cancellation nobody requested")
        return results[0] if results else None

    async def _wait(self, done: trio.Event) -> None:
        rt = self._rt
        # Wait for the result; if the store has nothing left to do and the
        # result has not come, it never will: that is a deadlock, and a trap.
        if not self.trap_on_deadlock:
            await done.wait()
            return
        stuck_polls = 0
        while not done.is_set():
            with trio.move_on_after(0.05):
                await done.wait()
            if done.is_set():
                break
            if not self.trap_on_deadlock:
                continue
            stuck_polls = stuck_polls + 1 if self._stuck() else 0
            if stuck_polls >= 3:
                exc = Trap("deadlock detected: event loop cannot make further progress")
                rt.poison(exc)
                raise exc

    def _stuck(self) -> bool:
        rt = self._rt
        # Idle, or only spinning in yields with nothing outside to wait for.
        return rt.is_idle() or (rt.stalled() and rt.executor.is_idle())

    async def _cancel_task(self, on_cancel: OnCancel, done: trio.Event) -> None:
        rt = self._rt
        with trio.CancelScope(shield=True):

            def request() -> None:
                rt.current.append(None)
                try:
                    on_cancel(None)
                finally:
                    rt.current.pop()

            try:
                await rt.executor.run(request)
            except Trap as exc:
                rt.poison(exc)
                return
            with trio.move_on_after(CANCEL_GRACE_SECONDS):
                await done.wait()

    def call_sync(self, name: str, *args: Any) -> Any:
        """Call a synchronous export from plain Python (no trio needed).

        Only for instances whose wasm cannot block; the call must finish
        without waiting (a synchronously-lifted function).
        """
        self._check_usable()
        if self._rt.executor.threaded:
            raise Error("this instance runs on a store thread: use `await instance.call(...)`")
        func = self._checked_func(name, args)
        box: dict[str, Any] = {}

        def on_resolve(results: list[Any] | None, encoding: object) -> None:
            box["results"] = results

        rt = self._rt
        rt.current.append(None)
        try:
            func.invoke(None, lambda: list(args), on_resolve, None)
        except Trap as exc:
            rt.poison(exc)
            raise
        finally:
            rt.current.pop()
        if "results" not in box:
            raise Error(f"{name} did not return synchronously: use `await instance.call(...)`")
        results = box["results"]
        return results[0] if results else None

    def close(self) -> None:
        """Release the instance's store. Further calls raise :class:`Error`."""
        if not self._closed:
            self._closed = True
            self._rt.closing = True
            # Anything on the trio side still waiting on this instance (a
            # host call, a stream receive) is told it is gone.
            for waiter in list(self._rt.host_waiters):
                waiter(Error("the instance was closed"))
            self._rt.executor.close()
            if isinstance(self._rt.executor, ThreadedExecutor):
                self._rt.executor.join(timeout=5)
            _close_stores(self._rt)
            # Host objects the guest still owned (async ones were released
            # by the `async with` block before this).
            for obj in self._take_host_objects():
                close = getattr(obj, "close", None)
                if callable(close):
                    close()

    def _take_host_objects(self) -> list[object]:
        objects: list[object] = []
        seen: set[int] = set()
        for state in self._rt.states:
            table = state.host_reps
            if id(table) not in seen:
                seen.add(id(table))
                objects.extend(table.take_all())
        return objects

    @property
    def context(self) -> HostContext:
        """The :class:`HostContext` its host functions see."""
        context: HostContext = self._rt.context
        return context


def _may_block_error(reasons: Sequence[str]) -> Error:
    return Error(
        "this component may block ("
        + ", ".join(sorted(set(reasons)))
        + "): instantiate it with `async with linker.instantiate(...)`"
    )


def _close_stores(rt: StoreRuntime) -> None:
    for handle in rt.stores:
        handle.store.close()


@final
class Instantiation:
    """What :meth:`Linker.instantiate` returns: ``async with`` it to get the :class:`Instance`.

    Opens the instance's nursery; leaving the block waits for tasks still
    running after returning their values, unless the block is left by an
    exception, in which case they are cancelled.
    """

    def __init__(
        self,
        component: Component | LinkedComponent,
        host: HostDefinitions,
        *,
        run_on_thread: bool | None = None,
        trap_on_deadlock: bool = False,
        data: Any = None,
    ) -> None:
        self._component = component
        self._host = host
        self._data = data
        self._run_on_thread = run_on_thread
        self._trap_on_deadlock = trap_on_deadlock
        self._instance: Instance | None = None
        self._nursery_cm: Any = None
        self._service_cm: Any = None

    async def __aenter__(self) -> Instance:
        await trio.lowlevel.checkpoint()
        instance = Instance._create(
            self._component,
            self._host,
            threaded_ok=self._run_on_thread is not False,
            force_thread=bool(self._run_on_thread),
            data=self._data,
        )
        instance.trap_on_deadlock = self._trap_on_deadlock
        # Service work (host stream pumps, tasks host functions start) lives
        # in an outer nursery that is cancelled once the guest's own work is
        # over, so it can never keep the block open.
        self._service_cm = trio.open_nursery()
        service = await self._service_cm.__aenter__()
        self._nursery_cm = trio.open_nursery()
        try:
            nursery = await self._nursery_cm.__aenter__()
        except BaseException as exc:
            await self._service_cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        instance._rt.nursery = nursery
        instance._rt.service_nursery = service
        instance.context._nursery = service
        self._instance = instance
        return instance

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        instance = self._instance
        assert instance is not None and self._nursery_cm is not None
        rt = instance._rt
        nursery: trio.Nursery = rt.nursery  # type: ignore[assignment]
        service: trio.Nursery = rt.service_nursery  # type: ignore[assignment]
        if exc is not None or rt.poisoned is not None:
            nursery.cancel_scope.cancel()
        try:
            result: bool | None = await self._nursery_cm.__aexit__(exc_type, exc, tb)
            return result
        except BaseExceptionGroup as group:
            # The nursery wraps the block's own exception; hand it back as it
            # was raised when nothing else went wrong.
            if exc is not None:
                rest = group.split(lambda e: e is exc or isinstance(e, trio.Cancelled))[1]
                if rest is None:
                    raise exc from None
            raise
        finally:
            service.cancel_scope.cancel()
            try:
                await self._service_cm.__aexit__(None, None, None)
            finally:
                # Stop the wasm first, then release what the guest still owns.
                leftovers = [] if instance._closed else instance._take_host_objects()
                instance.close()
                with trio.CancelScope(shield=True):
                    await instance.context._release_all(leftovers)
