"""Running a WASI command component: its ``wasi:cli/run`` export, to an exit status."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._abi._values import Ok
from .._errors import Error, Trap
from .._names import compatibility_key
from ._config import WasiConfig
from ._state import WasiExit, WasiState

if TYPE_CHECKING:
    from .._component import Component
    from .._instance import Instance
    from .._linker import Linker

__all__ = ["component_imports", "exit_status", "run_command", "run_export"]

RUN_KEYS = (compatibility_key("wasi:cli/run@0.3.0"), compatibility_key("wasi:cli/run@0.2.0"))


_NOT_A_COMMAND = "the component is not a WASI command: it exports no wasi:cli/run@0.3.x or @0.2.x"


def run_export(instance: Instance) -> str:
    """The name of the ``run`` function of the instance's ``wasi:cli/run`` export."""
    for name in instance.exports:
        if compatibility_key(name) in RUN_KEYS:
            return f"{name}#run"
    raise Error(_NOT_A_COMMAND)


def _check_command(component: Component) -> None:
    """Raise :class:`Error` unless ``component`` exports ``wasi:cli/run``.

    Checked before linking, so an HTTP service or a library given to ``run``
    is named for what it is rather than by the first import the WASI host
    lacks (``wasi:http/types``, say).
    """
    from .._binary import _model as M

    for d in component.model.definitions:
        if isinstance(d, M.Export) and compatibility_key(d.name.name) in RUN_KEYS:
            return
    raise Error(_NOT_A_COMMAND)


def component_imports(component: Component) -> list[str]:
    """The names of the component's top-level imports."""
    from .._binary import _model as M

    return [d.name.name for d in component.model.definitions if isinstance(d, M.Import)]


def exit_status(exc: BaseException) -> int | None:
    """The status of a ``wasi:cli/exit`` call that ended the guest with ``exc``, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, WasiExit):
            return seen.code
        seen = seen.__cause__ or seen.__context__
    return None


async def run_command(
    component: Component,
    config: WasiConfig | None = None,
    *,
    linker: Linker | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Run a command component's ``wasi:cli/run`` and return its exit status.

    ``0`` when ``run`` returns ``ok``, ``1`` for ``err``; a ``wasi:cli/exit``
    call gives its own status. A trap raises :class:`Trap`. ``ready`` is
    called once the instance exists, before ``run`` starts.
    """
    from .._linker import Linker
    from . import add_to_linker

    _check_command(component)
    config = config or WasiConfig()
    if linker is None:
        linker = Linker(component.engine)
        add_to_linker(linker, config, only=component_imports(component))
    state: WasiState | None = None
    try:
        async with linker.instantiate(component) as instance:
            state = WasiState.of(instance.context, config)
            if ready is not None:
                ready()
            result = await instance.call(run_export(instance))
            return 0 if isinstance(result, Ok) else 1
    except Trap as exc:
        # wasi:cli/exit stops the guest by trapping it; the state knows why.
        code = exit_status(exc)
        if code is None and state is not None:
            code = state.exit_code
        if code is None:
            raise
        return code
