"""Outgoing requests (``wasi:http/client@0.3.0#send``) on one shared httpx client.

Nothing is reachable unless an allow-list pattern (``HOST[:PORT]``, ``*``
matching any host or port) admits the request's authority; a refusal is the
``HTTP-request-denied`` error code, and is logged. Request and response bodies
stream through chunk by chunk. ``request-options`` timeouts (nanoseconds)
become httpx's connect timeout, the wait for the response head (first byte)
and the read timeout between body chunks.

httpx is imported by the first outgoing request, not at start-up: most
components never send one, and importing it costs a serving worker's cold
start tens of milliseconds.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import trio

from trio_wasi import Err, HostContext, Ok, Variant, with_context

from ._errors import error_code_for
from ._types03 import Fields, Request, Response, discard_future, method_name, scheme_name

if TYPE_CHECKING:
    import httpx

__all__ = ["AllowList", "Client03", "HttpClient"]

log = logging.getLogger("wasi_http")


class AllowList:
    """``HOST[:PORT]`` patterns an outgoing request's authority must match.

    A malformed pattern (no host, a bad port, an unbracketed IPv6 address)
    is a ``ValueError`` naming it.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.rules: list[tuple[str, str]] = []
        for pattern in patterns:
            host, port = _split_authority(pattern)
            self.rules.append((host.lower(), port or "*"))

    def allows(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        return any(
            fnmatch.fnmatchcase(host, h.strip("[]")) and (p == "*" or p == str(port))
            for h, p in self.rules
        )


def _split_authority(authority: str) -> tuple[str, str | None]:
    """``HOST[:PORT]`` split in two; ``ValueError`` naming a pattern that can match nothing.

    Left unchecked, a typo (``example.com:80:80``, an empty pattern, a port
    past 65535) would silently refuse every request it was meant to admit.
    """
    host, port = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError(f"pattern {authority!r}: `[` without `]`")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"pattern {authority!r}: expected `:PORT` after `]`")
        port = rest[1:] if rest else None
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
        if ":" in host:
            raise ValueError(f"pattern {authority!r}: an IPv6 host goes in brackets ([::1]:80)")
    if not host.strip("[]"):
        raise ValueError(f"pattern {authority!r}: no host (`*` matches any)")
    if port is not None and port != "*" and not (port.isdigit() and int(port) <= 65535):
        raise ValueError(f"pattern {authority!r}: the port must be `*` or a number up to 65535")
    return host, port


class HttpClient:
    """The per-worker outgoing side: one ``httpx.AsyncClient`` and the allow-list."""

    def __init__(self, allow: Sequence[str]) -> None:
        self.allow = AllowList(allow)
        # Made by the first request while running (see the module docstring).
        self.client: httpx.AsyncClient | None = None
        self.running = False

    async def __aenter__(self) -> HttpClient:
        self.running = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.running = False
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            import httpx

            self.client = httpx.AsyncClient(timeout=None, follow_redirects=False, trust_env=False)
        return self.client

    def check(self, url: httpx.URL) -> Variant | None:
        """``None`` when ``url`` may be reached, else the error code refusing it."""
        port = url.port or (443 if url.scheme == "https" else 80)
        if not self.allow.allows(url.host, port):
            log.warning("outgoing request to %s:%s denied (not in --allow-http)", url.host, port)
            return Variant("HTTP-request-denied")
        return None

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, bytes]],
        body: trio.abc.ReceiveChannel[Any] | None,
        *,
        connect_timeout: float | None = None,
        first_byte_timeout: float | None = None,
        between_bytes_timeout: float | None = None,
    ) -> tuple[httpx.Response, None] | tuple[None, Variant]:
        """Send a request; the response is open for streaming (close it when done)."""
        if not self.running:
            return None, Variant("internal-error", "the HTTP client is not running")
        import httpx

        client = self._client()
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            return None, Variant("HTTP-request-URI-invalid")
        refused = self.check(target)
        if refused is not None:
            return None, refused
        content = _chunks(body) if body is not None else None
        timeout = httpx.Timeout(
            None, connect=connect_timeout, read=between_bytes_timeout, pool=connect_timeout
        )
        request = client.build_request(
            method,
            target,
            headers=[(n.encode("latin-1"), v) for n, v in headers],
            content=content,
            timeout=timeout,
        )
        try:
            with trio.fail_after(first_byte_timeout) if first_byte_timeout else _nothing():
                response = await client.send(request, stream=True)
        except trio.TooSlowError:
            return None, Variant("HTTP-response-timeout")
        except (httpx.HTTPError, OSError) as exc:
            return None, error_code_for(exc)
        return response, None


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _chunks(body: trio.abc.ReceiveChannel[Any]) -> AsyncIterator[bytes]:
    async with body:
        async for chunk in body:
            yield bytes(chunk)


class ResponseBody(trio.abc.ReceiveChannel[bytes]):
    """An httpx streaming response body as a channel of chunks; resolves the trailers."""

    def __init__(self, response: httpx.Response, trailers: trio.MemorySendChannel[Any]) -> None:
        self._response = response
        self._chunks = response.aiter_raw()
        self._trailers = trailers

    async def receive(self) -> bytes:
        import httpx  # already loaded: the response came from it

        while True:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._finish(Ok(None))
                await self._response.aclose()
                raise trio.EndOfChannel from None
            except (httpx.HTTPError, OSError) as exc:
                self._finish(Err(error_code_for(exc)))
                await self._response.aclose()
                raise trio.EndOfChannel from None
            if chunk:
                return chunk

    def _finish(self, value: Any) -> None:
        try:
            self._trailers.send_nowait(value)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._trailers.close()

    async def aclose(self) -> None:
        self._finish(Err(Variant("HTTP-response-incomplete")))
        await self._response.aclose()


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


class Client03:
    """``wasi:http/client@0.3.0``."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @with_context
    async def send(self, context: HostContext, request: Request) -> Ok | Err:
        authority = request.authority
        if authority is None:
            host = request.headers.values("host")
            authority = host[0].decode("latin-1") if host else None
        if not authority:
            return Err(Variant("HTTP-request-URI-invalid"))
        url = f"{scheme_name(request.scheme)}://{authority}{request.path_with_query or '/'}"
        options = request.options
        body, trailers = request.take_body()
        # The request's trailers are read (a guest's writer waits for that)
        # but not sent: httpx sends none.
        context.start_soon(discard_future, trailers)
        response, error = await self.http.send(
            method_name(request.method),
            url,
            request.headers.copy_all(),
            body,
            connect_timeout=_seconds(options.connect_timeout) if options else None,
            first_byte_timeout=_seconds(options.first_byte_timeout) if options else None,
            between_bytes_timeout=_seconds(options.between_bytes_timeout) if options else None,
        )
        if error is not None:
            request.finish(Err(error))
            await body.aclose()
            return Err(error)
        assert response is not None
        request.finish(Ok(None))
        send, trailers = trio.open_memory_channel[Any](1)
        headers = Fields.incoming(response.headers.raw)
        return Ok(
            Response.incoming(response.status_code, headers, ResponseBody(response, send), trailers)
        )
