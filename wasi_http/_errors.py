"""The ``error-code`` variant both ways: host failures to codes, codes to HTTP statuses."""

from __future__ import annotations

from typing import Any

from trio_wasi import Variant

__all__ = ["ERROR_CASES", "describe", "error_code_for", "status_for"]

#: Every case of ``error-code`` (0.3.0 and 0.2.0 share them).
ERROR_CASES = (
    "DNS-timeout",
    "DNS-error",
    "destination-not-found",
    "destination-unavailable",
    "destination-IP-prohibited",
    "destination-IP-unroutable",
    "connection-refused",
    "connection-terminated",
    "connection-timeout",
    "connection-read-timeout",
    "connection-write-timeout",
    "connection-limit-reached",
    "TLS-protocol-error",
    "TLS-certificate-error",
    "TLS-alert-received",
    "HTTP-request-denied",
    "HTTP-request-length-required",
    "HTTP-request-body-size",
    "HTTP-request-method-invalid",
    "HTTP-request-URI-invalid",
    "HTTP-request-URI-too-long",
    "HTTP-request-header-section-size",
    "HTTP-request-header-size",
    "HTTP-request-trailer-section-size",
    "HTTP-request-trailer-size",
    "HTTP-response-incomplete",
    "HTTP-response-header-section-size",
    "HTTP-response-header-size",
    "HTTP-response-body-size",
    "HTTP-response-trailer-section-size",
    "HTTP-response-trailer-size",
    "HTTP-response-transfer-coding",
    "HTTP-response-content-coding",
    "HTTP-response-timeout",
    "HTTP-upgrade-failed",
    "HTTP-protocol-error",
    "loop-detected",
    "configuration-error",
    "internal-error",
)

# The status a server answers with when a handler fails with a code.
_STATUS = {
    "HTTP-request-denied": 403,
    "HTTP-request-length-required": 411,
    "HTTP-request-body-size": 413,
    "HTTP-request-method-invalid": 405,
    "HTTP-request-URI-invalid": 400,
    "HTTP-request-URI-too-long": 414,
    "HTTP-request-header-section-size": 431,
    "HTTP-request-header-size": 431,
    "HTTP-request-trailer-section-size": 431,
    "HTTP-request-trailer-size": 431,
    "loop-detected": 508,
    "internal-error": 500,
    "configuration-error": 500,
}
_GATEWAY_TIMEOUT = {
    "DNS-timeout",
    "connection-timeout",
    "connection-read-timeout",
    "connection-write-timeout",
    "HTTP-response-timeout",
}


def status_for(code: Variant) -> int:
    """The HTTP status a server answers when a handler returns ``err(code)``.

    Request problems are the client's (4xx), timeouts reaching elsewhere are
    504, other failures reaching elsewhere 502, the rest 500.
    """
    if code.case in _STATUS:
        return _STATUS[code.case]
    if code.case in _GATEWAY_TIMEOUT:
        return 504
    if code.case.startswith(("DNS-", "destination-", "connection-", "TLS-", "HTTP-response")):
        return 502
    return 500


def describe(code: Any) -> str:
    """One line naming an error code and its payload, for logs and error bodies."""
    if isinstance(code, Variant):
        return code.case if code.value is None else f"{code.case}: {code.value}"
    return repr(code)


def error_code_for(exc: BaseException) -> Variant:
    """The ``error-code`` for a failure of an outgoing request (httpx or OS)."""
    # Imported here: only outgoing requests need httpx (see _client).
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return Variant("connection-timeout")
    if isinstance(exc, httpx.ReadTimeout):
        return Variant("connection-read-timeout")
    if isinstance(exc, httpx.WriteTimeout):
        return Variant("connection-write-timeout")
    if isinstance(exc, httpx.PoolTimeout):
        return Variant("connection-limit-reached")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            return Variant("destination-not-found")
        return Variant("connection-refused")
    if isinstance(exc, httpx.RemoteProtocolError):
        return Variant("HTTP-protocol-error")
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return Variant("connection-terminated")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Variant("HTTP-request-URI-invalid")
    if isinstance(exc, httpx.DecodingError):
        return Variant("HTTP-response-content-coding", None)
    if isinstance(exc, ConnectionRefusedError):
        return Variant("connection-refused")
    return Variant("internal-error", str(exc) or type(exc).__name__)
