"""The socket core shared by wasi:sockets 0.3.0 and 0.2.0.

One TCP core (:class:`TcpCore`) and one UDP core (:class:`UdpCore`) hold a
non-blocking stdlib socket and its state; the two WIT faces in ``_sockets``
only translate arguments, results and error codes. Operations that never
wait (bind, listen, options, a non-blocking accept or receive) are plain
methods, safe on the store threads where plain ``def`` host functions run;
waits use trio's ``wait_readable``/``wait_writable`` and run on trio only.

Errors are :class:`SockError` carrying a case name of the error-code
variant of 0.3 (``access-denied``, ``invalid-state``, ...) or one of the
0.2-only cases (``would-block``, ``not-in-progress``, ``new-socket-limit``,
``unknown``); each face maps the names it lacks onto its own cases.

Checks done before any system call (the WASI socket specs' "argument" and
"state" rules): the address family of the address must be the socket's
(IPv4-mapped IPv6 addresses are refused, IPv6 sockets are IPv6-only), a
remote address must be a unicast address with a nonzero port, and the
network policy must allow the address, else ``access-denied``.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .._abi._values import Variant
from ._errno import SOCKET_CODES
from ._netpolicy import IPAddress, NetworkPolicy

if TYPE_CHECKING:
    from .._hostdefs import HostContext

__all__ = [
    "Net",
    "SockError",
    "TcpCore",
    "UdpCore",
    "from_sockaddr",
    "ip_address_value",
    "to_sockaddr",
]

DEFAULT_BACKLOG = 128
MAX_DATAGRAM = 65535
CHUNK = 1 << 16
_I32_MAX = (1 << 31) - 1


class SockError(Exception):
    """A socket operation failed with the error-code case ``code``."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message


# The package's errno table, and what only this core distinguishes.
_ERRNO_CODES = {
    **SOCKET_CODES,
    errno.ENETDOWN: "remote-unreachable",
    errno.EPROTONOSUPPORT: "not-supported",
    errno.EALREADY: "invalid-state",
    errno.EMFILE: "new-socket-limit",  # 0.2 only; "other" in 0.3
    errno.ENFILE: "new-socket-limit",
}


def os_error(exc: OSError) -> SockError:
    """The error code of a failed system call."""
    code = _ERRNO_CODES.get(exc.errno or 0, "other")
    return SockError(code, exc.strerror or str(exc))


# ---------------------------------------------------------------------------
# Addresses


def _ip(value: Variant) -> IPAddress:
    if value.case == "ipv4":
        return ipaddress.IPv4Address(bytes(value.value))
    packed = b"".join(int(x).to_bytes(2, "big") for x in value.value)
    return ipaddress.IPv6Address(packed)


def ip_address_value(address: IPAddress) -> Variant:
    """``ip-address`` of a Python address."""
    if address.version == 4:
        return Variant("ipv4", tuple(address.packed))
    p = address.packed
    return Variant("ipv6", tuple(int.from_bytes(p[i : i + 2], "big") for i in range(0, 16, 2)))


def to_sockaddr(value: Variant) -> tuple[IPAddress, tuple[Any, ...]]:
    """The address and the stdlib socket address of an ``ip-socket-address``."""
    fields = value.value
    ip = _ip(Variant(value.case, fields["address"]))
    if value.case == "ipv4":
        return ip, (str(ip), fields["port"])
    return ip, (str(ip), fields["port"], fields["flow-info"], fields["scope-id"])


def from_sockaddr(family: int, addr: tuple[Any, ...]) -> Variant:
    """The ``ip-socket-address`` of a stdlib socket address."""
    if family == socket.AF_INET:
        ip4 = ipaddress.IPv4Address(addr[0])
        return Variant("ipv4", {"port": addr[1], "address": tuple(ip4.packed)})
    ip6 = ipaddress.IPv6Address(addr[0].partition("%")[0])
    return Variant(
        "ipv6",
        {
            "port": addr[1],
            "flow-info": addr[2],
            "address": ip_address_value(ip6).value,
            "scope-id": addr[3],
        },
    )


_FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


# ---------------------------------------------------------------------------
# Per-instance network access


