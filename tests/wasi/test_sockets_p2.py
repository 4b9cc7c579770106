"""wasi:sockets@0.2.0 host classes driven directly (everything on loopback)."""

from __future__ import annotations

import socket
from typing import Any

import trio
import trio.testing

from trio_wasi import Err, HostContext, Ok, Variant
from trio_wasi.wasi._io import Pollable, poll
from trio_wasi.wasi._netpolicy import NetworkPolicy
from trio_wasi.wasi._sockets import (
    InstanceNetwork,
    NameLookup02,
    ResolveAddressStream,
    TcpCreateSocket02,
    UdpCreateSocket02,
)

LOCAL = NetworkPolicy.build(["127.0.0.1:*"])
HANG_GUARD = 30
NET = InstanceNetwork.instance_network()


def v4(port: int, address: tuple[int, int, int, int] = (127, 0, 0, 1)) -> Variant:
    return Variant("ipv4", {"port": port, "address": address})


def ok(result: Any) -> Any:
    assert isinstance(result, Ok), result
    return result.value


async def wait(pollable: Pollable) -> None:
    assert await poll([pollable]) == [0]


def port_of(sock: Any) -> int:
    return int(ok(sock.local_address()).value["port"])


async def tcp_listener(create: TcpCreateSocket02) -> Any:
    server = ok(create.create_tcp_socket("ipv4"))
    assert server.finish_bind() == Err("not-in-progress")
    assert server.start_bind(NET, v4(0)) == Ok()
    assert server.start_bind(NET, v4(0)) == Err("concurrency-conflict")
    assert server.finish_bind() == Ok()
    assert server.start_listen() == Ok()
    assert server.finish_listen() == Ok()
    assert server.is_listening()
    return server


async def connect(create: TcpCreateSocket02, port: int) -> tuple[Any, Any, Any]:
    client = ok(create.create_tcp_socket("ipv4"))
    assert client.finish_connect() == Err("not-in-progress")
    assert client.start_connect(NET, v4(port)) == Ok()
    pollable = client.subscribe()
    while True:
        result = client.finish_connect()
        if result != Err("would-block"):
            break
        await wait(pollable)
    instream, outstream = ok(result)
    return client, instream, outstream


async def read_all(stream: Any) -> bytes:
    out = b""
    while True:
        result = await stream.blocking_read(65536)
        if result == Err(Variant("closed")):
            return out
        out += ok(result)


async def test_creation_is_refused_without_a_policy(context: HostContext) -> None:
    nothing = NetworkPolicy.build([])
    assert TcpCreateSocket02(nothing, context).create_tcp_socket("ipv4") == Err("access-denied")
    assert UdpCreateSocket02(nothing, context).create_udp_socket("ipv6") == Err("access-denied")


async def test_tcp_echo_through_wasi_io_streams(context: HostContext) -> None:
    create = TcpCreateSocket02(LOCAL, context)
    with trio.fail_after(HANG_GUARD):
        server = await tcp_listener(create)
        assert server.accept() == Err("would-block")
        accept_ready = server.subscribe()
        assert not accept_ready.ready()
        client, c_in, c_out = await connect(create, port_of(server))
        await wait(accept_ready)
        conn, s_in, s_out = ok(server.accept())
        assert ok(conn.remote_address()) == ok(client.local_address())
        assert ok(client.remote_address()) == v4(port_of(server))

        payload = bytes(range(256)) * 4096  # 1 MiB
        assert await c_out.blocking_write_and_flush(payload) == Ok()
        assert client.shutdown("send") == Ok()
        assert await read_all(s_in) == payload

        # Non-blocking writes within check-write's budget, then the reply.
        budget = ok(s_out.check_write())
        assert budget > 0
        assert s_out.write(b"reply"[:budget]) == Ok()
        assert await s_out.blocking_flush() == Ok()
        assert conn.shutdown("both") == Ok()
        assert await read_all(c_in) == b"reply"
    for obj in (s_in, s_out, conn, c_in, c_out, client, server):
        await obj.aclose()


