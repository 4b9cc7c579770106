"""A wasi:http/service@0.3.0 guest: answers every request with a greeting.

Build (from the repository root):

    componentize-py -d wit -w wasi:http/service@0.3.0 componentize -p examples/hello app -o hello.wasm

Serve it:

    python -m trio_wasi serve hello.wasm

Two extra paths exist for the tests: ``/trap`` makes the guest trap, and
``/sleep`` waits ten seconds on wasi:clocks before answering.
"""

import componentize_py_async_support
import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import monotonic_clock
from wit_world.imports.wasi_http_types import ErrorCode_InternalError, Fields, Request, Response

GREETING = b"Hello from a wasi:http 0.3 component!\n"


def text_response(data: bytes) -> Response:
    """A 200 response whose body and trailers are written after it is returned."""
    body, contents = wit_world.byte_stream()
    trailers_out, trailers = (
        wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Err(ErrorCode_InternalError(None))
        )
    )
    headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
    response, _sent = Response.new(headers, contents, trailers)

    async def write() -> None:
        with body:
            await body.write_all(data)
        with trailers_out:
            await trailers_out.write(Ok(None))

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
        return text_response(GREETING)
