"""``python -m trio_wasi serve``: the options, and running one or many workers.

With ``--workers 1`` (the default) the server runs in this process and shuts
down gracefully on SIGINT or SIGTERM. With more, hypercorn starts that many
worker processes; each rebuilds the application from the same arguments
(passed in the environment) through :mod:`wasi_http._worker`.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from trio_wasi import Error, Limits, parse_w_options

from ._config import ServeConfig

if TYPE_CHECKING:
    from trio_wasi import Component, Engine, WasiConfig

__all__ = ["ARGV_ENV", "FAILURE_ENV", "add_serve_parser", "build", "serve_command"]

#: The environment variable that carries ``serve``'s options to worker processes.
ARGV_ENV = "WASI_HTTP_SERVE_ARGV"
# A file where worker processes write why their start-up failed (one line each).
FAILURE_ENV = "WASI_HTTP_SERVE_FAILURES"

SERVE_DESCRIPTION = """\
Serve HTTP with a wasi:http component: a wasi:http/service@0.3.0 component
(exporting wasi:http/handler) or a 0.2 wasi:http/proxy component (exporting
wasi:http/incoming-handler), on hypercorn (HTTP/1.1 and HTTP/2 with prior
knowledge). With no FILE, serves the small component the package ships.

Instances are pooled: a 0.3 instance serves up to --max-concurrency requests
at once, a 0.2 instance one at a time; each is replaced after
--max-requests requests (0: never) and at its first trap. Nothing is
granted unless asked for; outgoing requests reach only --allow-http hosts.

Every instance runs under limits (-W, the same options as `run`, with safe
defaults here): a request whose handler runs past -W timeout traps with
"deadline exceeded", its client gets a 500, and its instance (with the
other requests it was serving) is discarded; memory, tables, handles, host
copies and stream buffers are bounded too.

examples:
  python -m trio_wasi serve app.wasm
  python -m trio_wasi serve --addr 0.0.0.0:8000 --workers 4 app.wasm
  python -m trio_wasi serve --allow-http example.com --allow-http '127.0.0.1:*' app.wasm
  python -m trio_wasi serve -W timeout=5s,max-memory-size=256MiB app.wasm
"""


def add_serve_parser(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``serve`` subcommand to the command line's subparsers."""
    p = sub.add_parser(
        "serve",
        help="serve HTTP with a wasi:http component",
        description=SERVE_DESCRIPTION,
        formatter_class=fmt,
    )
    p.add_argument(
        "--addr",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="the address to listen on (default: 127.0.0.1:8080)",
    )
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)"
    )
    p.add_argument(
        "--allow-http",
        dest="allow_http",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="let outgoing requests reach HOST (a pattern; `*` matches any host "
        "or port); repeatable; default: none",
    )
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        metavar="N",
        help=(
            "requests one 0.3 instance serves at once (default: 100, or 1 for a "
            "component with a stackful export)"
        ),
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=0,
        metavar="N",
        help="requests an instance serves before it is replaced (default: 0, never)",
    )
    p.add_argument(
        "--max-instances",
        type=int,
        default=8,
        metavar="N",
        help="instances per worker at most (default: 8)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long in-flight requests may finish at shutdown (default: 10)",
    )
    from trio_wasi._cli import add_wasi_arguments
    from trio_wasi._limits import add_w_argument

    add_wasi_arguments(p)

    add_w_argument(p, Limits.serve())
    p.add_argument(
        "--store-threads",
        dest="store_threads",
        action="store_true",
        help="run every instance's wasm on a store thread of its own, so a guest that "
        "computes never holds up the requests of other instances until its deadline "
        "(default: only components that may block run on store threads)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log each request (errors and warnings are still logged)",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="the component (.wasm or .wat)")


def default_component(engine: Engine | None = None) -> Component:
    """The component ``serve`` runs with no file: ``wasi_http/demo/hello.wat``."""
    from trio_wasi import Component

    text = resources.files("wasi_http").joinpath("demo/hello.wat").read_text(encoding="utf-8")
    return Component.from_wat(text, engine=engine)


