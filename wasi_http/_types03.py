"""wasi:http/types@0.3.0 on trio channels.

Bodies are ``stream<u8>`` and trailers ``future<result<option<trailers>,
error-code>>``; their host ends are trio channels (see the runtime's value
mapping). A message made by the host (an incoming request, a response to an
outgoing request) holds a :class:`~trio.abc.ReceiveChannel` of body chunks and
one of its trailers result; a message made by a guest (``new``) holds the
guest's :class:`~trio_wasi.StreamReceiver` and
:class:`~trio_wasi.FutureReceiver`. ``consume-body`` hands either kind on
without reading it, so bodies pass through chunk by chunk, never whole.

Each message made with ``new`` returns a future the host resolves when it has
sent (or failed to send) the message: :meth:`Message.finish`.
"""

from __future__ import annotations

from typing import Any

import trio

from trio_wasi import (
    Err,
    FutureReceiver,
    HostContext,
    Ok,
    StreamReceiver,
    Variant,
    with_context,
)

from ._fields import FieldsFace, header_result

__all__ = [
    "Fields",
    "Message",
    "Request",
    "RequestOptions",
    "Response",
    "Types",
    "empty_trailers",
    "future_of",
]


def future_of(value: Any) -> trio.MemoryReceiveChannel[Any]:
    """A host ``future<T>`` already resolved to ``value``."""
    send, receive = trio.open_memory_channel[Any](1)
    send.send_nowait(value)
    send.close()
    return receive


def empty_trailers() -> trio.MemoryReceiveChannel[Any]:
    """The trailers future of a message without trailers."""
    return future_of(Ok(None))


class Fields(FieldsFace):
    """``fields`` (0.3.0)."""

    def get_and_delete(self, name: str) -> Ok | Err:
        return header_result(self.remove, name)

    def copy_all(self) -> list[tuple[str, bytes]]:
        return list(self.pairs)


class RequestOptions:
    """``request-options``: timeouts in nanoseconds; immutable once attached to a request."""

    def __init__(self) -> None:
        self.connect_timeout: int | None = None
        self.first_byte_timeout: int | None = None
        self.between_bytes_timeout: int | None = None
        self.immutable = False

    def _set(self, attr: str, value: int | None) -> Ok | Err:
        if self.immutable:
            return Err(Variant("immutable", None))
        setattr(self, attr, value)
        return Ok(None)

    def get_connect_timeout(self) -> int | None:
        return self.connect_timeout

    def set_connect_timeout(self, duration: int | None) -> Ok | Err:
        return self._set("connect_timeout", duration)

    def get_first_byte_timeout(self) -> int | None:
        return self.first_byte_timeout

    def set_first_byte_timeout(self, duration: int | None) -> Ok | Err:
        return self._set("first_byte_timeout", duration)

    def get_between_bytes_timeout(self) -> int | None:
        return self.between_bytes_timeout

    def set_between_bytes_timeout(self, duration: int | None) -> Ok | Err:
        return self._set("between_bytes_timeout", duration)

    def clone(self) -> RequestOptions:
        out = RequestOptions()
        out.connect_timeout = self.connect_timeout
        out.first_byte_timeout = self.first_byte_timeout
        out.between_bytes_timeout = self.between_bytes_timeout
        return out


