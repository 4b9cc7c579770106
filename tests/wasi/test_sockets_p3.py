"""wasi:sockets@0.3.0 host classes driven directly (everything on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import trio

from trio_wasi import Err, HostContext, Ok, Variant
from trio_wasi.wasi import _sockets
from trio_wasi.wasi._netpolicy import NetworkPolicy
from trio_wasi.wasi._sockets import NameLookup03, TcpSocket03, UdpSocket03, _with_create

LOCAL = NetworkPolicy.build(["127.0.0.1:*", "[::1]:*"])
HANG_GUARD = 30


def v4(port: int, address: tuple[int, int, int, int] = (127, 0, 0, 1)) -> Variant:
    return Variant("ipv4", {"port": port, "address": address})


def v6(port: int, address: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0, 1)) -> Variant:
    return Variant("ipv6", {"port": port, "flow-info": 0, "address": address, "scope-id": 0})


def code(name: str, payload: Any = None) -> Err:
    return Err(Variant(name, payload))


def classes(policy: NetworkPolicy = LOCAL) -> tuple[Any, Any]:
    return _with_create(TcpSocket03, policy), _with_create(UdpSocket03, policy)


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


def port_of(sock: Any) -> int:
    addr = ok(sock.get_local_address())
    return int(addr.value["port"])


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drain(channel: Any) -> bytes:
    out = b""
    async for chunk in channel:
        out += bytes(chunk)
    return out


async def future_value(channel: Any) -> Any:
    return await channel.receive()


def byte_source(*chunks: bytes) -> trio.MemoryReceiveChannel[bytes]:
    send, receive = trio.open_memory_channel[bytes](len(chunks) + 1)
    for chunk in chunks:
        send.send_nowait(chunk)
    send.close()
    return receive


async def listener(tcp: Any, ctx: HostContext) -> tuple[Any, Any, int]:
    server = ok(tcp.create(ctx, "ipv4"))
    ok(server.bind(v4(0)))
    accepted = ok(server.listen())
    return server, accepted, port_of(server)


# -- creation and the policy ------------------------------------------------


async def test_without_a_policy_every_socket_is_refused(context: HostContext) -> None:
    tcp, udp = classes(NetworkPolicy.build([]))
    assert tcp.create(context, "ipv4") == code("access-denied")
    assert tcp.create(context, "ipv6") == code("access-denied")
    assert udp.create(context, "ipv4") == code("access-denied")


async def test_bind_outside_the_policy_is_refused(context: HostContext) -> None:
    tcp, udp = classes(NetworkPolicy.build(["127.0.0.1:8080"]))
    sock = ok(tcp.create(context, "ipv4"))
    assert sock.bind(v4(0)) == code("access-denied")
    assert sock.bind(v4(8080, (0, 0, 0, 0))) == code("access-denied")
    usock = ok(udp.create(context, "ipv4"))
    assert usock.bind(v4(9999)) == code("access-denied")
    await sock.aclose()
    await usock.aclose()


async def test_connect_outside_the_policy_is_refused_before_any_packet(
    context: HostContext,
) -> None:
    tcp, _ = classes()
    sock = ok(tcp.create(context, "ipv4"))
    assert await sock.connect(v4(9, (127, 0, 0, 2))) == code("access-denied")
    assert await sock.connect(v4(9, (192, 0, 2, 1))) == code("access-denied")
    # Nothing happened: the socket can still connect where the policy allows.
    assert sock.get_remote_address() == code("invalid-state")
    await sock.aclose()


async def test_listen_without_bind_needs_the_wildcard_allowed(context: HostContext) -> None:
    tcp, _ = classes()
    sock = ok(tcp.create(context, "ipv4"))
    assert sock.listen() == code("access-denied")
    assert not sock.get_is_listening()
    await sock.aclose()


# -- TCP ---------------------------------------------------------------------


async def test_tcp_echo_between_two_host_sockets(context: HostContext) -> None:
    tcp, _ = classes()
    with trio.fail_after(HANG_GUARD):
        server, accepted, port = await listener(tcp, context)
        assert server.get_is_listening()
        client = ok(tcp.create(context, "ipv4"))
        assert await client.connect(v4(port)) == Ok()
        conn = await accepted.receive()
        assert isinstance(conn, tcp)
        assert ok(conn.get_remote_address()) == ok(client.get_local_address())
        assert ok(client.get_remote_address()).value["port"] == port

        payload = bytes(range(256)) * 4096  # 1 MiB, more than one socket buffer
        sent = client.send(byte_source(payload[:1000], payload[1000:]))
        incoming, received = conn.receive()
        got = await drain(incoming)  # ends when the client's stream ends
        assert got == payload
        assert await future_value(sent) == Ok()
        assert await future_value(received) == Ok()

        reply = conn.send(byte_source(b"back"))
        back, back_done = client.receive()
        assert await drain(back) == b"back"
        assert await future_value(reply) == Ok()
        assert await future_value(back_done) == Ok()
        for obj in (conn, client, accepted, server):
            await obj.aclose()


async def test_ipv6_loopback_connect(context: HostContext) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    tcp, _ = classes()
    server = ok(tcp.create(context, "ipv6"))
    bound = server.bind(v6(0))
    if bound == code("address-not-bindable"):
        pytest.skip("::1 is not configured on this host")
    assert bound == Ok()
    assert server.get_address_family() == "ipv6"
    accepted = ok(server.listen())
    client = ok(tcp.create(context, "ipv6"))
    with trio.fail_after(HANG_GUARD):
        assert await client.connect(v6(port_of(server))) == Ok()
        conn = await accepted.receive()
    assert ok(conn.get_local_address()).case == "ipv6"
    for obj in (conn, client, accepted, server):
        await obj.aclose()


async def test_connection_refused(context: HostContext) -> None:
    tcp, _ = classes()
    sock = ok(tcp.create(context, "ipv4"))
    with trio.fail_after(HANG_GUARD):
        assert await sock.connect(v4(free_port())) == code("connection-refused")
    await sock.aclose()


async def test_invalid_arguments(context: HostContext) -> None:
    tcp, _ = classes(NetworkPolicy.build(["*"]))
    sock = ok(tcp.create(context, "ipv4"))
    assert await sock.connect(v4(0)) == code("invalid-argument")  # port 0
    assert await sock.connect(v4(80, (0, 0, 0, 0))) == code("invalid-argument")
    assert await sock.connect(v4(80, (224, 0, 0, 1))) == code("invalid-argument")
    assert await sock.connect(v6(80)) == code("invalid-argument")  # other family
    assert sock.bind(v6(0)) == code("invalid-argument")
    assert sock.set_hop_limit(0) == code("invalid-argument")
    assert sock.set_listen_backlog_size(0) == code("invalid-argument")
    assert sock.set_keep_alive_idle_time(0) == code("invalid-argument")
    assert sock.set_keep_alive_count(0) == code("invalid-argument")
    assert sock.set_receive_buffer_size(0) == code("invalid-argument")
    await sock.aclose()


async def test_invalid_states(context: HostContext) -> None:
    tcp, _ = classes()
    with trio.fail_after(HANG_GUARD):
        server, accepted, port = await listener(tcp, context)
        assert server.bind(v4(0)) == code("invalid-state")
        assert await server.connect(v4(port)) == code("invalid-state")
        client = ok(tcp.create(context, "ipv4"))
        assert client.get_local_address() == code("invalid-state")
        assert client.get_remote_address() == code("invalid-state")
        # receive and send on a socket that is not connected
        stream, done = client.receive()
        assert await drain(stream) == b""
        assert await future_value(done) == code("invalid-state")
        assert await future_value(client.send(byte_source(b"x"))) == code("invalid-state")

        assert await client.connect(v4(port)) == Ok()
        assert await client.connect(v4(port)) == code("invalid-state")
        assert client.listen() == code("invalid-state")
        first = client.receive()
        again, again_done = client.receive()  # only once per connection
        assert await drain(again) == b""
        assert await future_value(again_done) == code("invalid-state")
        conn = await accepted.receive()
        for obj in (conn, first[0], client, accepted, server):
            await obj.aclose()


async def test_address_in_use(context: HostContext) -> None:
    tcp, _ = classes()
    with trio.fail_after(HANG_GUARD):
        server, accepted, port = await listener(tcp, context)
    other = ok(tcp.create(context, "ipv4"))
    assert other.bind(v4(port)) == code("address-in-use")
    for obj in (other, accepted, server):
        await obj.aclose()


async def test_options_round_trip(context: HostContext) -> None:
    tcp, _ = classes()
    sock = ok(tcp.create(context, "ipv4"))
    assert sock.set_keep_alive_enabled(True) == Ok()
    assert sock.get_keep_alive_enabled() == Ok(True)
    assert sock.set_keep_alive_enabled(False) == Ok()
    assert sock.get_keep_alive_enabled() == Ok(False)
    # The kernel counts whole seconds: 1.5 s becomes 2 s.
    assert sock.set_keep_alive_idle_time(1_500_000_000) == Ok()
    assert sock.get_keep_alive_idle_time() == Ok(2_000_000_000)
    assert sock.set_keep_alive_interval(3_000_000_000) == Ok()
    assert sock.get_keep_alive_interval() == Ok(3_000_000_000)
    assert sock.set_keep_alive_count(7) == Ok()
    assert sock.get_keep_alive_count() == Ok(7)
    assert sock.set_hop_limit(42) == Ok()
    assert sock.get_hop_limit() == Ok(42)
    assert sock.set_receive_buffer_size(100_000) == Ok()
    assert ok(sock.get_receive_buffer_size()) >= 100_000
    assert sock.set_send_buffer_size(100_000) == Ok()
    assert ok(sock.get_send_buffer_size()) >= 100_000
    assert sock.set_listen_backlog_size(5) == Ok()
    assert sock.get_address_family() == "ipv4"
    await sock.aclose()


async def test_streams_keep_the_socket_open_after_it_is_dropped(context: HostContext) -> None:
    tcp, _ = classes()
    with trio.fail_after(HANG_GUARD):
        server, accepted, port = await listener(tcp, context)
        client = ok(tcp.create(context, "ipv4"))
        assert await client.connect(v4(port)) == Ok()
        conn = await accepted.receive()
        incoming, done = conn.receive()
        await conn.aclose()  # the socket goes first; its receive stream still works
        assert conn.core.sock.fileno() != -1
        sent = client.send(byte_source(b"after drop"))
        assert await drain(incoming) == b"after drop"
        assert await future_value(done) == Ok()
        assert await future_value(sent) == Ok()
        assert conn.core.sock.fileno() == -1  # the stream, its last user, closed it
        for obj in (client, accepted, server):
            await obj.aclose()


# -- UDP ---------------------------------------------------------------------


async def test_udp_round_trip_and_connect(context: HostContext) -> None:
    _, udp = classes()
    a = ok(udp.create(context, "ipv4"))
    b = ok(udp.create(context, "ipv4"))
    c = ok(udp.create(context, "ipv4"))
    for s in (a, b, c):
        assert s.bind(v4(0)) == Ok()
    with trio.fail_after(HANG_GUARD):
        assert await a.send(b"one", v4(port_of(b))) == Ok()
        data, sender = ok(await b.receive())
        assert data == b"one"
        assert sender == ok(a.get_local_address())

        # Connected to a: sends need no address, and c's datagrams are dropped.
        assert b.connect(v4(port_of(a))) == Ok()
        assert b.get_remote_address() == Ok(v4(port_of(a)))
        assert await c.send(b"from c", v4(port_of(b))) == Ok()
        assert await a.send(b"from a", v4(port_of(b))) == Ok()
        data, sender = ok(await b.receive())
        assert (data, sender) == (b"from a", ok(a.get_local_address()))
        assert await b.send(b"reply", None) == Ok()
        assert ok(await a.receive())[0] == b"reply"
        assert await b.send(b"x", v4(port_of(c))) == code("invalid-argument")

        assert b.disconnect() == Ok()
        assert b.disconnect() == code("invalid-state")
        assert await b.send(b"x", None) == code("invalid-argument")
    for s in (a, b, c):
        await s.aclose()


async def test_udp_errors(context: HostContext) -> None:
    _, udp = classes()
    s = ok(udp.create(context, "ipv4"))
    assert await s.receive() == code("invalid-state")  # not bound
    assert await s.send(b"x", v4(9, (127, 0, 0, 2))) == code("access-denied")
    assert s.connect(v4(9, (10, 0, 0, 1))) == code("access-denied")
    assert await s.send(bytes(70_000), v4(9)) == code("datagram-too-large")
    assert s.get_local_address() == code("invalid-state")
    assert s.set_unicast_hop_limit(0) == code("invalid-argument")
    assert s.set_unicast_hop_limit(9) == Ok()
    assert s.get_unicast_hop_limit() == Ok(9)
    await s.aclose()


# -- name lookup -------------------------------------------------------------


def fake_resolver(answer: Callable[[str], Any]) -> Callable[..., Any]:
    """A ``resolve`` whose getaddrinfo answers from ``answer`` (no resolver is asked)."""

    async def getaddrinfo(name: str, port: Any, **kwargs: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return answer(name)

    async def resolve(name: str) -> Any:
        return await _sockets_resolve(name, getaddrinfo)

    return resolve


_sockets_resolve = _sockets.resolve


async def test_name_lookup_denied_by_default(context: HostContext) -> None:
    lookup = NameLookup03(NetworkPolicy.build(["*"]), context)
    assert await lookup.resolve_addresses("127.0.0.1") == code("access-denied")


async def test_name_lookup_of_literals(context: HostContext) -> None:
    lookup = NameLookup03(NetworkPolicy.build([], allow_name_lookup=True), context)
    assert await lookup.resolve_addresses("127.0.0.1") == Ok([Variant("ipv4", (127, 0, 0, 1))])
    expected6 = Ok([Variant("ipv6", (0, 0, 0, 0, 0, 0, 0, 1))])
    assert await lookup.resolve_addresses("::1") == expected6
    assert await lookup.resolve_addresses("[::1]") == expected6
    assert await lookup.resolve_addresses("") == code("invalid-argument")
    assert await lookup.resolve_addresses("a b") == code("invalid-argument")
    assert await lookup.resolve_addresses("host:80") == code("invalid-argument")


async def test_name_lookup_results_and_errors(
    context: HostContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(name: str) -> Any:
        if name == "twice.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0)),
            ]
        if name == "missing.test":
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        if name == "later.test":
            raise socket.gaierror(socket.EAI_AGAIN, "try again")
        raise socket.gaierror(socket.EAI_FAIL, "failed")

    monkeypatch.setattr(_sockets, "resolve", fake_resolver(answer))
    lookup = NameLookup03(NetworkPolicy.build([], allow_name_lookup=True), context)
    assert await lookup.resolve_addresses("twice.test") == Ok(
        [Variant("ipv4", (127, 0, 0, 1)), Variant("ipv6", (0, 0, 0, 0, 0, 0, 0, 1))]
    )
    assert await lookup.resolve_addresses("missing.test") == code("name-unresolvable")
    assert await lookup.resolve_addresses("later.test") == code("temporary-resolver-failure")
    assert await lookup.resolve_addresses("broken.test") == code("permanent-resolver-failure")


async def test_udp_implicit_bind_stays_on_loopback(context: HostContext) -> None:
    _, udp = classes()
    receiver = ok(udp.create(context, "ipv4"))
    assert receiver.bind(v4(0)) == Ok()
    sender = ok(udp.create(context, "ipv4"))
    assert sender.get_local_address() == code("invalid-state")
    with trio.fail_after(HANG_GUARD):
        assert await sender.send(b"hi", v4(port_of(receiver))) == Ok()
        data, source = ok(await receiver.receive())
    assert data == b"hi"
    # Bound by the send, to the loopback address rather than the wildcard.
    assert ok(sender.get_local_address()) == source
    assert source.value["address"] == (127, 0, 0, 1)
    for s in (sender, receiver):
        await s.aclose()