def build(
    ns: argparse.Namespace,
    load: Callable[[Path, Engine | None], Component],
    wasi_config: Callable[[argparse.Namespace, str, list[str]], WasiConfig],
) -> tuple[Component, ServeConfig]:
    """The component and configuration ``ns`` (parsed ``serve`` options) asks for."""
    try:
        limits = parse_w_options(ns.limits, base=Limits.serve())
    except ValueError as exc:
        raise Error(str(exc)) from None
    from trio_wasi._cli import check_component_path, engine_for

    engine = engine_for(limits)
    if ns.file is not None:
        component = load(check_component_path(ns.file), engine)
        program = ns.file
    else:
        component = default_component(engine)
        program = "hello.wat"
    for option, value, least in (
        ("--workers", ns.workers, 1),
        ("--max-instances", ns.max_instances, 1),
        ("--max-concurrency", ns.max_concurrency, 1),
        ("--max-requests", ns.max_requests, 0),
        ("--shutdown-timeout", ns.shutdown_timeout, 0),
    ):
        if value is not None and value < least:
            raise Error(f"{option} must be at least {least}, got {value}")
    wasi = attrs.evolve(wasi_config(ns, program, []), stdin=None)
    from ._client import AllowList

    try:
        AllowList(ns.allow_http)
    except ValueError as exc:
        raise Error(f"--allow-http: {exc}") from None
    try:
        bind = ServeConfig(bind=[ns.addr]).bind
    except ValueError as exc:
        raise Error(f"--addr: {exc}") from None
    config = ServeConfig(
        bind=bind,
        wasi=wasi,
        max_concurrency=ns.max_concurrency,
        max_requests=ns.max_requests,
        max_instances=ns.max_instances,
        allow_http=ns.allow_http,
        shutdown_timeout=ns.shutdown_timeout,
        workers=ns.workers,
        limits=limits,
        run_on_thread=True if ns.store_threads else None,
    )
    return component, config


def _logging(verbose: bool, access_log: bool = True) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The access logger only logs at INFO: above that, a request costs it nothing.
    logging.getLogger("wasi_http.access").setLevel(logging.INFO if access_log else logging.WARNING)


def _error_within(exc: BaseException) -> Error | None:
    """The first :class:`trio_wasi.Error` in ``exc``'s groups or the exceptions it arose from."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        item = pending.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Error):
            return item
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
        pending.extend(e for e in (item.__cause__, item.__context__) if e is not None)
    return None


def serve_command(
    ns: argparse.Namespace,
    load: Callable[[Path, Engine | None], Component],
    wasi_config: Callable[[argparse.Namespace, str, list[str]], WasiConfig],
) -> int:
    """Run ``serve`` as parsed into ``ns``; returns the exit status."""
    from ._app import handler_kind

    _logging(ns.verbose, ns.access_log)
    component, config = build(ns, load, wasi_config)
    handler_kind(component)  # a one-line error now, not in every worker
    from ._serve import listen

    if config.workers == 1:
        from ._serve import run_server

        try:
            run_server(component, config)
        except OSError as exc:
            raise Error(exc.strerror or str(exc)) from exc
        except BaseExceptionGroup as group:
            interrupted, rest = group.split(KeyboardInterrupt)
            if interrupted is not None and rest is None:
                # Ctrl-C during start-up, before the signal handlers were in place.
                raise KeyboardInterrupt from None
            # The first instance is made at start-up, inside hypercorn's
            # lifespan and task groups: a trap there is the one line to show.
            found = _error_within(group)
            if found is None:
                raise
            raise Error(f"the first instance failed at start-up: {found}") from group
        return 0
    from hypercorn.run import run

    from ._serve import hypercorn_config

    # hypercorn's supervisor binds the address itself, with a traceback
    # when it cannot: it is tried here first, so that failure is one line.
    try:
        for sock in listen(config).insecure_sockets:
            sock.close()
    except OSError as exc:
        raise Error(exc.strerror or str(exc)) from exc

    # Linking here too: a worker that cannot link dies with a traceback, and
    # hypercorn's supervisor then ends with status 0.
    from ._app import WasiHttpApp

    WasiHttpApp(component, config)
    # Each worker loads the component itself: the parent only supervises,
    # so it lets go of its copy (compiled code and all) before they start.
    del component
    gc.collect()
    os.environ[ARGV_ENV] = json.dumps({k: v for k, v in vars(ns).items() if k != "command"})
    hc = hypercorn_config(config)
    hc.application_path = "wasi_http._worker:app"
    fd, failures = tempfile.mkstemp(prefix="wasi-http-serve-", suffix=".txt")
    os.close(fd)
    os.environ[FAILURE_ENV] = failures
    try:
        status = int(run(hc) or 0)
        reasons = Path(failures).read_text(encoding="utf-8").splitlines()
    finally:
        os.unlink(failures)
    if reasons:
        # Every worker fails alike: one line says why.
        raise Error(f"the first instance failed at start-up: {reasons[0]}")
    return status
