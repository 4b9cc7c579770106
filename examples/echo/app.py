"""A wasi:http/service@0.3.0 guest: streams the request body back as the response body.

Build (from the repository root):

    componentize-py -d wit -w wasi:http/service@0.3.0 \\
        componentize -p examples/echo app -o echo.wasm

The body is copied chunk by chunk as it arrives, never held whole; the
request's trailers become the response's trailers.
"""

import componentize_py_async_support
import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.wasi_http_types import ErrorCode_InternalError, Fields, Request, Response

CHUNK = 64 * 1024


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        content_type = request.get_headers().get("content-type")
        _done_out, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
        incoming, incoming_trailers = Request.consume_body(request, done)
        body, contents = wit_world.byte_stream()
        trailers_out, trailers = (
            wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
                lambda: Err(ErrorCode_InternalError(None))
            )
        )
        headers = Fields.from_list([("content-type", v) for v in content_type])
        response, _sent = Response.new(headers, contents, trailers)

        async def pump() -> None:
            with incoming, body:
                while True:
                    chunk = await incoming.read(CHUNK)
                    if not chunk:
                        break
                    await body.write_all(chunk)
            with _done_out:
                await _done_out.write(Ok(None))
            result = await incoming_trailers.read()
            with trailers_out:
                await trailers_out.write(result)

        componentize_py_async_support.spawn(pump())
        return response
