"""wasi:http for trio_wasi: serve HTTP with WebAssembly components.

``serve(component, config)`` runs a ``wasi:http/service@0.3.0`` (or 0.2
``wasi:http/proxy``) component on hypercorn; ``WasiHttpApp`` mounts one in
any ASGI server; ``ServeConfig`` says how. This namespace only re-exports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import WasiHttpApp
    from ._config import ServeConfig
    from ._serve import serve

__all__ = ["ServeConfig", "WasiHttpApp", "serve"]

# Each name is imported on first use: `python -m trio_wasi run` builds the
# `serve` subcommand's options from wasi_http._cli, and must not pay for
# hypercorn and httpx, which only serving uses.
_HOMES = {"ServeConfig": "._config", "WasiHttpApp": "._app", "serve": "._serve"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
