"""A wasi:http/service@0.3.0 guest: answers every request with a greeting.

Build (from the repository root):

    componentize-py -d wit -w wasi:http/service@0.3.0 \\
        componentize -p examples/hello app -o hello.wasm

Serve it:

    python -m trio_wasi serve hello.wasm

Four more paths exist for the tests: ``/trap`` makes the guest trap,
``/trailers`` sends the greeting followed by a trailer field,
``/sleep`` waits ten seconds on wasi:clocks before answering, and ``/fetch``
sends a GET to the URL in the request's ``url`` header (wasi:http/client)
and streams that response's body back.
"""

import componentize_py_async_support
import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import client, monotonic_clock
from wit_world.imports.wasi_http_types import (
    ErrorCode_HttpRequestUriInvalid,
    ErrorCode_InternalError,
    Fields,
    Request,
    Response,
    Scheme_Http,
    Scheme_Https,
)

GREETING = b"Hello from a wasi:http 0.3 component!\n"


def text_response(data: bytes, trailer_list: list[tuple[str, bytes]] | None = None) -> Response:
    """A 200 response whose body and trailers are written after it is returned.

    Trailers are announced in a ``trailer`` header, as HTTP asks of a sender.
    """
    body, contents = wit_world.byte_stream()
    trailers_out, trailers = (
        wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Err(ErrorCode_InternalError(None))
        )
    )
    head = [("content-type", b"text/plain; charset=utf-8")]
    if trailer_list:
        head.append(("trailer", b", ".join(name.encode() for name, _ in trailer_list)))
    response, _sent = Response.new(Fields.from_list(head), contents, trailers)

    async def write() -> None:
        with body:
            await body.write_all(data)
        with trailers_out:
            await trailers_out.write(Ok(Fields.from_list(trailer_list) if trailer_list else None))

    componentize_py_async_support.spawn(write())
    return response


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        path = request.get_path_with_query() or "/"
        if path == "/trap":
            raise RuntimeError("the /trap path traps the instance")
        if path == "/sleep":
            await monotonic_clock.wait_for(10_000_000_000)
            return text_response(b"slept\n")
        if path == "/fetch":
            return await fetch(request)
        if path == "/trailers":
            return text_response(GREETING, [("x-greeting-length", str(len(GREETING)).encode())])
        return text_response(GREETING)


async def fetch(request: Request) -> Response:
    """GET the ``url`` header's URL and answer with its status and streamed body."""
    urls = request.get_headers().get("url")
    if not urls:
        raise Err(ErrorCode_HttpRequestUriInvalid())
    url = urls[0].decode()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise Err(ErrorCode_HttpRequestUriInvalid())
    authority, slash, path = rest.partition("/")
    _trailers_out, trailers = (
        wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Ok(None)
        )
    )
    outgoing, _sent = Request.new(Fields(), None, trailers, None)
    outgoing.set_scheme(Scheme_Http() if scheme == "http" else Scheme_Https())
    outgoing.set_authority(authority)
    outgoing.set_path_with_query(slash + path)

    async def no_trailers() -> None:
        with _trailers_out:
            await _trailers_out.write(Ok(None))

    componentize_py_async_support.spawn(no_trailers())
    fetched = await client.send(outgoing)
    status = fetched.get_status_code()
    _done_out, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
    body, body_trailers = Response.consume_body(fetched, done)
    response, _ = Response.new(Fields(), body, body_trailers)
    response.set_status_code(status)
    return response
