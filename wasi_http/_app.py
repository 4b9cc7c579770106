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

import gc
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

from trio_wasi import (
    Component,
    Err,
    FutureReceiver,
    LinkedComponent,
    Linker,
    Ok,
    StreamReceiver,
    Trap,
    Variant,
)
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


#: Requests one 0.3 instance serves at once unless configured otherwise.
DEFAULT_MAX_CONCURRENCY = 100


def max_concurrency(component: Component, kind: str, configured: int | None) -> int:
    """Requests one instance of ``component`` serves at once.

    A 0.2 handler serves one request at a time. A 0.3 component serves
    ``configured`` requests at once, by default :data:`DEFAULT_MAX_CONCURRENCY`,
    except one with a stackful export, which by default serves one: its
    blocked frames nest on the instance's store thread and wasmtime resumes
    them only last in, first out, so a request whose frame lies below
    another's cannot finish before that one does (a client slow to send its
    body would hold up every request that entered the instance before it).
    A configured value shares a stackful instance anyway (``MAX_PARKED``
    bounds the nesting; further requests queue).
    """
    if kind == "0.2":
        return 1
    if configured is not None:
        return configured
    return 1 if has_stackful_lift(component) else DEFAULT_MAX_CONCURRENCY


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
    """An ASGI 3 application serving one wasi:http component (see the module docstring).

    ``freeze_gc``: at startup, make the first instance, then move every
    object alive into the garbage collector's permanent generation
    (:func:`gc.freeze`). The component's and the instance's structures live
    as long as the process, and a full collection walking them stalls every
    request in flight (about 0.1 s, every thousand requests or so); for a
    process that does nothing but serve (``python -m trio_wasi serve``).
    """

    def __init__(
        self,
        component: Component,
        config: ServeConfig | None = None,
        *,
        freeze_gc: bool = False,
        on_startup_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.freeze_gc = freeze_gc
        # Told why start-up failed, before the server is (a worker process
        # reports it to the process that supervises it).
        self.on_startup_failure = on_startup_failure
        self.config = config or ServeConfig()
        self.component = component
        self.kind, self.handler = handler_kind(component)
        self.http = HttpClient(self.config.allow_http)
        self.linker = make_linker(component, self.config, self.http)
        self.linked: LinkedComponent = self.linker.prelink(component)
        self.pool: InstancePool | None = None
        # Where each request's reader runs (its body, then a disconnect).
        self._watchers: trio.Nursery | None = None
        # Exchanges with no request body and no watcher yet, and how many
        # sweeps (see _sweep) have been made.
        self._unwatched: set[_Exchange] = set()
        self._sweeps = 0
        # Set when the first exchange joins _unwatched: the sweeper sleeps
        # while there is none.
        self._sweep_wanted = trio.Event()
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
                    if self.freeze_gc:
                        await pool.prestart()
                        gc.freeze()
                    async with trio.open_nursery() as watchers:
                        watchers.start_soon(self._sweep, watchers)
                        self.pool = pool
                        self._watchers = watchers
                        try:
                            await send({"type": "lifespan.startup.complete"})
                            started = True
                            message = await receive()
                        finally:
                            self.pool = None
                        await pool.close(self.config.shutdown_timeout)
                        self._watchers = None
                        # Readers of requests still open (past the grace period).
                        watchers.cancel_scope.cancel()
        except Exception as exc:
            if not started:
                reason = _failure_text(exc)
                if self.on_startup_failure is not None:
                    self.on_startup_failure(reason)
                await send({"type": "lifespan.startup.failed", "message": reason})
                return
            log.exception("the instance pool failed")
        await send({"type": "lifespan.shutdown.complete"})

    async def _sweep(self, watchers: trio.Nursery) -> None:
        """Start a disconnect watcher for every bodiless exchange that has lasted a while.

        Every :data:`SWEEP_SECONDS` an exchange is found that was already
        waiting at the previous sweep (so it has lasted at least that long)
        gets its watcher; a client that goes away is then noticed within two
        sweeps of its request's start, or at once when it leaves later.
        """
        while True:
            if not self._unwatched:
                self._sweep_wanted = trio.Event()
                await self._sweep_wanted.wait()
                # (The exchange that woke us counts from this sweep on.)
                self._sweeps += 1
            await trio.sleep(SWEEP_SECONDS)
            self._sweeps += 1
            due = self._sweeps - 2
            for exchange in [e for e in self._unwatched if e.generation <= due]:
                self._unwatched.discard(exchange)
                assert exchange.receive is not None
                watchers.start_soon(_watch_disconnect, exchange.receive, exchange)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self.pool
        watchers = self._watchers
        if pool is None or watchers is None:
            await _plain(send, 503, b"the server is starting or stopping\n")
            return
        exchange = _Exchange(send, scope)
        body: trio.MemoryReceiveChannel[bytes] | None = None
        if _has_body(scope):
            body_send, body = trio.open_memory_channel[bytes](BODY_BUFFER)
            watchers.start_soon(_pump_request, receive, body_send, exchange)
        else:
            # No body to feed the guest: only a disconnect is worth reading,
            # and only once the exchange has gone on for a while (the sweeper
            # starts its watcher then); most end well before, and a watcher
            # task per request would cost more than the rest of the request
            # on the trio side. Either task runs in the application's
            # nursery: no nursery per request.
            exchange.receive = receive
            exchange.generation = self._sweeps
            if not self._unwatched:
                self._sweep_wanted.set()
            self._unwatched.add(exchange)
        try:
            with exchange.scope:
                if self.kind == "0.3":
                    await self._exchange03(scope, exchange.send, body, pool)
                else:
                    from ._types02 import exchange02

                    await exchange02(self, scope, exchange.send, body or _empty_body(), pool)
        finally:
            exchange.end()
            self._unwatched.discard(exchange)
        if exchange.scope.cancelled_caught:
            pool.cancelled += 1
            log.info(
                "%s %s: the client went away; the request was cancelled",
                scope.get("method"),
                scope.get("path"),
            )

    async def _exchange03(
        self,
        scope: Scope,
        send: Send,
        body: trio.MemoryReceiveChannel[bytes] | None,
        pool: InstancePool,
    ) -> None:
        request = Request.incoming(
            scope["method"],
            scope.get("scheme", "http"),
            _authority(scope),
            _target(scope),
            Fields.incoming(scope.get("headers", ())),
            body,
            None,
        )
        slot = await pool.acquire()
        try:
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
        finally:
            pool.release(slot)


def _failure_text(exc: BaseException) -> str:
    """What failed, for a server's log: the errors inside nursery exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_failure_text(e) for e in exc.exceptions)
    return str(exc) or type(exc).__name__


async def send_response(scope: Scope, send: Send, response: Response, slot: Slot) -> None:
    """Stream a handler's response to the client: head, body chunks, trailers.

    A body the guest has completely written by the time the head would go
    out (a small response, typically) is sent in one piece with a
    ``content-length``, which spares the chunked framing and a write per
    chunk; anything else streams as it comes, the head first.
    """
    contents, trailers = response.take_body()
    if isinstance(trailers, FutureReceiver):
        # Read the trailers while the body streams: a guest that writes them
        # right after its body then finishes on the store thread, with no
        # round trip from here in between.
        trailers.prefetch()
    if isinstance(contents, StreamReceiver):
        # Each read also takes what the guest has ready right after it (its
        # drop, above all), so the end of a body is known with its last chunk.
        contents.lookahead = True
    headers = _wire_headers(response.headers)
    # Trailers go out only where the client accepts them and the response
    # announced them in a ``trailer`` field (RFC 9110 section 6.6.2): once
    # declared to the server, a response must end with a trailer block, and
    # HTTP/2 (h2) cannot send an empty one, so an unannounced body ends plainly.
    want_trailers = _wants_trailers(scope) and any(name == b"trailer" for name, _ in headers)
    head = {
        "type": "http.response.start",
        "status": response.status,
        "headers": headers,
        "trailers": want_trailers,
    }
    try:
        try:
            ready = await _ready_chunks(contents)
            if ready is not None and ready[1] and not want_trailers:
                outcome = _ready_outcome(trailers)
                if isinstance(outcome, Ok):
                    body = b"".join(ready[0])
                    if _may_add_length(scope, response):
                        headers.append((b"content-length", b"%d" % len(body)))
                    await send(head)
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    await _close(trailers)
                    response.finish(Ok(None))
                    return
            await send(head)
            for chunk in ready[0] if ready is not None else ():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if ready is None or not ready[1]:
                async for chunk in contents:
                    if chunk:
                        await send(
                            {"type": "http.response.body", "body": bytes(chunk), "more_body": True}
                        )
        finally:
            await _close(contents)
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


async def _ready_chunks(contents: trio.abc.ReceiveChannel[Any]) -> tuple[list[bytes], bool] | None:
    """The body chunks the guest has ready now, and whether the body ends after them.

    None when nothing can be known without waiting (the body is not a guest
    stream, or the guest has written nothing yet).
    """
    if not isinstance(contents, StreamReceiver):
        return None
    chunks: list[bytes] = []
    try:
        chunk = await contents.receive_if_ready()
        while True:
            if chunk:
                chunks.append(bytes(chunk))
            chunk = contents.receive_nowait()
    except trio.EndOfChannel:
        return chunks, True
    except trio.WouldBlock:
        return (chunks, False) if chunks else None


def _ready_outcome(trailers: trio.abc.ReceiveChannel[Any]) -> Any:
    """The trailers future's value if it is already received, else None."""
    if not isinstance(trailers, FutureReceiver):
        return None
    try:
        return trailers.receive_nowait()
    except (trio.WouldBlock, trio.EndOfChannel):
        return None


def _may_add_length(scope: Scope, response: Response) -> bool:
    # RFC 9110 section 8.6: no content-length on 1xx and 204, and on HEAD or
    # 304 it would have to be the length of a body not sent.
    status = response.status
    if scope.get("method") == "HEAD" or status < 200 or status in (204, 304):
        return False
    return not response.headers.contains("content-length")


class _BodyFailed(Exception):
    """The guest's response body ended with an error; the server drops the connection."""


async def _close(channel: trio.abc.ReceiveChannel[Any]) -> None:
    """Close a body or trailers channel; at once (no checkpoint) when it can.

    The exchange has checkpoints enough (every send is one): a task step
    more per channel would only add to the cost of each request.
    """
    if isinstance(channel, (StreamReceiver, FutureReceiver, trio.MemoryReceiveChannel)):
        channel.close()
    else:
        await channel.aclose()


async def _first(channel: trio.abc.ReceiveChannel[Any]) -> Any:
    """The value of a future (a channel's first item), or None if it closed empty."""
    try:
        if isinstance(channel, (FutureReceiver, trio.MemoryReceiveChannel)):
            # Usually resolved by now: taken without a task step.
            try:
                return channel.receive_nowait()
            except trio.WouldBlock:
                pass
        return await channel.receive()
    except trio.EndOfChannel:
        return None
    finally:
        await _close(channel)


def _empty_body() -> trio.MemoryReceiveChannel[bytes]:
    send, receive = trio.open_memory_channel[bytes](0)
    send.close()
    return receive


class _Exchange:
    """One request's exchange: its cancel scope, and whether the response is complete.

    ``watch`` is the cancel scope of the task that reads the request (its
    body, then a disconnect); :meth:`end` stops that task when the exchange
    is over, whatever the server would still send.
    """

    __slots__ = ("_asgi_scope", "_send", "complete", "generation", "receive", "scope", "watch")

    def __init__(self, send: Send, asgi_scope: Scope) -> None:
        self._send = send
        self._asgi_scope = asgi_scope
        self.scope = trio.CancelScope()
        self.watch: trio.CancelScope | None = None
        self.complete = False
        # For an exchange waiting for its watcher: what it reads, and the
        # sweep it started after.
        self.receive: Receive | None = None
        self.generation = 0

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.trailers" or (
            kind == "http.response.body" and not message.get("more_body", False)
        ):
            # A server may report the end of the exchange as a disconnect at once.
            self.complete = True
            # hypercorn logs a client that closes the connection while this
            # last message is being written as a request with no response,
            # then the response itself: the access log skips the first.
            self._asgi_scope[ANSWERED] = True
        await self._send(message)

    def disconnected(self) -> None:
        if not self.complete:
            self.scope.cancel()

    def end(self) -> None:
        self.complete = True
        if self.watch is not None:
            self.watch.cancel()
        else:
            # The watcher has not started yet: it will see this and not wait.
            self.watch = _ENDED