class Net:
    """One instance's network: the policy and the context that runs background work."""

    KEY = "trio_wasi.wasi:sockets"

    def __init__(self, policy: NetworkPolicy, context: HostContext) -> None:
        self.policy = policy
        self.context = context

    @classmethod
    def of(cls, context: HostContext, policy: NetworkPolicy) -> Net:
        net: Net = context._object(cls.KEY, lambda ctx: cls(policy, ctx))
        return net

    def check_create(self, family: str) -> int:
        if not self.policy.any_allowed:
            raise SockError("access-denied", "the network policy allows no address")
        if family == "ipv6" and not socket.has_ipv6:
            raise SockError("not-supported", "this host has no IPv6")
        return _FAMILIES[family]

    def check(self, ip: IPAddress, port: int) -> None:
        if not self.policy.allows(ip, port):
            raise SockError("access-denied", f"the network policy does not allow {ip} port {port}")


def _new_socket(family: int, kind: int) -> socket.socket:
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise os_error(exc) from exc
    sock.setblocking(False)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def _ready_now(sock: socket.socket, readable: bool) -> bool:
    """Whether ``sock`` is readable (or writable) right now, on any thread."""
    try:
        p = select.poll()
        p.register(sock.fileno(), select.POLLIN if readable else select.POLLOUT)
        return bool(p.poll(0))
    except (OSError, ValueError):
        return True  # closed: whatever waits finds out by trying


async def wait_socket(sock: socket.socket, readable: bool) -> None:
    """Wait (on trio) until ``sock`` is readable or writable, or closed."""
    wait = trio.lowlevel.wait_readable if readable else trio.lowlevel.wait_writable
    try:
        await wait(sock)
    except trio.BusyResourceError:
        # Another task already waits in that direction (two pollables of one
        # socket in one poll): look again on a short period instead.
        while not _ready_now(sock, readable):
            await trio.sleep(0.005)
    except trio.ClosedResourceError:
        pass


class _Core:
    """What TCP and UDP sockets share: the socket, its family, checks and closing."""

    kind = socket.SOCK_STREAM

    def __init__(self, net: Net, family: str, sock: socket.socket | None = None) -> None:
        self.net = net
        self.family = family
        self.os_family = _FAMILIES[family]
        self.sock = sock if sock is not None else _new_socket(self.os_family, self.kind)
        self.lock = threading.Lock()
        self._users = 1
        self._closed = False

    # -- ownership: the socket and the streams made from it share the OS socket

    def retain(self) -> None:
        with self.lock:
            self._users += 1

    async def release(self) -> None:
        with self.lock:
            self._users -= 1
            last = self._users == 0 and not self._closed
            if last:
                self._closed = True
        if last:
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    # -- checks

    def _address(self, value: Variant, *, remote: bool) -> tuple[Any, ...]:
        """Check an address argument (wasi:sockets tcp/udp ``bind``, ``connect``, ``send``).

        The WIT's ``invalid-argument`` rules: the socket's family only, no
        IPv4-mapped IPv6 address; for a remote address no unspecified,
        multicast or broadcast address and no port 0. Then the policy.
        """
        ip, addr = to_sockaddr(value)
        if ip.version != (4 if self.os_family == socket.AF_INET else 6):
            raise SockError("invalid-argument", "the address is of the other family")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            raise SockError("invalid-argument", "IPv4-mapped IPv6 addresses are not supported")
        if remote and (ip.is_unspecified or ip.is_multicast or addr[1] == 0):
            raise SockError("invalid-argument", f"{ip} port {addr[1]} is not a remote address")
        if (
            remote
            and self.os_family == socket.AF_INET
            and ip == ipaddress.IPv4Address("255.255.255.255")
        ):
            raise SockError("invalid-argument", "broadcast is not supported")
        self.net.check(ip, addr[1])
        return addr

    def _bind(self, value: Variant) -> None:
        addr = self._address(value, remote=False)
        try:
            self.sock.bind(addr)
        except OSError as exc:
            raise os_error(exc) from exc

    def local_address(self) -> Variant:
        try:
            return from_sockaddr(self.os_family, self.sock.getsockname())
        except OSError as exc:
            raise os_error(exc) from exc

    # -- options shared by both kinds

    def _get(self, level: int, name: int) -> int:
        try:
            return self.sock.getsockopt(level, name)
        except OSError as exc:
            raise os_error(exc) from exc

    def _set(self, level: int, name: int, value: int) -> None:
        try:
            self.sock.setsockopt(level, name, value)
        except OSError as exc:
            raise os_error(exc) from exc

    def hop_limit(self) -> int:
        if self.os_family == socket.AF_INET:
            return self._get(socket.IPPROTO_IP, socket.IP_TTL)
        return self._get(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)

    def set_hop_limit(self, value: int) -> None:
        if value == 0:
            raise SockError("invalid-argument", "the hop limit must be at least 1")
        if self.os_family == socket.AF_INET:
            self._set(socket.IPPROTO_IP, socket.IP_TTL, value)
        else:
            self._set(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, value)

    def buffer_size(self, send: bool) -> int:
        return self._get(socket.SOL_SOCKET, socket.SO_SNDBUF if send else socket.SO_RCVBUF)

    def set_buffer_size(self, send: bool, value: int) -> None:
        if value == 0:
            raise SockError("invalid-argument", "a buffer size must be at least 1")
        name = socket.SO_SNDBUF if send else socket.SO_RCVBUF
        self._set(socket.SOL_SOCKET, name, min(value, _I32_MAX))


