"""The public Linker: host definitions plus instantiation."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, final

from ._component import Component
from ._engine import Engine, wat_to_wasm
from ._hostdefs import HostContext, define_interface, plain_definition, resource_for
from ._instance import Instance, Instantiation
from ._limits import Limits
from ._link import HostDefinitions, LinkedComponent, prelink
from ._names import compatibility_key
from .wasi._config import WasiConfig

__all__ = ["Linker"]


@final
class Linker:
    """Host definitions that satisfy component imports, and instantiation.

    Definitions are registered by interface name (``None`` for an import at
    the root of the component's world) and item name. Versioned interface
    names match semver-compatibly: definitions registered for
    ``wasi:io/poll@0.2.0`` satisfy an import of ``wasi:io/poll@0.2.9``.

    Where host code runs: a plain ``def`` host function runs on whichever
    thread runs the calling wasm (the trio thread for an instance that runs
    inline, its store thread otherwise), so it must not use trio; an
    ``async def`` host function always runs as a trio task in the instance's
    nursery.
    """

    def __init__(self, engine: Engine | None = None, *, limits: Limits | None = None) -> None:
        self.engine = engine
        #: The :class:`Limits` of instances made without their own (None:
        #: :meth:`Limits.embedding`).
        self.limits = limits
        self._host = HostDefinitions()

    @staticmethod
    def _key(interface: str | None, name: str) -> tuple[str | None, str]:
        return (None if interface is None else compatibility_key(interface), name)

    def define_interface(
        self,
        interface: str,
        impl: object | None = None,
        *,
        factory: Callable[[HostContext], Any] | None = None,
        wit: str | os.PathLike[str] | None = None,
        resources: Mapping[str, type] | None = None,
        drops: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        """Offer a whole WIT interface, implemented by a Python object or per-instance factory.

        ``impl`` is any object (a module, a class, an instance) whose
        attributes implement the interface's functions; WIT names map to
        Python names as kebab-case to snake_case (``get-random-bytes`` ->
        ``get_random_bytes``), resources to classes in PascalCase
        (``input-stream`` -> ``InputStream``; or give them in ``resources``),
        whose constructor, methods and static functions implement the
        resource's. With ``factory`` instead, ``factory(context)`` is called
        once per component instance and its result implements the
        functions; when ``factory`` is a class (or a ``functools.partial`` of one)
        its methods are checked here.

        ``wit`` is the WIT the interface is declared in: text, a ``.wit``
        file, or a package directory (default: the WIT this package ships).
        The definitions are checked against it now: a missing, misspelled or
        wrongly-sized function is a :class:`LinkError` naming it. At link time
        each function's WIT type is compared with the component's import.

        When a guest drops its last owning handle to a host object, the
        resource's callback in ``drops`` is called with it, or else its
        ``aclose()`` (in the instance's nursery) or ``close()`` is called.
        """
        define_interface(
            self._host,
            interface,
            impl,
            factory=factory,
            wit=wit,
            resources=resources,
            drops=drops,
        )

    def add_wasi(self, config: WasiConfig | None = None) -> None:
        """Define every WASI 0.3.0 and 0.2.x interface, granting what ``config`` says.

        Nothing is reachable that ``config`` does not grant (see
        :class:`trio_wasi.WasiConfig`); the default grants no files, no
        network, an empty environment and stdin, and discards output.
        """
        from .wasi import add_to_linker

        add_to_linker(self, config)

    def define_function(self, interface: str | None, name: str, fn: Callable[..., Any]) -> None:
        """Offer ``fn`` as the function ``name`` of ``interface``.

        ``fn`` takes and returns Python values (see the value mapping in the
        README); decorate it with :func:`trio_wasi.with_context` to receive the
        calling instance's :class:`HostContext` first. Resource methods use
        their import names, for example ``"[method]thing.frob"`` or
        ``"[constructor]thing"``. A later definition of the same name replaces
        an earlier one (so one WASI function can be overridden after
        :meth:`add_wasi`); ``fn`` that is not callable is a ``TypeError``.
        """
        full = name if interface is None else f"{interface}#{name}"
        if not callable(fn):
            # Caught here rather than as a trap at the guest's first call.
            raise TypeError(f"{full}: expected a callable, got {fn!r}")
        self._host.functions[self._key(interface, name)] = plain_definition(full, fn)

    def define_instance(self, interface: str, items: Mapping[str, Any]) -> None:
        """Offer plain functions and nested instances of an instance import at once.

        ``items`` maps export names to callables (functions) or to mappings of
        the same shape (nested instances, which are also reachable by
        ``define_function("outer#inner", name, fn)``).
        """
        for name, item in items.items():
            if isinstance(item, Mapping):
                self.define_instance(f"{interface}#{name}", item)
            elif callable(item):
                self.define_function(interface, name, item)
            else:
                raise TypeError(
                    f"{interface}#{name}: expected a callable or a mapping, got {item!r}"
                )

    def define_module(self, name: str, module: bytes | str) -> None:
        """Offer a core module (its binary, or its text format) for the core module import ``name``.

        It is compiled with the engine of the component that imports it, and
        its imports and exports are checked against the import's module type
        when the component is linked.
        """
        data = wat_to_wasm(module) if isinstance(module, str) else bytes(module)
        self._host.modules[compatibility_key(name)] = data

    def define_resource(
        self,
        interface: str | None,
        name: str,
        cls: type,
        *,
        drop: Callable[[Any], Any] | None = None,
    ) -> None:
        """Offer the Python class ``cls`` as the resource type ``name`` of ``interface``.

        Instances of ``cls`` cross into components as handles. When a
        component drops its last owning handle, ``drop(obj)`` is called (plain
        or ``async def``), or else the object's ``aclose()`` or ``close()``.
        """
        rt = resource_for(self._host, interface, name)
        rt.host_class = cls
        if drop is not None:
            self._host.drops[cls] = drop

    def prelink(self, component: Component) -> LinkedComponent:
        """Resolve and type-check ``component``'s imports against this linker, once.

        Raises :class:`LinkError` for a missing or mismatched import before any
        guest code runs. The result instantiates with only per-instance work
        (``linker.instantiate(linked)``), which is what a server that makes
        many instances of one component wants; it keeps the definitions it was
        checked against, so later ``define_*`` calls do not change it.
        """
        return prelink(component, self._host)

    def instantiate(
        self,
        component: Component | LinkedComponent,
        *,
        data: Any = None,
        run_on_thread: bool | None = None,
        trap_on_deadlock: bool = False,
        limits: Limits | None = None,
    ) -> Instantiation:
        """Instantiate ``component``; use as ``async with linker.instantiate(c) as inst:``.

        Raises :class:`LinkError` when an import is missing or mismatched and
        :class:`Trap` when a start function traps. ``data`` is attached to the
        instance's :class:`HostContext` for its host functions.

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

        ``limits`` bounds what the instance may use (time per call, memory,
        tables, handles, host-call copies, stream buffers); the default is
        the linker's ``limits``, else :meth:`Limits.embedding`. See the
        README section "Limits".
        """
        return Instantiation(
            component,
            self._host,
            run_on_thread=run_on_thread,
            trap_on_deadlock=trap_on_deadlock,
            data=data,
            limits=limits if limits is not None else self.limits,
        )

    def instantiate_sync(
        self,
        component: Component | LinkedComponent,
        *,
        data: Any = None,
        limits: Limits | None = None,
    ) -> Instance:
        """Instantiate without an async context (synchronous components only).

        The caller must call :meth:`Instance.close` when done. ``limits`` is
        as for :meth:`instantiate` (a timeout applies to async calls only).
        """
        if limits is None:
            limits = self.limits
        return Instance._create(component, self._host, threaded_ok=False, data=data, limits=limits)