#: How often exchanges without a request body are looked at for one that
#: needs a disconnect watcher: a client that goes away mid-request is noticed
#: at the latest this long after its request reaches twice this age.
SWEEP_SECONDS = 0.05

#: Set in an ASGI ``http`` scope once the application sends its response's
#: last message (see :class:`wasi_http._serve.AccessLog`).
ANSWERED = "wasi_http.answered"

# The watch scope of an exchange that ended before its watcher started.
_ENDED = trio.CancelScope()


async def _pump_request(
    receive: Receive, body: trio.MemorySendChannel[bytes], exchange: _Exchange
) -> None:
    """Feed the ASGI request body into the guest's stream, then watch for a disconnect."""
    if exchange.watch is not None:
        body.close()
        return
    with trio.CancelScope() as exchange.watch:
        try:
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
            await _until_disconnect(receive, exchange)
        except Exception:
            # This task runs in the application's nursery, which must not
            # end with it: the exchange ends instead.
            log.exception("reading the request failed")
            exchange.disconnected()


async def _watch_disconnect(receive: Receive, exchange: _Exchange) -> None:
    """Cancel the exchange if the client goes away before the response is complete."""
    if exchange.watch is not None:
        return
    with trio.CancelScope() as exchange.watch:
        try:
            await _until_disconnect(receive, exchange)
        except Exception:
            log.exception("reading the request failed")
            exchange.disconnected()


