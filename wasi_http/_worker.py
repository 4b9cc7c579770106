"""The application a ``serve --workers N`` worker process loads (``wasi_http._worker:app``).

hypercorn starts workers with ``spawn``: each imports this module, which
rebuilds the component and configuration from the options the parent put in
the environment, so every worker has its own pool and outgoing client.
"""

from __future__ import annotations

import argparse
import json
import os

from ._cli import ARGV_ENV, _logging, build

__all__ = ["app"]


def _app() -> object:
    from trio_wasi import _cli

    from ._app import WasiHttpApp

    ns = argparse.Namespace(**json.loads(os.environ[ARGV_ENV]))
    _logging(ns.verbose, getattr(ns, "access_log", True))
    component, config = build(ns, _cli._load, _cli._wasi_config)
    return WasiHttpApp(component, config, freeze_gc=True)


app = _app() if ARGV_ENV in os.environ else None
