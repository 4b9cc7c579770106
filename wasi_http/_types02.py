"""wasi:http@0.2.0 on the same core: bodies over the wasi:io streams of ``trio_wasi.wasi._io``.

An incoming body is a :class:`~trio_wasi.wasi._io.PumpedInputStream` over the
request's chunk channel; an outgoing body a
:class:`~trio_wasi.wasi._io.PumpedOutputStream` that sends chunks into a
bounded channel the server (or the outgoing client) reads, so bodies stream
in both directions without being held whole. ``response-outparam.set`` and
``outgoing-body.finish`` may run on a store thread (0.2 guests block in
``poll``): they hand their results to trio through the instance's
``start_soon``, never touching trio objects themselves.

The server calls ``incoming-handler.handle`` once per request, one request
at a time per instance; ``handle`` may return before or after it has written
the body.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from trio_wasi import Err, HostContext, Ok, Some, Trap, Variant, with_context
from trio_wasi.wasi._io import (
    FnReadiness,
    IoError,
    Pollable,
    PumpedInputStream,
    PumpedOutputStream,
    PumpedSource,
)

from ._client import HttpClient, ResponseBody, _seconds
from ._fields import FieldsFace
from ._types03 import method_name, method_variant, scheme_name, scheme_variant

if TYPE_CHECKING:
    from ._app import Scope, Send, WasiHttpApp
    from ._config import ServeConfig
    from ._pool import InstancePool

__all__ = ["add_to_linker", "exchange02"]

log = logging.getLogger("wasi_http")

# Chunks an outgoing body may have in flight before its writer waits.
BODY_CHUNKS = 4


class Fields(FieldsFace):
    """``fields`` (0.2.0)."""

    def entries(self) -> list[tuple[str, bytes]]:
        return list(self.pairs)


class _Ready:
    """A value produced on trio and read from any thread, with a pollable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self.value: Any = None
        self._event: trio.Event | None = None

    def set(self, value: Any) -> None:
        """Called on trio."""
        with self._lock:
            self._done = True
            self.value = value
        if self._event is not None:
            self._event.set()

    def ready(self) -> bool:
        with self._lock:
            return self._done

    async def wait(self) -> None:
        if self.ready():
            await trio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = trio.Event()
        if self.ready():
            return
        await self._event.wait()

    def pollable(self) -> Pollable:
        return Pollable(FnReadiness(self.ready, self.wait))


# -- bodies ---------------------------------------------------------------------


class IncomingBody:
    """``incoming-body``: a stream over a channel of chunks, then the trailers."""

    def __init__(self, chunks: trio.abc.ReceiveChannel[Any], trailers: Any = None) -> None:
        self._chunks = chunks
        self._streamed = False
        self._trailers = trailers  # a _Ready, or None for "no trailers"

    @with_context
    def stream(self, context: HostContext) -> Ok | Err:
        if self._streamed:
            return Err(None)
        self._streamed = True
        chunks = self._chunks

        async def receive_some(n: int) -> bytes:
            try:
                return bytes(await chunks.receive())
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return b""

        return Ok(PumpedInputStream(PumpedSource(context, receive_some)))

    @staticmethod
    def finish(this: IncomingBody) -> FutureTrailers:
        ready = this._trailers
        if ready is None:
            ready = _Ready()
            ready.set(Ok(None))
        return FutureTrailers(ready)


class FutureTrailers:
    """``future-trailers``."""

    def __init__(self, ready: _Ready) -> None:
        self._ready = ready
        self._taken = False

    def subscribe(self) -> Pollable:
        return self._ready.pollable()

    def get(self) -> Any:
        if not self._ready.ready():
            return None
        if self._taken:
            return Some(Err(None))
        self._taken = True
        value = self._ready.value
        if isinstance(value, Err):
            return Some(Ok(value))
        fields = value.value if isinstance(value, Ok) else None
        if fields is not None and not isinstance(fields, Fields):
            fields = Fields.of(fields.pairs, immutable=True)
        return Some(Ok(Ok(fields)))


class OutgoingBody:
    """``outgoing-body``: an output stream whose chunks go into a bounded channel."""

    def __init__(self) -> None:
        self.send_chunks, self.chunks = trio.open_memory_channel[bytes](BODY_CHUNKS)
        self.stream: PumpedOutputStream | None = None
        self.outcome = _Ready()  # Ok(trailers or None), or Err(reason) when dropped

    @with_context
    def write(self, context: HostContext) -> Ok | Err:
        if self.stream is not None:
            return Err(None)
        self.stream = PumpedOutputStream(context, self.send_chunks.send)
        return Ok(self.stream)

    @staticmethod
    @with_context
    def finish(context: HostContext, this: OutgoingBody, trailers: Fields | None) -> Ok | Err:
        context.start_soon(this._end, Ok(trailers))
        return Ok(None)

    async def aclose(self) -> None:
        # Dropped without finish: the body is incomplete.
        await self._end(Err("the body was dropped before it was finished"))

    async def _end(self, outcome: Ok | Err) -> None:
        if self.outcome.ready():
            return
        if self.stream is not None:
            await self.stream._wait_flushed()
        self.outcome.set(outcome)
        await self.send_chunks.aclose()


