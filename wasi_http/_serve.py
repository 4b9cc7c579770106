"""Serving on hypercorn (trio worker): ``serve`` for embedding, ``run_server`` for the CLI."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.logging import AccessLogAtoms
from hypercorn.logging import Logger as HypercornLogger

from trio_wasi import Component

from ._app import WasiHttpApp
from ._config import ServeConfig

__all__ = ["AccessLog", "hypercorn_config", "serve"]

log = logging.getLogger("wasi_http")


def hypercorn_config(config: ServeConfig) -> HypercornConfig:
    """The hypercorn configuration for ``config``: its binds, logs and grace period."""
    hc = HypercornConfig()
    hc.bind = list(config.bind)
    hc.graceful_timeout = config.shutdown_timeout
    hc.accesslog = logging.getLogger("wasi_http.access")
    hc.errorlog = logging.getLogger("wasi_http.error")
    hc.access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus'
    hc.logger_class = AccessLog
    hc.workers = config.workers
    hc.worker_class = "trio"
    return hc


class AccessLog(HypercornLogger):
    """hypercorn's logger, with an access log that costs little per request.

    hypercorn computes every atom a format could name for every request (a
    copy of the whole environment among them) before the logger decides
    whether to log; this skips the work when the access logger is off, and
    otherwise computes the atoms of wasi_http's format, the rest only if a
    format asks for one.
    """

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        logger = self.access_logger
        if logger is not None and logger.isEnabledFor(logging.INFO):
            logger.info(self.access_log_format, _Atoms(request, response, request_time))


class _Atoms(dict[str, Any]):
    def __init__(self, request: Any, response: Any, request_time: float) -> None:
        client = request.get("client")
        method = request["method"] if request["type"] == "http" else "GET"
        length = "-"
        if response is not None:
            for name, value in response.get("headers", ()):
                if name.lower() == b"content-length":
                    length = value.decode("latin-1")
        super().__init__(
            h=f"{client[0]}:{client[1]}" if client and len(client) == 2 else "-",
            r=f"{method} {request['path']} {request.get('http_version', 'ws')}",
            s=str(response["status"]) if response is not None else "-",
            b=length,
            D=int(request_time * 1_000_000),
        )
        self._args = (request, response, request_time)

    def __missing__(self, key: str) -> Any:
        # Any other atom a custom format names: as hypercorn computes it.
        return AccessLogAtoms(*self._args)[key]


async def serve(
    component: Component | WasiHttpApp,
    config: ServeConfig | None = None,
    *,
    shutdown_trigger: Any = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``component`` over HTTP/1.1 and HTTP/2 until cancelled or ``shutdown_trigger``.

    Like :func:`hypercorn.trio.serve`, ``task_status.started`` reports the
    bound addresses (``http://127.0.0.1:PORT``), so binding port 0 and
    ``await nursery.start(serve, component, config)`` tells the caller where
    it listens. ``shutdown_trigger`` is an async callable whose return starts
    a graceful shutdown (in-flight requests get ``config.shutdown_timeout``).
    """
    from hypercorn.trio import serve as hypercorn_serve

    config = config or ServeConfig()
    app = component if isinstance(component, WasiHttpApp) else WasiHttpApp(component, config)
    hc = hypercorn_config(config)
    kwargs: dict[str, Any] = {}
    if shutdown_trigger is not None:
        kwargs["shutdown_trigger"] = shutdown_trigger
    await hypercorn_serve(app, hc, task_status=task_status, mode="asgi", **kwargs)  # type: ignore[arg-type]


async def _until_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            return


async def _serve_until_signal(component: Component | WasiHttpApp, config: ServeConfig) -> None:
    async def announce(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await serve(component, config, shutdown_trigger=_until_signal, task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(announce)
        for bind in binds:
            log.info("serving on %s (pid %d)", bind, os.getpid())


def run_server(component: Component, config: ServeConfig) -> None:
    """Serve in this process until SIGINT or SIGTERM (one worker)."""
    # Linking happens here, before the event loop, so that a component the
    # host cannot satisfy fails with its LinkError alone (the command line
    # prints it as one line) rather than inside the server's task group.
    app = WasiHttpApp(component, config, freeze_gc=True)
    trio.run(_serve_until_signal, app, config)
