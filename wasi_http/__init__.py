"""wasi:http for trio_wasi: serve HTTP with WebAssembly components.

``serve(component, config)`` runs a ``wasi:http/service@0.3.0`` (or 0.2
``wasi:http/proxy``) component on hypercorn; ``WasiHttpApp`` mounts one in
any ASGI server; ``ServeConfig`` says how. This namespace only re-exports.
"""

from ._app import WasiHttpApp
from ._config import ServeConfig
from ._serve import serve

__all__ = ["ServeConfig", "WasiHttpApp", "serve"]
