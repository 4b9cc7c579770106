"""Component instances as seen by the embedding application."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, final

import trio

from ._abi._handles import InstanceState
from ._binary import _model as M
from ._call import ComponentFunc
from ._component import Component
from ._engine import Store
from ._errors import Error, Trap
from ._link import HostDefinitions, InstanceItems, instantiate_component

__all__ = ["Instance", "InstanceContext"]


@final
class Instance:
    """An instantiated component: its exports, callable from Python.

    A trap inside any call poisons the instance: later calls raise
    :class:`Trap` without entering wasm, because the guest's state may be
    inconsistent (CanonicalABI.md: a trap aborts the component instance).
    """

    def __init__(
        self, store: Store, exports: InstanceItems, states: Sequence[InstanceState]
    ) -> None:
        self._store = store
        self._exports = exports
        self._states = list(states)
        self._poisoned: str | None = None
        self._closed = False

    @classmethod
    def _create(cls, component: Component, host: HostDefinitions) -> Instance:
        store = Store(component.engine)
        try:
            exports, states = instantiate_component(
                store, component.model, component._modules, host
            )
        except BaseException:
            store.close()
            raise
        return cls(store, exports, states)

    # -- lookup --------------------------------------------------------------

    def func(self, name: str) -> ComponentFunc:
        """The exported function ``name`` (``"f"`` or ``"pkg:ns/iface#f"``)."""
        items = self._exports
        path = name.split("#") if "#" in name else [name]
        for i, part in enumerate(path):
            if part not in items:
                where = "#".join(path[:i]) or "the component"
                raise KeyError(f"{where} has no export {part!r}")
            sort, item = items[part]
            if i < len(path) - 1:
                if sort is not M.Sort.INSTANCE:
                    raise KeyError(f"export {part!r} is a {sort.value}, not an instance")
                items = item
            elif sort is not M.Sort.FUNC:
                raise KeyError(f"export {name!r} is a {sort.value}, not a function")
            else:
                func: ComponentFunc = item
                return func
        raise KeyError(name)

    @property
    def exports(self) -> dict[str, M.Sort]:
        """Top-level export names and their sorts."""
        return {name: sort for name, (sort, _) in self._exports.items()}

    # -- calls ---------------------------------------------------------------

    def call_sync(self, name: str, *args: Any) -> Any:
        """Call an export synchronously; returns its result (``None`` if it has none)."""
        if self._closed:
            raise Error("the instance is closed")
        if self._poisoned is not None:
            raise Trap(f"the instance is poisoned by an earlier trap: {self._poisoned}")
        func = self.func(name)
        try:
            results = func.call(None, args, None)
        except Trap as exc:
            self._poisoned = str(exc)
            raise
        return results[0] if results else None

    async def call(self, name: str, *args: Any) -> Any:
        """Call an export and return its result (``None`` if it has none)."""
        await trio.lowlevel.checkpoint()
        return self.call_sync(name, *args)

    def close(self) -> None:
        """Release the instance's store. Further calls raise :class:`Error`."""
        if not self._closed:
            self._closed = True
            self._store.close()


@final
class InstanceContext:
    """``async with linker.instantiate(component) as instance`` support."""

    def __init__(self, component: Component, host: HostDefinitions) -> None:
        self._component = component
        self._host = host
        self._instance: Instance | None = None

    async def __aenter__(self) -> Instance:
        await trio.lowlevel.checkpoint()
        self._instance = Instance._create(self._component, self._host)
        return self._instance

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._instance is not None:
            self._instance.close()
