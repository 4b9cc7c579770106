"""A wasi:http/proxy@0.2.0 guest: a greeting, or the request body echoed back.

Build (from the repository root):

    componentize-py -d wit -w wasi:http/proxy@0.2.0 \\
        componentize -p examples/hello_p2 app -o hello_p2.wasm

``GET`` answers with a greeting; ``POST`` streams the request body back
through wasi:io streams, chunk by chunk.
"""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Post,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

GREETING = b"Hello from a wasi:http 0.2 component!\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        out = body.write()
        if isinstance(request.method(), Method_Post):
            incoming = request.consume()
            stream = incoming.stream()
            while True:
                try:
                    chunk = stream.blocking_read(65536)
                except Exception as exc:
                    if isinstance(getattr(exc, "value", None), StreamError_Closed):
                        break
                    raise
                out.blocking_write_and_flush(chunk)
            stream.__exit__(None, None, None)
        else:
            out.blocking_write_and_flush(GREETING)
        out.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
