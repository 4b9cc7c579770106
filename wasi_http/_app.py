"""The ASGI application that serves a wasi:http component.

``WasiHttpApp(component, config)`` mounts a ``wasi:http/service@0.3.0``
component (it exports ``wasi:http/handler``) in any ASGI server. Its
``lifespan`` scope owns the instance pool and the outgoing HTTP client, so
the server must run the lifespan protocol (hypercorn, uvicorn and others do).

Per request: the ASGI body becomes the request's ``stream<u8>`` (a bounded
channel, so an upload advances only as fast as the guest reads), the
handler's response streams back chunk by chunk, then its trailers (sent when
the client asked for them and the server speaks them). A client that goes
away cancels the request: the guest's task is cancelled, or its body stream
dropped. A trap fails the requests in flight on that instance with 500 and
the pool discards the instance.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

from trio_wasi import Component, Err, LinkedComponent, Linker, Ok, Trap, Variant
from trio_wasi._names import compatibility_key

from ._client import Client03, HttpClient
from ._config import ServeConfig
from ._errors import describe, status_for
from ._fields import FieldsCore
from ._pool import InstancePool, Slot
from ._types03 import Fields, Request, Response, Types

__all__ = ["WasiHttpApp", "handler_kind", "make_linker"]

log = logging.getLogger("wasi_http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HANDLER_03 = "wasi:http/handler@0.3.0"
HANDLER_02 = "wasi:http/incoming-handler@0.2.0"
# Request bodies wait in a channel this deep before the upload is held back.
BODY_BUFFER = 4


def _exports(component: Component) -> list[str]:
    from trio_wasi._binary import _model as M

    return [d.name.name for d in component.model.definitions if isinstance(d, M.Export)]


def _imports(component: Component) -> list[str]:
    from trio_wasi.wasi._command import component_imports

    return component_imports(component)


def handler_kind(component: Component) -> tuple[str, str]:
    """``("0.3", name)`` or ``("0.2", name)``: the handler export the component serves with."""
    for name in _exports(component):
        if compatibility_key(name) == compatibility_key(HANDLER_03):
            return "0.3", name
    for name in _exports(component):
        if compatibility_key(name) == compatibility_key(HANDLER_02):
            return "0.2", name
    from trio_wasi import Error

    raise Error(
        "the component is not a wasi:http service: it exports neither "
        f"{HANDLER_03} nor {HANDLER_02}"
    )


def has_stackful_lift(component: Component) -> bool:
    """Whether ``component`` lifts a function async without a callback (stackful)."""
    from trio_wasi._binary import _model as M

    def walk(definitions: Any) -> bool:
        for d in definitions:
            if isinstance(d, M.CanonLift) and d.options.is_async and d.options.callback is None:
                return True
            nested = getattr(d, "component", None)
            if isinstance(nested, M.DecodedComponent) and walk(nested.definitions):
                return True
        return False

    return walk(component.model.definitions)


def max_concurrency(component: Component, kind: str, configured: int) -> int:
    """Requests one instance of ``component`` serves at once.

    A 0.2 handler serves one request at a time. So does a component with a
    stackful export: its blocked frames nest on the instance's store thread
    (last in, first out), so requests sharing it would only wait on each
    other, ever deeper.
    """
    if kind == "0.2" or has_stackful_lift(component):
        return 1
    return configured


def make_linker(component: Component, config: ServeConfig, http: HttpClient) -> Linker:
    """A linker with WASI (as ``config.wasi`` grants) and wasi:http for ``component``."""
    from trio_wasi.wasi import add_to_linker

    linker = Linker(component.engine, limits=config.limits)
    imports = _imports(component)
    add_to_linker(linker, config.wasi, only=imports)
    keys = {compatibility_key(n) for n in imports}

    def wanted(name: str) -> bool:
        return compatibility_key(name) in keys

    if wanted("wasi:http/types@0.3.0"):
        linker.define_interface("wasi:http/types@0.3.0", Types)
    if wanted("wasi:http/client@0.3.0"):
        linker.define_interface("wasi:http/client@0.3.0", Client03(http))
    if wanted("wasi:http/types@0.2.0") or wanted("wasi:http/outgoing-handler@0.2.0"):
        from ._types02 import add_to_linker as add02

        add02(linker, config, http, wanted)
    return linker


class WasiHttpApp:
    """An ASGI 3 application serving one wasi:http component (see the module docstring)."""

    def __init__(self, component: Component, config: ServeConfig | None = None) -> None:
        self.config = config or ServeConfig()
        self.component = component
        self.kind, self.handler = handler_kind(component)
        self.http = HttpClient(self.config.allow_http)
        self.linker = make_linker(component, self.config, self.http)
        self.linked: LinkedComponent = self.linker.prelink(component)
        self.pool: InstancePool | None = None
        self._export = f"{self.handler}#handle"

    # -- ASGI -----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            # Websockets are not part of wasi:http.
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        started = False
        try:
            async with self.http:
                pool = InstancePool(
                    self.linker,
                    self.linked,
                    max_concurrency=max_concurrency(
                        self.component, self.kind, self.config.max_concurrency
                    ),
                    max_requests=self.config.max_requests,
                    max_instances=self.config.max_instances,
                    run_on_thread=self.config.run_on_thread,
                )
                async with pool.running():
                    self.pool = pool
                    try:
                        await send({"type": "lifespan.startup.complete"})
                        started = True
                        message = await receive()
                    finally:
                        self.pool = None
                    await pool.close(self.config.shutdown_timeout)
        except Exception as exc:
            if not started:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            log.exception("the instance pool failed")
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self.pool
        if pool is None:
            await _plain(send, 503, b"the server is starting or stopping\n")
            return
        exchange = _Exchange(send)
        async with trio.open_nursery() as nursery:
            body_send, body = trio.open_memory_channel[bytes](BODY_BUFFER)
            nursery.start_soon(_pump_request, receive, body_send, exchange)
            with exchange.scope:
                if self.kind == "0.3":
                    await self._exchange03(scope, exchange.send, body, pool)
                else:
                    from ._types02 import exchange02

                    await exchange02(self, scope, exchange.send, body, pool)
            nursery.cancel_scope.cancel()
        if exchange.scope.cancelled_caught:
            pool.cancelled += 1
            log.info(
                "%s %s: the client went away; the request was cancelled",
                scope.get("method"),
                scope.get("path"),
            )

    async def _exchange03(
        self, scope: Scope, send: Send, body: trio.MemoryReceiveChannel[bytes], pool: InstancePool
    ) -> None:
        request = Request.incoming(
            scope["method"],
            scope.get("scheme", "http"),
            _authority(scope),
            _target(scope),
            Fields.incoming(scope.get("headers", ())),
            body,
            _resolved(Ok(None)),
        )
        async with pool.lease() as slot:
            assert slot.instance is not None
            try:
                result = await slot.instance.call(self._export, request)
            except Trap as exc:
                slot.mark_broken(str(exc))
                await _plain(send, 500, b"internal server error\n")
                return
            if isinstance(result, Err):
                await _handler_failed(scope, send, result.value)
                return
            assert isinstance(result, Ok) and isinstance(result.value, Response)
            await send_response(scope, send, result.value, slot)


async def send_response(scope: Scope, send: Send, response: Response, slot: Slot) -> None:
    """Stream a handler's response to the client: head, body chunks, trailers."""
    contents, trailers = response.take_body()
    head = _wire_headers(response.headers)
    # Trailers go out only where the client accepts them and the response
    # announced them in a ``trailer`` field (RFC 9110 section 6.6.2): once
    # declared to the server, a response must end with a trailer block, and
    # HTTP/2 (h2) cannot send an empty one, so an unannounced body ends plainly.
    want_trailers = _wants_trailers(scope) and any(name == b"trailer" for name, _ in head)
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": head,
            "trailers": want_trailers,
        }
    )
    try:
        async with contents:
            async for chunk in contents:
                if chunk:
                    await send(
                        {"type": "http.response.body", "body": bytes(chunk), "more_body": True}
                    )
        outcome = await _first(trailers)
    except Trap as exc:
        slot.mark_broken(str(exc))
        response.finish(Err(Variant("internal-error", "trap")))
        raise
    if isinstance(outcome, Err) or outcome is None:
        # The body ended in an error: cut the response short rather than
        # pretend it is complete.
        reason = describe(outcome.value) if isinstance(outcome, Err) else "no trailers result"
        log.warning("%s %s: the response body failed: %s", scope["method"], scope["path"], reason)
        response.finish(Ok(None))
        raise _BodyFailed(reason)
    fields = outcome.value
    tail = _wire_headers(fields) if fields is not None else []
    if want_trailers and not tail:
        # The response announced trailers and sent none: there is no way to
        # end the stream as declared, so it is cut short like a failed body.
        response.finish(Ok(None))
        raise _BodyFailed("the response announced trailers and sent none")
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    if want_trailers:
        await send({"type": "http.response.trailers", "headers": tail, "more_trailers": False})
    elif tail:
        log.debug(
            "%s %s: trailers dropped (not announced or not accepted)",
            scope["method"],
            scope["path"],
        )
    response.finish(Ok(None))