# -- requests and responses --------------------------------------------------------


class IncomingRequest:
    """``incoming-request``: what the server received."""

    def __init__(
        self,
        method: str,
        scheme: str | None,
        authority: str | None,
        path_with_query: str,
        headers: Fields,
        body: trio.abc.ReceiveChannel[Any],
    ) -> None:
        self._method = method_variant(method)
        self._scheme = scheme_variant(scheme) if scheme else None
        self._authority = authority
        self._path = path_with_query
        self._headers = headers
        self._body: IncomingBody | None = IncomingBody(body)

    def method(self) -> Variant:
        return self._method

    def path_with_query(self) -> str | None:
        return self._path

    def scheme(self) -> Variant | None:
        return self._scheme

    def authority(self) -> str | None:
        return self._authority

    def headers(self) -> Fields:
        return self._headers

    def consume(self) -> Ok | Err:
        body, self._body = self._body, None
        return Err(None) if body is None else Ok(body)


class OutgoingRequest:
    """``outgoing-request``: a request a guest sends (outgoing-handler)."""

    def __init__(self, headers: Fields) -> None:
        headers.immutable = True
        self._headers = headers
        self._method = Variant("get")
        self._path: str | None = None
        self._scheme: Variant | None = None
        self._authority: str | None = None
        self._body: OutgoingBody | None = None

    def body(self) -> Ok | Err:
        if self._body is not None:
            return Err(None)
        self._body = OutgoingBody()
        return Ok(self._body)

    def method(self) -> Variant:
        return self._method

    def set_method(self, method: Variant) -> Ok | Err:
        self._method = method
        return Ok(None)

    def path_with_query(self) -> str | None:
        return self._path

    def set_path_with_query(self, path_with_query: str | None) -> Ok | Err:
        self._path = path_with_query
        return Ok(None)

    def scheme(self) -> Variant | None:
        return self._scheme

    def set_scheme(self, scheme: Variant | None) -> Ok | Err:
        self._scheme = scheme
        return Ok(None)

    def authority(self) -> str | None:
        return self._authority

    def set_authority(self, authority: str | None) -> Ok | Err:
        self._authority = authority
        return Ok(None)

    def headers(self) -> Fields:
        return self._headers


class RequestOptions:
    """``request-options`` (0.2.0): timeouts in nanoseconds."""

    def __init__(self) -> None:
        self.connect: int | None = None
        self.first_byte: int | None = None
        self.between_bytes: int | None = None

    def connect_timeout(self) -> int | None:
        return self.connect

    def set_connect_timeout(self, duration: int | None) -> Ok:
        self.connect = duration
        return Ok(None)

    def first_byte_timeout(self) -> int | None:
        return self.first_byte

    def set_first_byte_timeout(self, duration: int | None) -> Ok:
        self.first_byte = duration
        return Ok(None)

    def between_bytes_timeout(self) -> int | None:
        return self.between_bytes

    def set_between_bytes_timeout(self, duration: int | None) -> Ok:
        self.between_bytes = duration
        return Ok(None)


class OutgoingResponse:
    """``outgoing-response``: what a handler answers."""

    def __init__(self, headers: Fields) -> None:
        headers.immutable = True
        self._headers = headers
        self.status = 200
        self._body: OutgoingBody | None = None

    def status_code(self) -> int:
        return self.status

    def set_status_code(self, status_code: int) -> Ok | Err:
        if not 100 <= status_code <= 999:
            return Err(None)
        self.status = status_code
        return Ok(None)

    def headers(self) -> Fields:
        return self._headers

    def body(self) -> Ok | Err:
        if self._body is not None:
            return Err(None)
        self._body = OutgoingBody()
        return Ok(self._body)


class ResponseOutparam:
    """``response-outparam``: where the handler puts its response (once)."""

    def __init__(self) -> None:
        self.result = _Ready()

    @staticmethod
    @with_context
    def set(context: HostContext, param: ResponseOutparam, response: Ok | Err) -> None:
        context.start_soon(param._set, response)

    async def _set(self, response: Ok | Err) -> None:
        if not self.result.ready():
            self.result.set(response)


class IncomingResponse:
    """``incoming-response``: the answer to an outgoing request."""

    def __init__(self, status: int, headers: Fields, body: IncomingBody) -> None:
        self._status = status
        self._headers = headers
        self._body: IncomingBody | None = body

    def status(self) -> int:
        return self._status

    def headers(self) -> Fields:
        return self._headers

    def consume(self) -> Ok | Err:
        body, self._body = self._body, None
        return Err(None) if body is None else Ok(body)