async def _until_disconnect(receive: Receive, exchange: _Exchange) -> None:
    # Body messages of a request declared without a body end it here (an
    # empty one, as servers send).
    nowait = _receive_nowait(receive)
    while True:
        try:
            message = nowait()
        except trio.WouldBlock:
            message = await receive()
        if message["type"] == "http.disconnect":
            exchange.disconnected()
            return


def _would_block() -> Message:
    raise trio.WouldBlock


def _receive_nowait(receive: Receive) -> Callable[[], Message]:
    """``receive``'s synchronous twin, or a function that raises ``trio.WouldBlock``.

    A server on trio (hypercorn) hands each request the ``receive`` method
    of a memory channel, where the request's body message is already queued
    when the application starts: taking it at once spares the watcher a
    task step per request.
    """
    channel = getattr(receive, "__self__", None)
    if (
        isinstance(channel, trio.MemoryReceiveChannel)
        and getattr(receive, "__func__", None) is trio.MemoryReceiveChannel.receive
    ):
        return channel.receive_nowait
    return _would_block


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


def _has_body(scope: Scope) -> bool:
    """Whether the request may have a body (else the guest gets an empty one at once).

    HTTP/1.x frames a request body only with ``content-length`` or
    ``transfer-encoding`` (RFC 9112 section 6.3); HTTP/2 and later may send
    one without either, so there only ``content-length: 0`` rules it out.
    """
    framed = scope.get("http_version") in ("1.1", "1.0")
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return bool(value.strip() != b"0")
        if name == b"transfer-encoding":
            return True
    return not framed


def _wants_trailers(scope: Scope) -> bool:
    if "http.response.trailers" not in scope.get("extensions", {}):
        return False
    # The server sends trailers only for this exact value (hypercorn's rule).
    return any(
        name == b"te" and value.strip().lower() == b"trailers"
        for name, value in scope.get("headers", ())
    )
