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
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from trio_wasi import Error

from ._config import ServeConfig

if TYPE_CHECKING:
    from trio_wasi import Component, WasiConfig

__all__ = ["ARGV_ENV", "add_serve_parser", "build", "serve_command"]

#: The environment variable that carries ``serve``'s options to worker processes.
ARGV_ENV = "WASI_HTTP_SERVE_ARGV"

SERVE_DESCRIPTION = """\
Serve HTTP with a wasi:http component: a wasi:http/service@0.3.0 component
(exporting wasi:http/handler) or a 0.2 wasi:http/proxy component (exporting
wasi:http/incoming-handler), on hypercorn (HTTP/1.1 and HTTP/2 with prior
knowledge). With no FILE, serves the small component the package ships.

Instances are pooled: a 0.3 instance serves up to --max-concurrency requests
at once, a 0.2 instance one at a time; each is replaced after
--max-requests requests (0: never) and at its first trap. Nothing is
granted unless asked for; outgoing requests reach only --allow-http hosts.

examples:
  python -m trio_wasi serve app.wasm
  python -m trio_wasi serve --addr 0.0.0.0:8000 --workers 4 app.wasm
  python -m trio_wasi serve --allow-http example.com --allow-http '127.0.0.1:*' app.wasm
"""


def add_serve_parser(sub: Any, fmt: type[argparse.HelpFormatter], settings: dict[str, str]) -> None:
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
        default=100,
        metavar="N",
        help="requests one 0.3 instance serves at once (default: 100)",
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
    p.add_argument(
        "--dir",
        dest="dirs",
        action="append",
        default=[],
        metavar="HOST[::GUEST]",
        help="grant the host directory HOST to the component, seen as GUEST",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="set an environment variable; NAME alone passes the host's value",
    )
    p.add_argument(
        "-S",
        dest="settings",
        action="append",
        default=[],
        metavar="SETTING",
        help="a WASI setting: " + "; ".join(f"{k}: {v}" for k, v in settings.items()),
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.add_argument("file", nargs="?", metavar="FILE", help="the component (.wasm or .wat)")


def default_component() -> Component:
    """The component ``serve`` runs with no file: ``wasi_http/demo/hello.wat``."""
    from trio_wasi import Component

    text = resources.files("wasi_http").joinpath("demo/hello.wat").read_text(encoding="utf-8")
    return Component.from_wat(text)


def build(
    ns: argparse.Namespace,
    load: Callable[[Path], Component],
    looks_like_component: Callable[[Path], bool],
    wasi_config: Callable[[argparse.Namespace, str, list[str]], WasiConfig],
) -> tuple[Component, ServeConfig]:
    """The component and configuration ``ns`` (parsed ``serve`` options) asks for."""
    if ns.file is not None:
        path = Path(ns.file)
        if not looks_like_component(path):
            if not path.exists():
                raise Error(f"no such file: {ns.file}")
            raise Error(f"{ns.file} is not a WebAssembly component (no wasm magic bytes)")
        component = load(path)
        program = ns.file
    else:
        component = default_component()
        program = "hello.wat"
    if ns.workers < 1:
        raise Error("--workers must be at least 1")
    wasi = attrs.evolve(wasi_config(ns, program, []), stdin=None)
    config = ServeConfig(
        bind=[ns.addr],
        wasi=wasi,
        max_concurrency=ns.max_concurrency,
        max_requests=ns.max_requests,
        max_instances=ns.max_instances,
        allow_http=ns.allow_http,
        shutdown_timeout=ns.shutdown_timeout,
        workers=ns.workers,
    )
    return component, config


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve_command(
    ns: argparse.Namespace,
    load: Callable[[Path], Component],
    looks_like_component: Callable[[Path], bool],
    wasi_config: Callable[[argparse.Namespace, str, list[str]], WasiConfig],
) -> int:
    """Run ``serve`` as parsed into ``ns``; returns the exit status."""
    from ._app import handler_kind

    _logging(ns.verbose)
    component, config = build(ns, load, looks_like_component, wasi_config)
    handler_kind(component)  # a one-line error now, not in every worker
    if config.workers == 1:
        from ._serve import run_server

        run_server(component, config)
        return 0
    from hypercorn.run import run

    from ._serve import hypercorn_config

    # Each worker loads the component itself: the parent only supervises,
    # so it lets go of its copy (compiled code and all) before they start.
    del component
    gc.collect()
    os.environ[ARGV_ENV] = json.dumps({k: v for k, v in vars(ns).items() if k != "command"})
    hc = hypercorn_config(config)
    hc.application_path = "wasi_http._worker:app"
    return int(run(hc) or 0)