class FutureIncomingResponse:
    """``future-incoming-response``: resolved on trio by the outgoing request's task."""

    def __init__(self) -> None:
        self.ready = _Ready()
        self._taken = False

    def subscribe(self) -> Pollable:
        return self.ready.pollable()

    def get(self) -> Any:
        if not self.ready.ready():
            return None
        if self._taken:
            return Some(Err(None))
        self._taken = True
        return Some(Ok(self.ready.value))


class Types02:
    """``wasi:http/types@0.2.0``."""

    Fields = Fields
    IncomingRequest = IncomingRequest
    OutgoingRequest = OutgoingRequest
    RequestOptions = RequestOptions
    ResponseOutparam = ResponseOutparam
    IncomingResponse = IncomingResponse
    IncomingBody = IncomingBody
    FutureTrailers = FutureTrailers
    OutgoingResponse = OutgoingResponse
    OutgoingBody = OutgoingBody
    FutureIncomingResponse = FutureIncomingResponse

    @staticmethod
    def http_error_code(err: IoError) -> Variant | None:
        code = getattr(err, "code", None)
        return code if isinstance(code, Variant) else None


class OutgoingHandler02:
    """``wasi:http/outgoing-handler@0.2.0`` on the shared client."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @with_context
    def handle(
        self, context: HostContext, request: OutgoingRequest, options: RequestOptions | None
    ) -> Ok | Err:
        future = FutureIncomingResponse()
        context.start_soon(self._send, context, request, options, future)
        return Ok(future)

    async def _send(
        self,
        context: HostContext,
        request: OutgoingRequest,
        options: RequestOptions | None,
        future: FutureIncomingResponse,
    ) -> None:
        authority = request.authority()
        if not authority:
            future.ready.set(Err(Variant("HTTP-request-URI-invalid")))
            return
        url = f"{scheme_name(request.scheme())}://{authority}{request.path_with_query() or '/'}"
        body = request._body
        response, error = await self.http.send(
            method_name(request.method()),
            url,
            list(request.headers().pairs),
            body.chunks if body is not None else None,
            connect_timeout=_seconds(options.connect) if options else None,
            first_byte_timeout=_seconds(options.first_byte) if options else None,
            between_bytes_timeout=_seconds(options.between_bytes) if options else None,
        )
        if error is not None:
            future.ready.set(Err(error))
            return
        assert response is not None
        trailers = _Ready()
        send, resolved = trio.open_memory_channel[Any](1)
        chunks = ResponseBody(response, send)
        context.start_soon(_forward_trailers, resolved, trailers)
        headers = Fields.incoming(response.headers.raw)
        incoming = IncomingResponse(response.status_code, headers, IncomingBody(chunks, trailers))
        future.ready.set(Ok(incoming))


async def _forward_trailers(resolved: trio.abc.ReceiveChannel[Any], ready: _Ready) -> None:
    async with resolved:
        try:
            ready.set(await resolved.receive())
        except trio.EndOfChannel:
            ready.set(Ok(None))


def add_to_linker(
    linker: Any, config: ServeConfig, http: HttpClient, wanted: Callable[[str], bool]
) -> None:
    """Define wasi:http 0.2.0 types and outgoing-handler (those ``wanted``)."""
    del config
    if wanted("wasi:http/types@0.2.0"):
        linker.define_interface("wasi:http/types@0.2.0", Types02)
    if wanted("wasi:http/outgoing-handler@0.2.0"):
        linker.define_interface("wasi:http/outgoing-handler@0.2.0", OutgoingHandler02(http))


async def exchange02(
    app: WasiHttpApp,
    scope: Scope,
    send: Send,
    body: trio.MemoryReceiveChannel[bytes],
    pool: InstancePool,
) -> None:
    """Serve one request with a 0.2 ``incoming-handler`` (one per instance at a time)."""
    from ._app import _authority, _handler_failed, _plain, _target, _wire_headers

    request = IncomingRequest(
        scope["method"],
        scope.get("scheme", "http"),
        _authority(scope),
        _target(scope),
        Fields.incoming(scope.get("headers", ())),
        body,
    )
    outparam = ResponseOutparam()
    async with pool.lease() as slot:
        instance = slot.instance
        assert instance is not None

        async def call() -> None:
            try:
                await instance.call(app._export, request, outparam)
            except Trap as exc:
                slot.mark_broken(str(exc))
            finally:
                # A handler that returned without an answer has none to give.
                if not outparam.result.ready():
                    outparam.result.set(None)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await outparam.result.wait()
            result = outparam.result.value
            if result is None:
                await _plain(send, 500, b"internal server error\n")
                return
            if isinstance(result, Err):
                await _handler_failed(scope, send, result.value)
                return
            response = result.value
            assert isinstance(response, OutgoingResponse)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": _wire_headers(response.headers()),
                }
            )
            out = response._body
            if out is not None:
                async with out.chunks:
                    async for chunk in out.chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await out.outcome.wait()
                if isinstance(out.outcome.value, Err):
                    raise RuntimeError(f"the response body failed: {out.outcome.value.value}")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