async def test_tcp_refusals_and_states(context: HostContext) -> None:
    create = TcpCreateSocket02(LOCAL, context)
    sock = ok(create.create_tcp_socket("ipv4"))
    assert sock.start_connect(NET, v4(80, (127, 0, 0, 2))) == Err("access-denied")
    assert sock.start_bind(NET, v4(0, (10, 0, 0, 1))) == Err("access-denied")
    assert sock.start_connect(NET, v4(0)) == Err("invalid-argument")
    assert sock.start_listen() == Err("invalid-state")  # not bound
    assert sock.accept() == Err("invalid-state")
    assert sock.local_address() == Err("invalid-state")
    assert sock.remote_address() == Err("invalid-state")
    assert sock.shutdown("both") == Err("invalid-state")
    assert sock.finish_listen() == Err("not-in-progress")
    assert sock.set_hop_limit(0) == Err("invalid-argument")
    assert sock.set_hop_limit(17) == Ok()
    assert sock.hop_limit() == Ok(17)
    assert sock.set_keep_alive_count(3) == Ok()
    assert sock.keep_alive_count() == Ok(3)
    assert sock.address_family() == "ipv4"
    assert sock.subscribe().ready()  # nothing pending: always ready
    await sock.aclose()


async def test_tcp_connection_refused(context: HostContext) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    create = TcpCreateSocket02(LOCAL, context)
    sock = ok(create.create_tcp_socket("ipv4"))
    assert sock.start_connect(NET, v4(port)) == Ok()
    with trio.fail_after(HANG_GUARD):
        await wait(sock.subscribe())
    assert sock.finish_connect() == Err("connection-refused")
    assert sock.finish_connect() == Err("not-in-progress")
    await sock.aclose()


async def test_udp_datagram_streams(context: HostContext) -> None:
    create = UdpCreateSocket02(LOCAL, context)
    a = ok(create.create_udp_socket("ipv4"))
    b = ok(create.create_udp_socket("ipv4"))
    assert a.stream(None) == Err("invalid-state")  # not bound yet
    for s in (a, b):
        assert s.start_bind(NET, v4(0)) == Ok()
        assert s.finish_bind() == Ok()
    a_in, a_out = ok(a.stream(None))
    b_in, b_out = ok(b.stream(v4(port_of(a))))  # b is connected to a
    assert ok(b.remote_address()) == v4(port_of(a))
    with trio.fail_after(HANG_GUARD):
        assert b_in.receive(10) == Ok([])
        assert a_out.send([{"data": b"x", "remote-address": v4(port_of(b))}]) == Err(
            "invalid-argument"
        )  # more than check-send permitted (nothing yet)
        await wait(a_out.subscribe())
        assert ok(a_out.check_send()) > 0
        two = [{"data": d, "remote-address": v4(port_of(b))} for d in (b"one", b"two")]
        assert a_out.send(two) == Ok(2)
        got: list[Any] = []
        while len(got) < 2:
            await wait(b_in.subscribe())
            got += ok(b_in.receive(10))
        assert [g["data"] for g in got] == [b"one", b"two"]
        assert all(g["remote-address"] == ok(a.local_address()) for g in got)

        assert ok(b_out.check_send()) > 0
        assert b_out.send([{"data": b"back", "remote-address": None}]) == Ok(1)
        await wait(a_in.subscribe())
        (reply,) = ok(a_in.receive(1))
        assert reply == {"data": b"back", "remote-address": ok(b.local_address())}

        assert ok(a_out.check_send()) > 0
        denied = [{"data": b"x", "remote-address": v4(9, (127, 0, 0, 2))}]
        assert a_out.send(denied) == Err("access-denied")
    for obj in (a_in, a_out, b_in, b_out, a, b):
        await obj.aclose()


