"""wasi:http 0.3.0 types on the host side: fields, messages, options, error codes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

import trio_wasi
from trio_wasi import Err, Ok, Variant
from wasi_http._client import AllowList
from wasi_http._errors import ERROR_CASES, error_code_for, status_for
from wasi_http._types03 import Fields, Request, RequestOptions, Response, method_variant


def test_fields_validate_names_and_values() -> None:
    fields = Fields()
    assert fields.append("x-ok", b"value") == Ok(None)
    assert fields.append("bad name", b"v") == Err(Variant("invalid-syntax"))
    assert fields.append("x-crlf", b"a\r\nb") == Err(Variant("invalid-syntax"))
    assert fields.append("x-nul", b"a\x00b") == Err(Variant("invalid-syntax"))
    assert fields.set("", [b"v"]) == Err(Variant("invalid-syntax"))
    assert fields.copy_all() == [("x-ok", b"value")]


def test_fields_refuse_forbidden_headers() -> None:
    fields = Fields()
    for name in ("Connection", "transfer-encoding", "Upgrade", "keep-alive"):
        assert fields.append(name, b"x") == Err(Variant("forbidden"))
    result = Fields.from_list([("x-a", b"1"), ("connection", b"close")])
    assert result == Err(Variant("forbidden"))


def test_fields_names_compare_case_insensitively() -> None:
    result = Fields.from_list([("X-A", b"1"), ("x-b", b"2"), ("x-a", b"3")])
    assert isinstance(result, Ok)
    fields = result.value
    assert fields.get("x-A") == [b"1", b"3"]
    assert fields.has("X-B") and not fields.has("x-c")
    assert fields.get_and_delete("x-a") == Ok([b"1", b"3"])
    assert fields.copy_all() == [("x-b", b"2")]
    assert fields.set("x-b", [b"4", b"5"]) == Ok(None)
    assert fields.get("x-b") == [b"4", b"5"]


def test_headers_of_a_message_are_immutable_and_clone_is_mutable() -> None:
    headers = Fields()
    assert headers.append("x-a", b"1") == Ok(None)
    response, _sent = Response.new(headers, None, trio.open_memory_channel[object](1)[1])
    mine = response.get_headers()
    assert mine.append("x-b", b"2") == Err(Variant("immutable"))
    assert mine.set("x-a", []) == Err(Variant("immutable"))
    assert mine.delete("x-a") == Err(Variant("immutable"))
    copy = mine.clone()
    assert copy.append("x-b", b"2") == Ok(None)
    assert mine.copy_all() == [("x-a", b"1")]


def test_incoming_fields_leave_out_forbidden_and_malformed() -> None:
    fields = Fields.incoming([(b"host", b"h"), (b"connection", b"keep-alive"), (b"x a", b"v")])
    assert fields.copy_all() == [("host", b"h")]
    assert fields.append("x", b"y") == Err(Variant("immutable"))


def test_request_setters_validate() -> None:
    request, _ = Request.new(Fields(), None, trio.open_memory_channel[object](1)[1], None)
    assert request.get_method() == Variant("get")
    assert request.set_method(Variant("other", "PURGE")) == Ok(None)
    assert request.set_method(Variant("other", "BAD METHOD")) == Err(None)
    assert request.set_path_with_query("/a?b=c") == Ok(None)
    assert request.set_path_with_query("/a b") == Err(None)
    assert request.set_authority("example.com:8080") == Ok(None)
    assert request.set_authority("a/b") == Err(None)
    assert request.set_scheme(Variant("other", "ws+x")) == Ok(None)
    assert request.set_scheme(Variant("other", "1bad")) == Err(None)
    assert method_variant("POST") == Variant("post")
    assert method_variant("post") == Variant("other", "post")


def test_request_options_become_immutable_when_attached() -> None:
    options = RequestOptions()
    assert options.set_connect_timeout(5) == Ok(None)
    request, _ = Request.new(Fields(), None, trio.open_memory_channel[object](1)[1], options)
    assert request.get_options() is options
    assert options.set_first_byte_timeout(1) == Err(Variant("immutable"))
    copy = options.clone()
    assert copy.get_connect_timeout() == 5
    assert copy.set_first_byte_timeout(1) == Ok(None)


async def test_body_is_consumed_once_and_new_reports_the_outcome() -> None:
    send, body = trio.open_memory_channel[bytes](2)
    response, sent = Response.new(Fields(), body, trio.open_memory_channel[object](1)[1])
    contents, _trailers = response.take_body()
    assert contents is body
    with pytest.raises(RuntimeError):
        response.take_body()
    response.finish(Ok(None))
    assert await sent.receive() == Ok(None)
    await send.aclose()


def test_error_codes_map_to_statuses() -> None:
    assert len(ERROR_CASES) == 39
    statuses = {case: status_for(Variant(case)) for case in ERROR_CASES}
    assert statuses["HTTP-request-denied"] == 403
    assert statuses["HTTP-request-body-size"] == 413
    assert statuses["connection-timeout"] == 504
    assert statuses["connection-refused"] == 502
    assert statuses["internal-error"] == 500
    assert all(400 <= s < 600 for s in statuses.values())


def test_host_failures_map_to_error_codes() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    assert error_code_for(httpx.ConnectTimeout("t", request=request)) == Variant(
        "connection-timeout"
    )
    assert error_code_for(httpx.ReadTimeout("t", request=request)) == Variant(
        "connection-read-timeout"
    )
    assert error_code_for(httpx.ConnectError("refused", request=request)) == Variant(
        "connection-refused"
    )
    assert error_code_for(httpx.RemoteProtocolError("x", request=request)) == Variant(
        "HTTP-protocol-error"
    )
    assert error_code_for(ValueError("boom")) == Variant("internal-error", "boom")


def test_allow_list_patterns() -> None:
    allow = AllowList(["example.com", "127.0.0.1:8080", "*.test:*", "[::1]:9"])
    assert allow.allows("example.com", 443)
    assert allow.allows("EXAMPLE.com", 80)
    assert allow.allows("127.0.0.1", 8080)
    assert not allow.allows("127.0.0.1", 8081)
    assert allow.allows("a.b.test", 1)
    assert allow.allows("::1", 9)
    assert not allow.allows("other.com", 80)
    assert not AllowList([]).allows("127.0.0.1", 80)


async def test_a_response_streams_its_body_then_its_trailers() -> None:
    from wasi_http._app import send_response
    from wasi_http._pool import Slot

    body_send, body = trio.open_memory_channel[bytes](4)
    trailers_send, trailers = trio.open_memory_channel[object](1)
    headers = Fields.from_list([("x-a", b"1"), ("trailer", b"x-checksum")])
    assert isinstance(headers, Ok)
    response, sent = Response.new(headers.value, body, trailers)
    for part in (b"one", b"two"):
        body_send.send_nowait(part)
    body_send.close()
    trailer_fields = Fields.from_list([("x-checksum", b"abc")])
    assert isinstance(trailer_fields, Ok)
    trailers_send.send_nowait(Ok(trailer_fields.value))
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(dict(message))

    scope = {
        "method": "GET",
        "path": "/",
        "headers": [(b"te", b"trailers")],
        "extensions": {"http.response.trailers": {}},
    }
    await send_response(scope, send, response, Slot(1))
    assert messages[0] == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-a", b"1"), (b"trailer", b"x-checksum")],
        "trailers": True,
    }
    assert [m.get("body") for m in messages[1:-1]] == [b"one", b"two", b""]
    assert messages[-1] == {
        "type": "http.response.trailers",
        "headers": [(b"x-checksum", b"abc")],
        "more_trailers": False,
    }
    assert await sent.receive() == Ok(None)


@pytest.mark.parametrize("announced", [False, True])
async def test_trailers_are_sent_only_when_announced_and_present(announced: bool) -> None:
    # HTTP/2 cannot end a stream with an empty trailer block, so trailers are
    # declared to the server only when the response announced them; a
    # response that announced them and sent none is cut short.
    from wasi_http._app import _BodyFailed, send_response
    from wasi_http._pool import Slot

    body_send, body = trio.open_memory_channel[bytes](4)
    trailers_send, trailers = trio.open_memory_channel[object](1)
    head = [("trailer", b"x-checksum")] if announced else []
    headers = Fields.from_list(head)
    assert isinstance(headers, Ok)
    response, sent = Response.new(headers.value, body, trailers)
    body_send.send_nowait(b"data")
    body_send.close()
    trailers_send.send_nowait(Ok(None))
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(dict(message))

    scope = {
        "method": "GET",
        "path": "/",
        "headers": [(b"te", b"trailers")],
        "extensions": {"http.response.trailers": {}},
    }
    if announced:
        with pytest.raises(_BodyFailed, match="announced trailers and sent none"):
            await send_response(scope, send, response, Slot(1))
        assert messages[-1].get("more_body") is True
    else:
        await send_response(scope, send, response, Slot(1))
        assert messages[0]["trailers"] is False
        assert messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert all(m["type"] != "http.response.trailers" for m in messages)
    assert await sent.receive() == Ok(None)


def test_stackful_and_02_components_serve_one_request_per_instance_by_default() -> None:
    from wasi_http._app import DEFAULT_MAX_CONCURRENCY, has_stackful_lift, max_concurrency
    from wasi_http._cli import default_component

    shipped = default_component()  # its handler is lifted without a callback
    assert has_stackful_lift(shipped)
    assert max_concurrency(shipped, "0.3", None) == 1
    # Configured, a stackful instance is shared (test_serve_stackful.py).
    assert max_concurrency(shipped, "0.3", 100) == 100
    assert max_concurrency(shipped, "0.2", 100) == 1
    callback = trio_wasi.Component.from_wat(
        (Path(__file__).parents[1] / "benchmarks" / "hello_callback.wat").read_text()
    )
    assert not has_stackful_lift(callback)
    assert max_concurrency(callback, "0.3", None) == DEFAULT_MAX_CONCURRENCY
    assert max_concurrency(callback, "0.3", 7) == 7


async def test_the_disconnect_watcher_takes_queued_messages_without_waiting() -> None:
    from wasi_http._app import _Exchange, _receive_nowait, _until_disconnect

    send, receive = trio.open_memory_channel[dict[str, object]](4)
    nowait = _receive_nowait(receive.receive)
    with pytest.raises(trio.WouldBlock):
        nowait()
    send.send_nowait({"type": "http.request", "body": b"", "more_body": False})
    assert nowait() == {"type": "http.request", "body": b"", "more_body": False}

    async def other_receive() -> dict[str, object]:
        raise AssertionError("not called")

    # Anything but a trio memory channel's receive is only ever awaited.
    with pytest.raises(trio.WouldBlock):
        _receive_nowait(other_receive)()

    # The watcher ends at the disconnect after the body message, and a
    # disconnect before the response is complete cancels the exchange.
    async def ignore(message: object) -> None:
        pass

    exchange = _Exchange(ignore, {})
    send.send_nowait({"type": "http.request", "body": b"", "more_body": False})
    send.send_nowait({"type": "http.disconnect"})
    await _until_disconnect(receive.receive, exchange)
    assert exchange.scope.cancel_called
    done = _Exchange(ignore, {})
    done.complete = True
    send.send_nowait({"type": "http.disconnect"})
    await _until_disconnect(receive.receive, done)
    assert not done.scope.cancel_called