class Message:
    """What requests and responses share: headers, a body stream, a trailers future."""

    headers: Fields
    contents: trio.abc.ReceiveChannel[Any] | None
    # None: no trailers (the future resolves to ``ok(none)``), made only if
    # the body is taken: most requests a handler serves never read theirs.
    trailers: trio.abc.ReceiveChannel[Any] | None
    _result: trio.MemorySendChannel[Any] | None

    def _init_message(
        self,
        headers: Fields,
        contents: trio.abc.ReceiveChannel[Any] | None,
        trailers: trio.abc.ReceiveChannel[Any],
    ) -> trio.MemoryReceiveChannel[Any]:
        self._init_incoming(headers, contents, trailers)
        # Not ``open_memory_channel[Any]``: subscripting builds a typing alias per call.
        send: trio.MemorySendChannel[Any]
        receive: trio.MemoryReceiveChannel[Any]
        send, receive = trio.open_memory_channel(1)
        self._result = send
        return receive

    def _init_incoming(
        self,
        headers: Fields,
        contents: trio.abc.ReceiveChannel[Any] | None,
        trailers: trio.abc.ReceiveChannel[Any] | None,
    ) -> None:
        # A message from the network: nobody waits for it to be sent, so it
        # has no future for that (finish does nothing).
        headers.immutable = True
        self.headers = headers
        self.contents = contents
        self.trailers = trailers
        self.consumed = False
        self._result = None

    def finish(self, result: Ok | Err) -> None:
        """Resolve the future ``new`` returned: the message was sent, or why not."""
        if self._result is not None:
            try:
                self._result.send_nowait(result)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            self._result.close()
            self._result = None

    def take_body(self) -> tuple[trio.abc.ReceiveChannel[Any], trio.abc.ReceiveChannel[Any]]:
        """The body stream (empty if none) and trailers future, once."""
        if self.consumed:
            raise RuntimeError("the body was already consumed")
        self.consumed = True
        contents = self.contents
        if contents is None:
            send, contents = trio.open_memory_channel[bytes](0)
            send.close()
        trailers = self.trailers
        if trailers is None:
            trailers = empty_trailers()
        return contents, trailers

    def get_headers(self) -> Fields:
        # The resource stays immutable however the guest reaches it (the
        # message owns it; the guest gets a handle to the same object).
        return self.headers

    def close(self) -> None:
        # A guest dropped the message without sending it.
        self.finish(Err(Variant("internal-error", "the message was dropped unsent")))


def _consume(
    context: HostContext, this: Message, res: trio.abc.ReceiveChannel[Any]
) -> tuple[trio.abc.ReceiveChannel[Any], trio.abc.ReceiveChannel[Any]]:
    # ``res`` is the consumer's report on how it fared with the body. The
    # host's own bodies do not need it, but it is read, so that a guest
    # writing it is not kept waiting.
    contents, trailers = this.take_body()
    context.start_soon(discard_future, res)
    return contents, trailers


async def discard_future(future: trio.abc.ReceiveChannel[Any]) -> None:
    """Read a future's value (so its writer completes) and drop it."""
    async with future:
        try:
            await future.receive()
        except trio.EndOfChannel:
            pass


class Request(Message):
    """``request``: method, target, headers, body and options."""

    def __init__(self) -> None:
        self.method: Variant = _GET
        self.path_with_query: str | None = None
        self.scheme: Variant | None = None
        self.authority: str | None = None
        self.options: RequestOptions | None = None

    @staticmethod
    def new(
        headers: Fields,
        contents: trio.abc.ReceiveChannel[Any] | None,
        trailers: trio.abc.ReceiveChannel[Any],
        options: RequestOptions | None,
    ) -> tuple[Request, trio.abc.ReceiveChannel[Any]]:
        request = Request()
        done = request._init_message(headers, contents, trailers)
        if options is not None:
            options.immutable = True
        request.options = options
        return request, done

    @classmethod
    def incoming(
        cls,
        method: str,
        scheme: str | None,
        authority: str | None,
        path_with_query: str,
        headers: Fields,
        contents: trio.abc.ReceiveChannel[Any] | None,
        trailers: trio.abc.ReceiveChannel[Any] | None,
    ) -> Request:
        """A request from the network, as the host hands it to a handler.

        ``contents`` None is an empty body, ``trailers`` None no trailers.
        """
        request = cls()
        request._init_incoming(headers, contents, trailers)
        request.method = method_variant(method)
        request.scheme = scheme_variant(scheme) if scheme is not None else None
        request.authority = authority
        request.path_with_query = path_with_query
        return request

    def get_method(self) -> Variant:
        return self.method

    def set_method(self, method: Variant) -> Ok | Err:
        if method.case == "other" and not _token(method.value):
            return Err(None)
        self.method = method
        return Ok(None)

    def get_path_with_query(self) -> str | None:
        return self.path_with_query

    def set_path_with_query(self, path_with_query: str | None) -> Ok | Err:
        if path_with_query is not None and not _visible(path_with_query):
            return Err(None)
        self.path_with_query = path_with_query
        return Ok(None)

    def get_scheme(self) -> Variant | None:
        return self.scheme

    def set_scheme(self, scheme: Variant | None) -> Ok | Err:
        if scheme is not None and scheme.case == "other" and not _scheme_ok(scheme.value):
            return Err(None)
        self.scheme = scheme
        return Ok(None)

    def get_authority(self) -> str | None:
        return self.authority

    def set_authority(self, authority: str | None) -> Ok | Err:
        if authority is not None and (not _visible(authority) or "/" in authority):
            return Err(None)
        self.authority = authority
        return Ok(None)

    def get_options(self) -> RequestOptions | None:
        return self.options

    @staticmethod
    @with_context
    def consume_body(
        context: HostContext, this: Request, res: trio.abc.ReceiveChannel[Any]
    ) -> tuple[trio.abc.ReceiveChannel[Any], trio.abc.ReceiveChannel[Any]]:
        return _consume(context, this, res)