async def test_name_lookup_stream(context: HostContext) -> None:
    denied = NameLookup02(NetworkPolicy.build(["*"]), context)
    assert denied.resolve_addresses(NET, "127.0.0.1") == Err("access-denied")

    lookup = NameLookup02(NetworkPolicy.build([], allow_name_lookup=True), context)
    stream = ok(lookup.resolve_addresses(NET, "::1"))
    assert stream.resolve_next_address() == Ok(Variant("ipv6", (0, 0, 0, 0, 0, 0, 0, 1)))
    assert stream.resolve_next_address() == Ok(None)
    assert lookup.resolve_addresses(NET, "not a name") == Err("invalid-argument")


async def test_resolve_address_stream_waits_for_its_lookup(context: HostContext) -> None:
    import ipaddress

    release = trio.Event()

    async def slow_lookup(name: str) -> list[Any]:
        await release.wait()
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.0.2")]

    stream = ResolveAddressStream()
    context.start_soon(stream.run, "slow.test", slow_lookup)
    pollable = stream.subscribe()
    await trio.testing.wait_all_tasks_blocked()
    assert stream.resolve_next_address() == Err("would-block")
    assert not pollable.ready()
    release.set()
    with trio.fail_after(HANG_GUARD):
        await wait(pollable)
    assert stream.resolve_next_address() == Ok(Variant("ipv4", (127, 0, 0, 1)))
    assert stream.resolve_next_address() == Ok(Variant("ipv4", (127, 0, 0, 2)))
    assert stream.resolve_next_address() == Ok(None)


async def test_two_pollables_of_one_listener_in_one_poll(context: HostContext) -> None:
    create = TcpCreateSocket02(LOCAL, context)
    server = await tcp_listener(create)
    first, second = server.subscribe(), server.subscribe()
    polled: list[list[int]] = []

    async def poller() -> None:
        polled.append(await poll([first, second]))

    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poller)
            await trio.testing.wait_all_tasks_blocked()
            assert polled == []  # nothing to accept yet: the poll waits
            client, c_in, c_out = await connect(create, port_of(server))
    assert polled == [[0, 1]]
    conn, s_in, s_out = ok(server.accept())
    for obj in (s_in, s_out, conn, c_in, c_out, client, server):
        await obj.aclose()


async def _connected_pair(create: TcpCreateSocket02) -> tuple[Any, ...]:
    server = await tcp_listener(create)
    client, c_in, c_out = await connect(create, port_of(server))
    await wait(server.subscribe())
    conn, s_in, s_out = ok(server.accept())
    return server, client, c_in, c_out, conn, s_in, s_out


async def test_shutdown_sends_what_write_took_first(context: HostContext) -> None:
    # write() returns before the bytes go out (they are sent on trio); a
    # shutdown("send") right after it, with no checkpoint in between, must
    # not cut them off.
    create = TcpCreateSocket02(LOCAL, context)
    with trio.fail_after(HANG_GUARD):
        server, client, c_in, c_out, conn, s_in, s_out = await _connected_pair(create)
        payload = b"sent before the shutdown"
        assert c_out.write(payload) == Ok()
        assert client.shutdown("send") == Ok()
        # Writes after the shutdown are refused at once.
        assert c_out.write(b"late") == Err(Variant("closed"))
        assert await read_all(s_in) == payload
        # "both" shuts the receiving side at once and the sending side after.
        assert s_out.write(b"reply") == Ok()
        assert conn.shutdown("both") == Ok()
        assert await read_all(c_in) == b"reply"
    for obj in (s_in, s_out, conn, c_in, c_out, client, server):
        await obj.aclose()


async def test_dropping_the_output_stream_sends_what_it_took(context: HostContext) -> None:
    create = TcpCreateSocket02(LOCAL, context)
    with trio.fail_after(HANG_GUARD):
        server, client, c_in, c_out, conn, s_in, s_out = await _connected_pair(create)
        payload = bytes(range(256)) * 256
        assert c_out.write(payload) == Ok()
        # The guest drops the stream, then the socket: the last user closes
        # the connection, but only after the pending bytes have gone out.
        await c_out.aclose()
        await c_in.aclose()
        await client.aclose()
        assert await read_all(s_in) == payload
    for obj in (s_in, s_out, conn, server):
        await obj.aclose()
