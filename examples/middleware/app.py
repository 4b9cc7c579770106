"""A wasi:http/middleware@0.3.0 guest: deflate content coding in front of another handler.

Build (from the repository root), then compose it with a service that it
forwards to (here the echo example):

    componentize-py -d wit -w wasi:http/middleware@0.3.0 \\
        componentize -p examples/middleware app -o middleware.wasm
    wasm-tools compose middleware.wasm -d echo.wasm -o middleware-echo.wasm
    python -m trio_wasi serve middleware-echo.wasm

The guest exports ``wasi:http/handler`` and imports it: every request goes on
to the imported handler. A request body with ``content-encoding: deflate`` is
inflated on its way in; a response is deflated on its way out when the
request's ``accept-encoding`` lists deflate (and the response is not already
content-coded). Both directions stream chunk by chunk through zlib; no body is
held whole. Trailers pass through unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import componentize_py_async_support
import wit_world
from componentize_py_async_support.futures import FutureReader, FutureWriter
from componentize_py_async_support.streams import ByteStreamReader
from componentize_py_types import Err, Ok, Result
from wit_world import exports
from wit_world.imports import handler
from wit_world.imports.wasi_http_types import (
    ErrorCode,
    ErrorCode_InternalError,
    Fields,
    Request,
    Response,
)

CHUNK = 64 * 1024
# Headers that describe the bytes of a body, which change when it is re-coded.
CODING_HEADERS = ("content-encoding", "content-length")


def accepts_deflate(values: list[bytes]) -> bool:
    """Whether ``accept-encoding`` values admit deflate (RFC 9110 section 12.5.3).

    An explicit ``deflate`` entry decides by its quality; otherwise a ``*``
    entry does; a quality of 0 means "not acceptable".
    """
    qualities: dict[str, float] = {}
    for value in values:
        for item in value.decode("latin-1").split(","):
            coding, *params = (part.strip() for part in item.split(";"))
            quality = 1.0
            for param in params:
                name, _, number = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        quality = float(number)
                    except ValueError:
                        quality = 0.0
            qualities[coding.lower()] = quality
    for coding in ("deflate", "*"):
        if coding in qualities:
            return qualities[coding] > 0
    return False


class Inflate:
    """Inflates a zlib-wrapped deflate stream, at most ``CHUNK`` output bytes per step."""

    def __init__(self) -> None:
        self.inflater = zlib.decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        # Bounding each step's output keeps a small, highly compressed input
        # from expanding into one huge buffer.
        while data:
            out = self.inflater.decompress(data, CHUNK)
            data = self.inflater.unconsumed_tail
            if out:
                yield out

    def finish(self) -> Iterator[bytes]:
        tail = self.inflater.flush()
        if tail:
            yield tail
        if not self.inflater.eof:
            raise zlib.error("the deflate stream ended early")


class Deflate:
    """Deflates into a zlib-wrapped stream, flushed after every chunk."""

    def __init__(self) -> None:
        self.deflater = zlib.compressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        # A sync flush per chunk lets the client inflate what has been produced
        # so far, so a response that streams (hash-all's lines, an echo) still
        # streams once compressed, at some cost in ratio.
        yield self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> Iterator[bytes]:
        yield self.deflater.flush()


def recoded(
    body: ByteStreamReader,
    trailers: FutureReader[Result[Fields | None, ErrorCode]],
    done: FutureWriter[Result[None, ErrorCode]],
    coder: Inflate | Deflate,
) -> tuple[ByteStreamReader, FutureReader[Result[Fields | None, ErrorCode]]]:
    """A new body stream carrying ``body`` passed through ``coder``, and its trailers.

    A spawned task pumps chunks through the coder as they arrive, reports the
    end of the source body on ``done``, then forwards the source's trailers. A
    deflate stream that fails to inflate ends the new body with an error
    instead of trailers.
    """
    out, contents = wit_world.byte_stream()
    trailers_out, new_trailers = (
        wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Err(ErrorCode_InternalError(None))
        )
    )

    async def pump() -> None:
        failure: ErrorCode | None = None
        with body, out:
            try:
                while True:
                    chunk = await body.read(CHUNK)
                    if not chunk:
                        break
                    for data in coder.feed(chunk):
                        await out.write_all(data)
                for data in coder.finish():
                    await out.write_all(data)
            except zlib.error as exc:
                failure = ErrorCode_InternalError(f"deflate: {exc}")
        with done:
            await done.write(Ok(None) if failure is None else Err(failure))
        result = await trailers.read()
        with trailers_out:
            await trailers_out.write(Err(failure) if failure is not None else result)

    componentize_py_async_support.spawn(pump())
    return contents, new_trailers


def without_coding(fields: Fields) -> Fields:
    return Fields.from_list(
        [(n, v) for n, v in fields.copy_all() if n.lower() not in CODING_HEADERS]
    )


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        headers = request.get_headers()
        wants_deflate = accepts_deflate(headers.get("accept-encoding"))
        codings = [v.decode("latin-1").strip().lower() for v in headers.get("content-encoding")]
        if codings == ["deflate"]:
            request = inflate_request(request)
        response = await handler.handle(request)
        status = response.get_status_code()
        # 204 and 304 responses have no body to code.
        if (
            not wants_deflate
            or status in (204, 304)
            or response.get_headers().has("content-encoding")
        ):
            return response
        return deflate_response(response)


def inflate_request(request: Request) -> Request:
    """The same request with its deflate-coded body inflated as it streams."""
    headers = without_coding(request.get_headers())
    method = request.get_method()
    scheme = request.get_scheme()
    authority = request.get_authority()
    path = request.get_path_with_query()
    options = request.get_options()
    done_out, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
    body, trailers = Request.consume_body(request, done)
    contents, new_trailers = recoded(body, trailers, done_out, Inflate())
    forwarded, _sent = Request.new(headers, contents, new_trailers, options)
    forwarded.set_method(method)
    forwarded.set_scheme(scheme)
    forwarded.set_authority(authority)
    forwarded.set_path_with_query(path)
    return forwarded


def deflate_response(response: Response) -> Response:
    """The same response with its body deflated as it streams."""
    headers = without_coding(response.get_headers())
    headers.append("content-encoding", b"deflate")
    status = response.get_status_code()
    done_out, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
    body, trailers = Response.consume_body(response, done)
    contents, new_trailers = recoded(body, trailers, done_out, Deflate())
    coded, _sent = Response.new(headers, contents, new_trailers)
    coded.set_status_code(status)
    return coded
