"""A WASI 0.3 command that serves one TCP echo connection through wasi:sockets@0.3.0.

When the host grants no network it reports the refusal of its first socket and stops.
Otherwise it reports a UDP round trip between two of its own loopback sockets, then the
outcome of a connect to an address outside the host's policy and of a name lookup (of a
literal, so no resolver is asked), then listens on an ephemeral ``127.0.0.1`` port,
prints ``listening PORT`` so the host test can connect, echoes every byte of the one
connection it accepts until the peer shuts its side down, and closes its side. A test
checks each line exactly. Everything stays on loopback.
"""

import wit_world
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import ip_name_lookup, stdout
from wit_world.imports.wasi_sockets_types import (
    IpAddressFamily,
    IpSocketAddress_Ipv4,
    Ipv4SocketAddress,
    TcpSocket,
    UdpSocket,
)

LOOPBACK = (127, 0, 0, 1)


def loopback(port: int) -> IpSocketAddress_Ipv4:
    return IpSocketAddress_Ipv4(Ipv4SocketAddress(port=port, address=LOOPBACK))


def code_of(exc: Err) -> str:
    return type(exc.value).__name__.partition("_")[2]


class Run(exports.Run):
    async def run(self) -> None:
        out, out_reader = wit_world.byte_stream()
        out_done = stdout.write_via_stream(out_reader)

        async def say(text: str) -> None:
            await out.write_all(text.encode())

        # With no network granted, creating a socket is refused: say so and stop.
        try:
            first = TcpSocket.create(IpAddressFamily.IPV4)
        except Err as exc:
            await say(f"create: {code_of(exc)}\n")
            out.__exit__(None, None, None)
            await out_done.read()
            return
        first.__exit__(None, None, None)
        await say("create: ok\n")

        # UDP: one datagram between two loopback sockets of this guest.
        a = UdpSocket.create(IpAddressFamily.IPV4)
        b = UdpSocket.create(IpAddressFamily.IPV4)
        a.bind(loopback(0))
        b.bind(loopback(0))
        b_port = b.get_local_address().value.port
        await a.send(b"ping", loopback(b_port))
        data, sender = await b.receive()
        same = sender.value.port == a.get_local_address().value.port
        await say(f"udp: {data.decode()} from a: {same}\n")
        a.__exit__(None, None, None)
        b.__exit__(None, None, None)

        # Refusals: the host's policy decides, the guest sees the error code.
        probe = TcpSocket.create(IpAddressFamily.IPV4)
        try:
            await probe.connect(IpSocketAddress_Ipv4(Ipv4SocketAddress(9, (127, 0, 0, 2))))
            await say("connect outside the policy: ok\n")
        except Err as exc:
            await say(f"connect outside the policy: {code_of(exc)}\n")
        probe.__exit__(None, None, None)
        try:
            # A literal: allowed, it resolves without asking any resolver.
            found = await ip_name_lookup.resolve_addresses("127.0.0.1")
            await say(f"lookup: {found}\n")
        except Err as exc:
            await say(f"lookup: {code_of(exc)}\n")

        # TCP echo: listen, tell the host where, serve one connection.
        listener = TcpSocket.create(IpAddressFamily.IPV4)
        listener.bind(loopback(0))
        accepted = listener.listen()
        port = listener.get_local_address().value.port
        await say(f"listening {port}\n")

        (conn,) = await accepted.read(1)
        incoming, received = conn.receive()
        echo, echo_reader = wit_world.byte_stream()
        sent = conn.send(echo_reader)
        total = 0
        with incoming:
            while not incoming.writer_dropped:
                chunk = await incoming.read(65536)
                if chunk:
                    total += len(chunk)
                    await echo.write_all(chunk)
        echo.__exit__(None, None, None)
        await received.read()
        await sent.read()
        await say(f"echoed {total} bytes\n")

        accepted.__exit__(None, None, None)
        conn.__exit__(None, None, None)
        listener.__exit__(None, None, None)
        out.__exit__(None, None, None)
        await out_done.read()