class Response(Message):
    """``response``: status, headers, body."""

    def __init__(self) -> None:
        self.status = 200

    @staticmethod
    def new(
        headers: Fields,
        contents: trio.abc.ReceiveChannel[Any] | None,
        trailers: trio.abc.ReceiveChannel[Any],
    ) -> tuple[Response, trio.abc.ReceiveChannel[Any]]:
        response = Response()
        done = response._init_message(headers, contents, trailers)
        # The host will send this response: start taking its body and
        # trailers on the store thread now (this runs there), so what the
        # guest writes right after returning it reaches the trio side with
        # the response itself instead of a round trip per read.
        if isinstance(trailers, FutureReceiver):
            trailers.prefetch()
        if isinstance(contents, StreamReceiver):
            contents.lookahead = True
            contents.read_ahead()
        return response, done

    @classmethod
    def incoming(
        cls,
        status: int,
        headers: Fields,
        contents: trio.abc.ReceiveChannel[Any] | None,
        trailers: trio.abc.ReceiveChannel[Any],
    ) -> Response:
        """A response from the network (to an outgoing request)."""
        response = cls()
        response._init_incoming(headers, contents, trailers)
        response.status = status
        return response

    def get_status_code(self) -> int:
        return self.status

    def set_status_code(self, status_code: int) -> Ok | Err:
        if not 100 <= status_code <= 999:
            return Err(None)
        self.status = status_code
        return Ok(None)

    @staticmethod
    @with_context
    def consume_body(
        context: HostContext, this: Response, res: trio.abc.ReceiveChannel[Any]
    ) -> tuple[trio.abc.ReceiveChannel[Any], trio.abc.ReceiveChannel[Any]]:
        return _consume(context, this, res)


class Types:
    """The ``wasi:http/types@0.3.0`` interface: its resources."""

    Fields = Fields
    Request = Request
    RequestOptions = RequestOptions
    Response = Response


# -- methods and schemes ------------------------------------------------------

_METHODS = ("get", "head", "post", "put", "delete", "connect", "options", "trace", "patch")


# The cases without payload, made once (variants are immutable values).
_METHOD_VARIANTS = {m.upper(): Variant(m) for m in _METHODS}
_GET = _METHOD_VARIANTS["GET"]
_HTTP = Variant("HTTP")
_HTTPS = Variant("HTTPS")


def method_variant(method: str) -> Variant:
    """The ``method`` case for an HTTP method name."""
    known = _METHOD_VARIANTS.get(method)  # (names in upper case only)
    if known is not None:
        return known
    return Variant("other", method)


def method_name(method: Variant) -> str:
    """The HTTP method name of a ``method`` value."""
    return str(method.value) if method.case == "other" else method.case.upper()


def scheme_variant(scheme: str) -> Variant:
    lower = scheme.lower()
    if lower == "http":
        return _HTTP
    if lower == "https":
        return _HTTPS
    return Variant("other", scheme)


def scheme_name(scheme: Variant | None) -> str:
    if scheme is None or scheme.case == "HTTP":
        return "http"
    if scheme.case == "HTTPS":
        return "https"
    return str(scheme.value)


def _token(text: Any) -> bool:
    from ._fields import valid_name

    return isinstance(text, str) and valid_name(text)


def _visible(text: str) -> bool:
    return text.isascii() and all(0x21 <= ord(c) <= 0x7E for c in text)


def _scheme_ok(text: Any) -> bool:
    return (
        isinstance(text, str)
        and bool(text)
        and text[0].isascii()
        and text[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "+-.") for c in text)
    )
