"""The application a ``serve --workers N`` worker process loads (``wasi_http._worker:app``).

hypercorn starts workers with ``spawn``: each imports this module, which
rebuilds the component and configuration from the options the parent put in
the environment, so every worker has its own pool and outgoing client.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ._cli import ARGV_ENV, FAILURE_ENV, _logging, build

__all__ = ["app"]


def _failed(reason: str) -> None:
    """Start-up failed: tell the parent why, and end this worker without a traceback.

    hypercorn's supervisor would otherwise print the worker's exception
    group, and (once the other workers are stopped) can end with status 0.
    """
    path = os.environ.get(FAILURE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(" ".join(reason.split()) + "\n")
    logging.shutdown()
    sys.stderr.flush()
    os._exit(1)


def _app() -> object:
    from trio_wasi import _cli

    from ._app import WasiHttpApp

    ns = argparse.Namespace(**json.loads(os.environ[ARGV_ENV]))
    _logging(ns.verbose, getattr(ns, "access_log", True))
    component, config = build(ns, _cli._load, _cli._wasi_config)
    return WasiHttpApp(component, config, freeze_gc=True, on_startup_failure=_failed)


app = _app() if ARGV_ENV in os.environ else None
