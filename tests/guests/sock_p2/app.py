"""A WASI 0.2 command that serves one TCP echo connection with Python's ``socket`` module.

componentize-py's CPython reaches wasi:sockets@0.2.0 through wasi-libc, so this guest
exercises the 0.2 interfaces (start/finish pairs, pollables, wasi:io streams) as an
ordinary Python program does. It reports a UDP round trip between two of its own
loopback sockets, then how a connect outside the host's policy and a name lookup (of a
literal, so no resolver is asked; given as bytes, as this CPython has no ``idna`` codec)
come out in Python. Then it listens on an ephemeral ``127.0.0.1`` port, prints
``listening PORT``, echoes one connection until the peer shuts its side down and prints
how many bytes it echoed. Everything stays on loopback.
"""

import socket

from wit_world import exports


def refusal(fn) -> str:
    try:
        fn()
    except OSError as exc:
        return type(exc).__name__
    return "ok"


class Run(exports.Run):
    def run(self) -> None:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.sendto(b"ping", b.getsockname())
        data, sender = b.recvfrom(100)
        print(f"udp: {data.decode()} from a: {sender == a.getsockname()}", flush=True)
        a.close()
        b.close()

        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        print(f"connect outside the policy: {refusal(lambda: probe.connect(('127.0.0.2', 9)))}")
        probe.close()
        print(f"lookup: {refusal(lambda: socket.getaddrinfo(b'127.0.0.1', 80))}", flush=True)

        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        print(f"listening {server.getsockname()[1]}", flush=True)
        conn, _ = server.accept()
        total = 0
        while data := conn.recv(65536):
            conn.sendall(data)
            total += len(data)
        conn.shutdown(socket.SHUT_WR)
        conn.close()
        server.close()
        print(f"echoed {total} bytes", flush=True)
