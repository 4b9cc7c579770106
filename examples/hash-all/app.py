"""A wasi:http/service@0.3.0 guest: hashes every URL named in ``url`` request headers.

Build (from the repository root):

    componentize-py -d wit -w wasi:http/service@0.3.0 \\
        componentize -p examples/hash-all app -o hash-all.wasm

Serve it, allowing the hosts it may fetch from:

    python -m trio_wasi serve --allow-http example.com hash-all.wasm
    curl -H 'url: http://example.com/' -H 'url: http://example.com/a' localhost:8080

Every ``url`` header's URL is fetched concurrently through wasi:http/client.
The response streams one ``URL: SHA256HEX`` line per URL in the order the
fetches finish, so fast URLs are answered first; a fetch that fails yields
``URL: error DETAIL`` instead. Each body is hashed chunk by chunk as it
arrives and never held whole, whatever the response's status.
"""

import asyncio
import hashlib

import componentize_py_async_support
import wit_world
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import client
from wit_world.imports.wasi_http_types import (
    ErrorCode_HttpRequestUriInvalid,
    ErrorCode_InternalError,
    Fields,
    Request,
    Response,
    Scheme_Http,
    Scheme_Https,
)

CHUNK = 64 * 1024


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        urls = [value.decode("utf-8", "replace") for value in request.get_headers().get("url")]
        body, contents = wit_world.byte_stream()
        trailers_out, trailers = (
            wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
                lambda: Err(ErrorCode_InternalError(None))
            )
        )
        headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
        response, _sent = Response.new(headers, contents, trailers)
        # Each fetch puts its line here when it finishes; one writer drains the
        # queue into the body, so the lines leave in completion order and no
        # two writes to the body stream overlap.
        lines: asyncio.Queue[bytes] = asyncio.Queue()

        async def hash_one(url: str) -> None:
            try:
                digest = await hash_url(url)
                line = f"{url}: {digest}\n"
            except Err as err:
                line = f"{url}: error {err.value!r}\n"
            except Exception as exc:
                line = f"{url}: error {exc!r}\n"
            await lines.put(line.encode())

        async def write() -> None:
            with body:
                for _ in urls:
                    await body.write_all(await lines.get())
            with trailers_out:
                await trailers_out.write(Ok(None))

        for url in urls:
            componentize_py_async_support.spawn(hash_one(url))
        componentize_py_async_support.spawn(write())
        return response


def outgoing_get(url: str) -> Request:
    """A GET request for ``url`` (http or https) with no body and no trailers."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise Err(ErrorCode_HttpRequestUriInvalid())
    authority, slash, path = rest.partition("/")
    trailers_out, trailers = (
        wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Ok(None)
        )
    )
    # The request has no body; closing the writer sends its default (no
    # trailers) in the background.
    trailers_out.__exit__(None, None, None)
    request, _sent = Request.new(Fields(), None, trailers, None)
    request.set_scheme(Scheme_Http() if scheme == "http" else Scheme_Https())
    request.set_authority(authority)
    request.set_path_with_query(slash + path)
    return request


async def hash_url(url: str) -> str:
    """The sha256 hex digest of the body that a GET of ``url`` answers, hashed as it streams."""
    response = await client.send(outgoing_get(url))
    _done_out, done = wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))
    incoming, incoming_trailers = Response.consume_body(response, done)
    digest = hashlib.sha256()
    with incoming:
        while True:
            chunk = await incoming.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    with _done_out:
        await _done_out.write(Ok(None))
    result = await incoming_trailers.read()
    if isinstance(result, Err):
        raise result
    return digest.hexdigest()
