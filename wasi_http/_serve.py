"""Serving on hypercorn (trio worker): ``serve`` for embedding, ``run_server`` for the CLI."""

from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.logging import AccessLogAtoms
from hypercorn.logging import Logger as HypercornLogger

from trio_wasi import Component

from ._app import ANSWERED, WasiHttpApp
from ._config import ServeConfig

__all__ = ["AccessLog", "hypercorn_config", "listen", "serve"]

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
            if response is None and request.get(ANSWERED):
                # The connection closed while the response's end was being
                # written: hypercorn logs the response itself right after.
                return
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


def listen(config: ServeConfig) -> Sockets:
    """Listening sockets for ``config.bind``; an address that cannot be had is an ``OSError``.

    The error names the address (``cannot listen on 127.0.0.1:8080: Address
    already in use``) and is raised before anything else starts: left to
    hypercorn, the same failure surfaces after the application's start-up,
    nested in its task groups, without the address, and leaves the socket
    that failed to bind open.
    """
    if not config.bind:
        # hypercorn would serve on nothing, silently, until cancelled.
        raise ValueError("ServeConfig.bind is empty: no address to listen on")
    hc = hypercorn_config(config)
    made: list[socket.socket] = []
    try:
        for address in config.bind:
            if address.startswith(("unix:", "fd://")):
                hc.bind = [address]
                made.extend(hc.create_sockets().insecure_sockets)
            else:
                made.append(_tcp_socket(address, reuse_port=config.workers > 1))
        for sock in made:
            sock.listen(hc.backlog)
    except BaseException:
        for sock in made:
            sock.close()
        raise
    return Sockets([], made, [])


def _tcp_socket(address: str, *, reuse_port: bool) -> socket.socket:
    """A socket bound to ``HOST:PORT`` (checked by :class:`ServeConfig`), as hypercorn makes it."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            # Worker processes each bind the same address.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, int(port)))
        sock.setblocking(False)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror or exc}") from exc
    return sock


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
    An address that cannot be listened on (in use, not local, an unknown
    host) raises ``OSError`` naming it, before the component is instantiated.
    """
    config = config or ServeConfig()
    await _serve_on(listen(config), component, config, shutdown_trigger, task_status)


async def _serve_on(
    sockets: Sockets,
    component: Component | WasiHttpApp,
    config: ServeConfig,
    shutdown_trigger: Any = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """:func:`serve` on sockets already listening; closes them when it returns."""
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    try:
        app = component if isinstance(component, WasiHttpApp) else WasiHttpApp(component, config)
        hc = hypercorn_config(config)
        kwargs: dict[str, Any] = {}
        if shutdown_trigger is not None:
            kwargs["shutdown_trigger"] = shutdown_trigger
        # What hypercorn.trio.serve does, with the sockets made here.
        await worker_serve(
            wrap_app(app, hc.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
            hc,
            sockets=sockets,
            task_status=task_status,
            **kwargs,
        )
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()


async def _serve_until_signal(
    sockets: Sockets, component: Component | WasiHttpApp, config: ServeConfig
) -> None:
    # The signals are received from the very start: left to their default
    # until hypercorn starts the shutdown trigger (after the first instance
    # is made), a Ctrl-C would raise KeyboardInterrupt wherever start-up
    # happened to be. One that comes early shuts the server down as soon as
    # it has started.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def until_signal() -> None:
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                return

        async def announce(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await _serve_on(sockets, component, config, until_signal, task_status)

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
    # So is listening: an address in use is an OSError naming it.
    sockets = listen(config)
    trio.run(_serve_until_signal, sockets, app, config)
