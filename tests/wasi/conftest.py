"""Fixtures for driving WASI host classes directly, without a component."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from trio_wasi import HostContext


@pytest.fixture
async def context() -> AsyncIterator[HostContext]:
    """A HostContext whose background work runs in a nursery of the test.

    Host classes receive it where the runtime would pass an instance's
    context; ``start_soon`` behaves as an instance's service tasks do.
    """
    ctx = HostContext()
    async with trio.open_nursery() as nursery:

        def spawn(fn: Any, *args: Any, **how: Any) -> None:
            nursery.start_soon(fn, *args)

        ctx._spawn = spawn
        ctx._nursery = nursery
        yield ctx
        nursery.cancel_scope.cancel()
