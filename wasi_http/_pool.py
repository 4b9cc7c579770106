"""A pool of component instances that serve requests.

Each pooled instance lives in a trio task of the pool's nursery (its ``async
with`` block), so the work a guest does after returning a response (writing
the body) runs until the instance retires. A request *leases* an instance for
its whole exchange, body included. An instance takes up to
``max_concurrency`` leases at once (one for 0.2 components, see
:func:`wasi_http._app.max_concurrency`), retires after
``max_requests`` leases, and is discarded at its first trap: requests already
on it fail, later ones go to other instances. New instances come from the
pre-linked component, so filling the pool costs only per-instance work.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from trio_wasi import Instance, LinkedComponent, Linker

__all__ = ["InstancePool", "Slot"]

log = logging.getLogger("wasi_http")


class Slot:
    """One pooled instance and its bookkeeping."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.instance: Instance | None = None
        self.inflight = 0
        self.leases = 0
        self.broken: str | None = None
        self.retiring = False
        self.done = trio.Event()

    def mark_broken(self, reason: str) -> None:
        """Stop giving this instance out (it trapped)."""
        if self.broken is None:
            self.broken = reason
            log.error("instance %d discarded: %s", self.number, reason)


class InstancePool:
    """Instances of one component, made on demand up to ``max_instances``."""

    def __init__(
        self,
        linker: Linker,
        linked: LinkedComponent,
        *,
        max_concurrency: int,
        max_requests: int,
        max_instances: int,
        run_on_thread: bool | None = None,
    ) -> None:
        self.linker = linker
        self.linked = linked
        self.max_concurrency = max(1, max_concurrency)
        self.max_requests = max_requests
        self.max_instances = max(1, max_instances)
        self.run_on_thread = run_on_thread
        self.slots: list[Slot] = []
        self._starting = 0
        # Requests waiting for room on the instances being started.
        self._promised = 0
        # Requests waiting for an instance to have room.
        self._changed = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._counter = 0
        # Figures for logs and tests.
        self.created = 0
        self.discarded = 0
        self.cancelled = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[InstancePool]:
        """Open the pool; leaving the block retires every instance."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield self
            finally:
                self._nursery = None
                # Whatever is still running had its grace period (close()).
                nursery.cancel_scope.cancel()

    async def prestart(self) -> None:
        """Make the first instance now (if there is none), before any request needs it."""
        if self._nursery is None:
            raise RuntimeError("the instance pool is not running")
        if not self.slots and not self._starting:
            await self._start_instance()

    async def _start_instance(self) -> None:
        """Start one more instance, counted in ``_starting`` until it runs (or fails)."""
        assert self._nursery is not None
        self._starting += 1
        try:
            await self._nursery.start(self._run_instance)
        finally:
            self._starting -= 1
            # Requests that waited while it started may share it (or, if it
            # failed, start another).
            self._wake()

    async def close(self, grace: float) -> None:
        """Let leases end within ``grace`` seconds, then cancel the instances."""
        for slot in self.slots:
            slot.retiring = True
            if slot.inflight == 0:
                slot.done.set()
        with trio.move_on_after(grace):
            for slot in list(self.slots):
                await slot.done.wait()

    def _usable(self, slot: Slot) -> bool:
        reason = _poisoned(slot.instance)
        if reason is not None:
            slot.mark_broken(reason)
        if slot.instance is None or slot.broken is not None or slot.retiring:
            return False
        return slot.inflight < self.max_concurrency

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Slot]:
        """An instance to serve one request with, held until the block ends."""
        slot = await self.acquire()
        try:
            yield slot
        finally:
            self.release(slot)

    def _best(self) -> Slot | None:
        best: Slot | None = None
        for slot in self.slots:
            if self._usable(slot) and (best is None or slot.inflight < best.inflight):
                best = slot
        return best

    async def acquire(self) -> Slot:
        """Lease an instance (pair with :meth:`release`); waits while all are busy.

        Trio runs one task at a time, so the pool's state needs no lock: the
        usual case (an instance has room) takes it without waiting.
        """
        while True:
            if self._nursery is None:
                raise RuntimeError("the instance pool is not running")
            best = self._best()
            # An instance takes requests up to its concurrency limit before
            # another is made: one instance of a 0.3 component serves many
            # requests, and making one costs more than sharing.
            if best is not None:
                break
            if self._promised < self._starting * (self.max_concurrency - 1):
                # An instance on its way has room for this request besides
                # the one starting it: wait for it rather than start another
                # (a burst at startup would otherwise make one per request).
                self._promised += 1
                try:
                    await self._changed.park()
                finally:
                    self._promised -= 1
                continue
            if len(self.slots) + self._starting < self.max_instances:
                await self._start_instance()
                # Others may have taken it meanwhile: look again.
                continue
            # Woken by any change (a release, a new or retired instance); look again.
            await self._changed.park()
        best.inflight += 1
        best.leases += 1
        if self.max_requests and best.leases >= self.max_requests:
            best.retiring = True
        return best

    def release(self, slot: Slot) -> None:
        """End a lease :meth:`acquire` gave."""
        slot.inflight -= 1
        reason = _poisoned(slot.instance)
        if reason is not None:
            # A trap the request did not see itself (say, the guest trapped
            # while being cancelled) still ends the instance.
            slot.mark_broken(reason)
        if slot.inflight == 0 and (slot.retiring or slot.broken is not None):
            slot.done.set()
        self._wake()

    def _wake(self) -> None:
        # Waiters re-check on their own; waking never blocks. (Most releases
        # find nobody parked: asking first is cheaper than unparking none.)
        if self._changed:
            self._changed.unpark_all()

    async def _run_instance(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._counter += 1
        slot = Slot(self._counter)
        started = False
        try:
            async with self.linker.instantiate(
                self.linked, run_on_thread=self.run_on_thread
            ) as instance:
                slot.instance = instance
                self.slots.append(slot)
                self.created += 1
                task_status.started(slot)
                started = True
                await slot.done.wait()
                if slot.broken is not None:
                    # Work the trapped instance still has in flight is void.
                    raise _Discard
        except _Discard:
            pass
        except Exception as exc:
            if not started:
                raise
            if slot.broken is None:
                log.exception("instance %d failed", slot.number)
            else:
                log.debug("instance %d closed after its trap: %r", slot.number, exc)
        finally:
            if slot in self.slots:
                self.slots.remove(slot)
            if slot.broken is not None:
                self.discarded += 1
            self._wake()


def _poisoned(instance: Instance | None) -> str | None:
    """The trap that poisoned ``instance``, if any."""
    return None if instance is None else instance.poisoned


class _Discard(Exception):
    """Leave a trapped instance's block by an exception, cancelling its leftover work."""