def _seconds(ns: int) -> int:
    """A duration in whole seconds for the kernel's keep-alive options (rounded up)."""
    if ns == 0:
        raise SockError("invalid-argument", "the duration must be positive")
    return min(max(1, math.ceil(ns / 1_000_000_000)), 32767)


# ---------------------------------------------------------------------------
# TCP


class TcpCore(_Core):
    """A TCP socket and its state.

    ``unbound`` -> ``bound`` -> ``listening``, or (bound or not) ->
    ``connecting`` -> ``connected``; a failed connect ends in ``closed``,
    where nothing but the getters works.
    """

    kind = socket.SOCK_STREAM

    def __init__(
        self, net: Net, family: str, sock: socket.socket | None = None, state: str = "unbound"
    ) -> None:
        super().__init__(net, family, sock)
        self.state = state
        self.backlog = DEFAULT_BACKLOG

    # -- bind

    def bind(self, value: Variant) -> None:
        if self.state != "unbound":
            raise SockError("invalid-state", "the socket is already bound")
        self._bind(value)
        self.state = "bound"

    # -- connect

    def start_connect(self, value: Variant) -> bool:
        """Begin connecting; True when connected at once, False when in progress.

        wasi:sockets tcp ``connect`` (0.3) and ``start-connect`` (0.2): not
        when connecting, connected or listening (``invalid-state``).
        """
        if self.state in ("connecting", "connected", "listening", "closed"):
            raise SockError("invalid-state", f"the socket is {self.state}")
        addr = self._address(value, remote=True)
        err = self.sock.connect_ex(addr)
        if err == 0:
            self.state = "connected"
            return True
        if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self.state = "connecting"
            return False
        self.state = "closed"
        raise os_error(OSError(err, errno.errorcode.get(err, str(err))))

    def connect_ready(self) -> bool:
        return self.state != "connecting" or _ready_now(self.sock, readable=False)

    def finish_connect(self) -> None:
        """Complete a connect whose socket became writable."""
        if self.state != "connecting":
            raise SockError("not-in-progress", "no connect is in progress")
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.state = "closed"
            raise os_error(OSError(err, errno.errorcode.get(err, str(err))))
        self.state = "connected"

    async def connect(self, value: Variant) -> None:
        """Connect (on trio)."""
        if self.start_connect(value):
            return
        try:
            await wait_socket(self.sock, readable=False)
        except BaseException:
            # Cancelled half way: the socket can neither finish nor start over.
            self.state = "closed"
            raise
        self.finish_connect()

    # -- listen and accept

    def listen(self, implicit_bind: bool) -> None:
        """wasi:sockets tcp ``listen`` (0.3, which binds an unbound socket) and ``start-listen``."""
        if self.state == "unbound" and implicit_bind:
            any_ip = ipaddress.ip_address("0.0.0.0" if self.family == "ipv4" else "::")
            self.net.check(any_ip, 0)
        elif self.state != "bound":
            raise SockError("invalid-state", f"the socket is {self.state}, not bound")
        try:
            self.sock.listen(self.backlog)
        except OSError as exc:
            raise os_error(exc) from exc
        self.state = "listening"

    def set_listen_backlog_size(self, value: int) -> None:
        if value == 0:
            raise SockError("invalid-argument", "the backlog must be at least 1")
        if self.state in ("connecting", "connected"):
            raise SockError("invalid-state", "the socket is connected")
        self.backlog = min(value, _I32_MAX)
        if self.state == "listening":
            try:
                self.sock.listen(self.backlog)
            except OSError as exc:
                raise os_error(exc) from exc

    def accept_now(self) -> TcpCore | None:
        """A connection waiting to be accepted, or None (never blocks)."""
        if self.state != "listening":
            raise SockError("invalid-state", "the socket is not listening")
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        except OSError as exc:
            raise os_error(exc) from exc
        conn.setblocking(False)
        return TcpCore(self.net, self.family, conn, state="connected")

    async def accept(self) -> TcpCore:
        """The next connection (on trio)."""
        while True:
            core = self.accept_now()
            if core is not None:
                return core
            await wait_socket(self.sock, readable=True)

    def accept_ready(self) -> bool:
        return _ready_now(self.sock, readable=True)

    # -- data (on trio)

    async def receive_some(self, n: int) -> bytes:
        """Up to ``n`` bytes, ``b""`` at the end; raises ``OSError`` on failure."""
        while True:
            try:
                return self.sock.recv(n)
            except BlockingIOError:
                pass
            await wait_socket(self.sock, readable=True)

    async def send_all(self, data: bytes) -> None:
        """Send all of ``data``; raises ``OSError`` on failure."""
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                await wait_socket(self.sock, readable=False)
                continue
            view = view[sent:]

    def shutdown(self, how: int) -> None:
        if self.state != "connected":
            raise SockError("invalid-state", "the socket is not connected")
        try:
            self.sock.shutdown(how)
        except OSError as exc:
            raise os_error(exc) from exc

    # -- addresses and options

    def bound_local_address(self) -> Variant:
        if self.state in ("unbound", "closed"):
            raise SockError("invalid-state", "the socket is not bound")
        return self.local_address()

    def remote_address(self) -> Variant:
        if self.state != "connected":
            raise SockError("invalid-state", "the socket is not connected")
        try:
            return from_sockaddr(self.os_family, self.sock.getpeername())
        except OSError as exc:
            raise os_error(exc) from exc

    def keep_alive_enabled(self) -> bool:
        return self._get(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0

    def set_keep_alive_enabled(self, value: bool) -> None:
        self._set(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(value))

    def keep_alive_idle_time(self) -> int:
        return self._get(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) * 1_000_000_000

    def set_keep_alive_idle_time(self, value: int) -> None:
        self._set(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, _seconds(value))

    def keep_alive_interval(self) -> int:
        return self._get(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) * 1_000_000_000

    def set_keep_alive_interval(self, value: int) -> None:
        self._set(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, _seconds(value))

    def keep_alive_count(self) -> int:
        return self._get(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)

    def set_keep_alive_count(self, value: int) -> None:
        if value == 0:
            raise SockError("invalid-argument", "the count must be at least 1")
        self._set(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, min(value, 127))


# ---------------------------------------------------------------------------
# UDP


class UdpCore(_Core):
    """A UDP socket. "Connected" is the host's own record of the remote address.

    The OS socket stays unconnected (a UDP socket cannot portably be
    disconnected): sends go to the recorded address, and datagrams from
    anyone else are dropped while it is set.
    """

    kind = socket.SOCK_DGRAM

    def __init__(self, net: Net, family: str) -> None:
        super().__init__(net, family)
        self.bound = False
        self.remote: tuple[Any, ...] | None = None
        self.remote_value: Variant | None = None

    def bind(self, value: Variant) -> None:
        if self.bound:
            raise SockError("invalid-state", "the socket is already bound")
        self._bind(value)
        self.bound = True

    def _implicit_bind(self, remote: tuple[Any, ...]) -> None:
        """Bind before the first send or connect, as the OS would, but no wider.

        Talking to a loopback peer binds the loopback address, so a guest
        allowed only loopback never gets a socket that receives from
        outside; any other peer binds the wildcard address.
        """
        if self.bound:
            return
        if ipaddress.ip_address(remote[0]).is_loopback:
            local = remote[0]
        else:
            local = "0.0.0.0" if self.family == "ipv4" else "::"
        try:
            self.sock.bind((local, 0))
        except OSError as exc:
            raise os_error(exc) from exc
        self.bound = True

    def connect(self, value: Variant) -> None:
        addr = self._address(value, remote=True)
        self._implicit_bind(addr)
        self.remote = addr
        self.remote_value = value

    def disconnect(self) -> None:
        if self.remote is None:
            raise SockError("invalid-state", "the socket is not connected")
        self.remote = None
        self.remote_value = None

    def destination(self, value: Variant | None) -> tuple[Any, ...]:
        """Where a datagram goes: ``value`` (checked) or the connected address.

        wasi:sockets udp ``send``: no address on an unconnected socket, or
        another address than the connected one, is ``invalid-argument``.
        """
        if value is None:
            if self.remote is None:
                raise SockError("invalid-argument", "no remote address and not connected")
            return self.remote
        addr = self._address(value, remote=True)
        if self.remote is not None and addr[:2] != self.remote[:2]:
            raise SockError("invalid-argument", "the socket is connected to another address")
        return addr

    def send_now(self, data: bytes, addr: tuple[Any, ...]) -> bool:
        """Send one datagram if the socket takes it now; False when it would block."""
        if len(data) > MAX_DATAGRAM:
            raise SockError("datagram-too-large", f"{len(data)} bytes")
        self._implicit_bind(addr)
        try:
            self.sock.sendto(data, addr)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise os_error(exc) from exc
        return True

    async def send(self, data: bytes, value: Variant | None) -> None:
        addr = self.destination(value)
        while not self.send_now(data, addr):
            await wait_socket(self.sock, readable=False)

    def receive_now(self) -> tuple[bytes, Variant] | None:
        """One datagram if one is waiting, else None."""
        if not self.bound:
            raise SockError("invalid-state", "the socket is not bound")
        while True:
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return None
            except OSError as exc:
                raise os_error(exc) from exc
            if self.remote is not None and addr[:2] != self.remote[:2]:
                continue  # not from the connected peer
            return data, from_sockaddr(self.os_family, addr)

    async def receive(self) -> tuple[bytes, Variant]:
        while True:
            got = self.receive_now()
            if got is not None:
                return got
            await wait_socket(self.sock, readable=True)

    def readable_now(self) -> bool:
        return _ready_now(self.sock, readable=True)

    def writable_now(self) -> bool:
        return _ready_now(self.sock, readable=False)

    def bound_local_address(self) -> Variant:
        if not self.bound:
            raise SockError("invalid-state", "the socket is not bound")
        return self.local_address()

    def remote_address(self) -> Variant:
        if self.remote is None:
            raise SockError("invalid-state", "the socket is not connected")
        return from_sockaddr(self.os_family, self.remote)


# ---------------------------------------------------------------------------
# Name lookup

_GAI_CODES = {
    socket.EAI_NONAME: "name-unresolvable",
    socket.EAI_AGAIN: "temporary-resolver-failure",
}


def literal_address(name: str) -> IPAddress | None:
    """``name`` as an IP address literal (IPv6 in brackets or not), else None."""
    text = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check_name(name: str) -> None:
    """Refuse what is not a host name (``invalid-argument``) before asking a resolver."""
    if not name or len(name) > 253 or any(c in name for c in " /:@[]\\\x00"):
        raise SockError("invalid-argument", f"{name!r} is not a host name")
    try:
        name.encode("idna")
    except UnicodeError:
        raise SockError("invalid-argument", f"{name!r} is not a host name") from None


async def resolve(name: str, getaddrinfo: Callable[..., Any] | None = None) -> list[IPAddress]:
    """The addresses of ``name`` (on trio), each once, in the resolver's order."""
    literal = literal_address(name)
    if literal is not None:
        await trio.lowlevel.checkpoint()
        return [literal]
    check_name(name)
    lookup = getaddrinfo or trio.socket.getaddrinfo
    try:
        infos = await lookup(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        code = _GAI_CODES.get(exc.errno or 0, "permanent-resolver-failure")
        raise SockError(code, str(exc)) from exc
    except UnicodeError as exc:
        raise SockError("invalid-argument", str(exc)) from exc
    out: list[IPAddress] = []
    for family, *_, addr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(addr[0]).partition("%")[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise SockError("name-unresolvable", f"{name} has no IP address")
    return out
