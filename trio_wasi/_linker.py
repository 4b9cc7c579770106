"""The public Linker: host definitions plus instantiation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from ._abi import _types as T
from ._component import Component
from ._engine import Engine
from ._instance import Instance, InstanceContext
from ._link import HostDefinitions, LinkedComponent
from ._names import compatibility_key

__all__ = ["Linker"]


@final
class Linker:
    """Host definitions that satisfy component imports, and instantiation.

    Functions and resources are registered by interface name (``None`` for an
    import at the root of the component's world) and item name. Versioned
    interface names match semver-compatibly: definitions registered for
    ``wasi:io/poll@0.2.0`` satisfy an import of ``wasi:io/poll@0.2.9``.
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self._host = HostDefinitions()

    @staticmethod
    def _key(interface: str | None, name: str) -> tuple[str | None, str]:
        return (None if interface is None else compatibility_key(interface), name)

    def define_function(self, interface: str | None, name: str, fn: Callable[..., Any]) -> None:
        """Offer ``fn`` as the function ``name`` of ``interface``.

        ``fn`` takes and returns Python values (see the value mapping in the
        README). Resource methods use their import names, for example
        ``"[method]thing.frob"`` or ``"[constructor]thing"``.
        """
        self._host.functions[self._key(interface, name)] = fn

    def define_resource(self, interface: str | None, name: str, cls: type) -> None:
        """Offer the Python class ``cls`` as the resource type ``name`` of ``interface``.

        Instances of ``cls`` cross into components as handles; a component
        dropping its last owning handle releases the object.
        """
        rt = T.ResourceType(name=name, instance=None, host_class=cls)
        self._host.resources[self._key(interface, name)] = rt

    def instantiate(
        self,
        component: Component | LinkedComponent,
        *,
        run_on_thread: bool | None = None,
        trap_on_deadlock: bool = False,
    ) -> InstanceContext:
        """Instantiate ``component``; use as ``async with linker.instantiate(c) as inst:``.

        Raises :class:`LinkError` when an import is missing or mismatched and
        :class:`Trap` when a start function traps.

        With ``trap_on_deadlock``, an awaited export whose task waits while
        the instance has nothing left to run raises :class:`Trap` ("deadlock
        detected") instead of waiting. It is off by default because the host
        can still end such a wait: by cancelling the call, or by calling
        another export (lowering backpressure, writing a stream). Waits inside
        wasm that can never end are always traps.

        ``run_on_thread`` chooses where the instance's wasm runs: ``None`` (the
        default) decides from the component, running it inline on the trio
        thread unless something in it may block; ``True`` always uses store
        threads (for long computations that should not stall the event loop);
        ``False`` insists on inline and fails if the component may block.
        """
        return InstanceContext(
            component,
            self._host,
            run_on_thread=run_on_thread,
            trap_on_deadlock=trap_on_deadlock,
        )

    def instantiate_sync(self, component: Component | LinkedComponent) -> Instance:
        """Instantiate without an async context (synchronous components only).

        The caller must call :meth:`Instance.close` when done.
        """
        return Instance._create(component, self._host, threaded_ok=False)