class _BodyFailed(Exception):
    """The guest's response body ended with an error; the server drops the connection."""


async def _first(channel: trio.abc.ReceiveChannel[Any]) -> Any:
    """The value of a future (a channel's first item), or None if it closed empty."""
    async with channel:
        try:
            return await channel.receive()
        except trio.EndOfChannel:
            return None


def _resolved(value: Any) -> trio.MemoryReceiveChannel[Any]:
    send, receive = trio.open_memory_channel[Any](1)
    send.send_nowait(value)
    send.close()
    return receive


class _Exchange:
    """One request's exchange: its cancel scope, and whether the response is complete."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.scope = trio.CancelScope()
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.trailers" or (
            message["type"] == "http.response.body" and not message.get("more_body", False)
        ):
            # A server may report the end of the exchange as a disconnect at once.
            self.complete = True
        await self._send(message)

    def disconnected(self) -> None:
        if not self.complete:
            self.scope.cancel()


async def _pump_request(
    receive: Receive, body: trio.MemorySendChannel[bytes], exchange: _Exchange
) -> None:
    """Feed the ASGI request body into the guest's stream, then watch for a disconnect."""
    async with body:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                exchange.disconnected()
                return
            chunk = message.get("body", b"")
            if chunk:
                try:
                    await body.send(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the guest dropped the body: drain the rest
            if not message.get("more_body", False):
                break
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            exchange.disconnected()
            return


async def _handler_failed(scope: Scope, send: Send, code: Any) -> None:
    """Answer a request whose handler returned the error code ``code`` (both generations)."""
    log.warning("%s %s: the handler failed: %s", scope["method"], scope["path"], describe(code))
    await _plain(send, status_for(code), describe(code).encode() + b"\n")


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text, "more_body": False})


def _wire_headers(fields: FieldsCore) -> list[tuple[bytes, bytes]]:
    return [(n.lower().encode("latin-1"), v) for n, v in fields.pairs]


def _authority(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server")
    if server:
        return f"{server[0]}:{server[1]}"
    return None


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    text = path.decode("latin-1") if isinstance(path, bytes) else str(path)
    query = scope.get("query_string", b"")
    return f"{text}?{query.decode('latin-1')}" if query else text


def _wants_trailers(scope: Scope) -> bool:
    if "http.response.trailers" not in scope.get("extensions", {}):
        return False
    # The server sends trailers only for this exact value (hypercorn's rule).
    return any(
        name == b"te" and value.strip().lower() == b"trailers"
        for name, value in scope.get("headers", ())
    )
