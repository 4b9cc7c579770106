"""A wasi:http/proxy@0.2.0 guest: forwards each request to the URL in its ``url`` header.

Build (from the repository root):

    componentize-py -d wit -w wasi:http/proxy@0.2.0 \\
        componentize -p examples/fetch_p2 app -o fetch_p2.wasm

Serve it, allowing the hosts it may reach:

    python -m trio_wasi serve --allow-http example.com fetch_p2.wasm
    curl -H 'url: http://example.com/' localhost:8080

The request's method and body go out through wasi:http/outgoing-handler
(the body streamed chunk by chunk over wasi:io streams); the upstream's status,
content-type and body come back the same way. A failed outgoing request is
answered with 502 and the error code as text.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import InputStream, OutputStream, StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
)

CHUNK = 64 * 1024
# blocking-write-and-flush takes at most 4096 bytes a call.
WRITE_LIMIT = 4096


def copy(source: InputStream, sink: OutputStream) -> None:
    """Copy ``source`` to ``sink`` until the source closes, one chunk at a time."""
    while True:
        try:
            chunk = source.blocking_read(CHUNK)
        except Err as err:
            if isinstance(err.value, StreamError_Closed):
                return
            raise
        for start in range(0, len(chunk), WRITE_LIMIT):
            sink.blocking_write_and_flush(chunk[start : start + WRITE_LIMIT])


def answer(response_out: ResponseOutparam, status: int, text: bytes) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with body.write() as out:
        out.blocking_write_and_flush(text)
    OutgoingBody.finish(body, None)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        urls = request.headers().get("url")
        if not urls:
            answer(response_out, 400, b"no url header\n")
            return
        scheme, sep, rest = urls[0].decode().partition("://")
        if not sep or scheme not in ("http", "https"):
            answer(response_out, 400, b"the url must be http or https\n")
            return
        authority, slash, path = rest.partition("/")

        outgoing = OutgoingRequest(Fields())
        outgoing.set_method(request.method())
        outgoing.set_scheme(Scheme_Http() if scheme == "http" else Scheme_Https())
        outgoing.set_authority(authority)
        outgoing.set_path_with_query(slash + path)
        outgoing_body = outgoing.body()
        pending = outgoing_handler.handle(outgoing, None)
        # The request body streams out while the host sends the request.
        incoming_body = request.consume()
        with incoming_body.stream() as source, outgoing_body.write() as sink:
            copy(source, sink)
        OutgoingBody.finish(outgoing_body, None)

        with pending.subscribe() as ready:
            ready.block()
        result = pending.get()
        assert result is not None and isinstance(result, Ok)
        if isinstance(result.value, Err):
            answer(response_out, 502, f"{result.value.value!r}\n".encode())
            return
        upstream = result.value.value
        content_type = upstream.headers().get("content-type")
        response = OutgoingResponse(Fields.from_list([("content-type", v) for v in content_type]))
        response.set_status_code(upstream.status())
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        upstream_body = upstream.consume()
        with upstream_body.stream() as source, body.write() as sink:
            copy(source, sink)
        OutgoingBody.finish(body, None)
