"""wasi:sockets 0.3.0 and 0.2.0 over one socket core (``_sockcore``), under a network policy.

The policy comes from :class:`WasiConfig` (``allowed_addresses``,
``inherit_network``, ``allow_ip_name_lookup``; grammar in ``_netpolicy``):
creating a socket is ``access-denied`` when no address at all is allowed,
binding, connecting and sending are ``access-denied`` for an address no
pattern allows, and name lookups are ``access-denied`` unless allowed. A
refusal is always the interface's error code, never a trap.

0.3.0 (``wasi:sockets/types``, ``ip-name-lookup``): ``connect``, UDP
``send``/``receive`` and ``resolve-addresses`` are ``async`` and wait on
trio; ``listen`` returns a ``stream<tcp-socket>`` that accepts on demand;
``send`` drains the guest's ``stream<u8>`` into the socket and then shuts
the sending side down; ``receive`` returns a ``stream<u8>`` read on demand
and a future resolved at its end. Each may be called once per connection;
another call gets ``invalid-state`` in its future.

0.2.0 (``network``, ``instance-network``, ``tcp``, ``tcp-create-socket``,
``udp``, ``udp-create-socket``, ``ip-name-lookup``): the ``start-``/``finish-``
pairs make their system call in ``start-`` (none of them blocks) and report
``not-in-progress``/``would-block`` as the spec asks; TCP streams are the
wasi:io pumped streams of ``_io`` over the socket; pollables wait on trio.

A socket and the streams made from it share the OS socket: it is closed when
the guest has dropped all of them, whichever goes last.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .._abi._values import Err, Ok, Variant
from .._hostdefs import RELEASE_GRACE_SECONDS, HostContext, with_context
from ._io import (
    FnReadiness,
    Pollable,
    PumpedInputStream,
    PumpedOutputStream,
    PumpedSource,
)
from ._netpolicy import IPAddress, NetworkPolicy
from ._sockcore import (
    CHUNK,
    Net,
    SockError,
    TcpCore,
    UdpCore,
    check_name,
    ip_address_value,
    literal_address,
    os_error,
    resolve,
    wait_socket,
)

if TYPE_CHECKING:
    from .._linker import Linker
    from .._run._hostvalues import StreamReceiver
    from ._config import WasiConfig

__all__ = ["add_to_linker", "policy_of"]

# The error-code cases of each generation (the WIT's).
CODES_03 = frozenset(
    "access-denied not-supported invalid-argument out-of-memory timeout invalid-state "
    "address-not-bindable address-in-use remote-unreachable connection-refused "
    "connection-broken connection-reset connection-aborted datagram-too-large".split()
)
LOOKUP_CODES_03 = frozenset(
    "access-denied invalid-argument name-unresolvable temporary-resolver-failure "
    "permanent-resolver-failure".split()
)
CODES_02 = frozenset(
    "unknown access-denied not-supported invalid-argument out-of-memory timeout "
    "concurrency-conflict not-in-progress would-block invalid-state new-socket-limit "
    "address-not-bindable address-in-use remote-unreachable connection-refused "
    "connection-reset connection-aborted datagram-too-large name-unresolvable "
    "temporary-resolver-failure permanent-resolver-failure".split()
)
# 0.3 has no "not in progress" or "concurrency conflict": both are a wrong state.
_TO_03 = {"not-in-progress": "invalid-state", "concurrency-conflict": "invalid-state"}
_TO_02 = {"connection-broken": "connection-reset", "other": "unknown"}


def policy_of(config: WasiConfig) -> NetworkPolicy:
    """The network policy ``config`` grants (``ValueError`` for a malformed pattern)."""
    return NetworkPolicy.build(
        config.allowed_addresses,
        allow_all=config.inherit_network,
        allow_name_lookup=config.allow_ip_name_lookup,
    )


def _err03(exc: SockError, cases: frozenset[str] = CODES_03) -> Err:
    code = _TO_03.get(exc.code, exc.code)
    if code in cases:
        return Err(Variant(code))
    return Err(Variant("other", exc.message or exc.code))


def _err02(exc: SockError) -> Err:
    code = _TO_02.get(exc.code, exc.code)
    return Err(code if code in CODES_02 else "unknown")


def _r03(fn: Callable[..., Any], *args: Any) -> Ok | Err:
    try:
        return Ok(fn(*args))
    except SockError as exc:
        return _err03(exc)


def _r02(fn: Callable[..., Any], *args: Any) -> Ok | Err:
    try:
        return Ok(fn(*args))
    except SockError as exc:
        return _err02(exc)


def _future(value: Ok | Err) -> trio.MemoryReceiveChannel[Any]:
    """A future already resolved to ``value``."""
    send, receive = trio.open_memory_channel[Any](1)
    send.send_nowait(value)
    send.close()
    return receive


def _ended() -> trio.MemoryReceiveChannel[Any]:
    """A stream that ends at once."""
    send, receive = trio.open_memory_channel[Any](0)
    send.close()
    return receive


class _Options:
    """What both generations' sockets share: the core, and releasing it."""

    core: TcpCore | UdpCore

    async def aclose(self) -> None:
        """The guest dropped the socket."""
        await self.core.release()


_T = TypeVar("_T")
_Read = Callable[[Any], Any]
_Write = Callable[[Any, Any], None]


def _buffer_size(send: bool) -> tuple[_Read, _Write]:
    return (
        lambda core: core.buffer_size(send=send),
        lambda core, value: core.set_buffer_size(send, value),
    )


def _core_option(name: str, *, readable: bool = True) -> tuple[_Read | None, _Write]:
    """An option the core reads with ``name()`` and sets with ``set_name(value)``."""
    setter = "set_" + name
    return (
        operator.methodcaller(name) if readable else None,
        lambda core, value: getattr(core, setter)(value),
    )


# Socket options and addresses, by their WIT name in snake case: how the core
# reads each and how it sets it (None where WIT has no such method). Both
# generations and both protocols expose the same operations under names that
# differ only by a `get-` prefix (0.3) and `unicast-` for UDP, so one table per
# protocol makes all four classes' methods.
_BOTH: dict[str, tuple[_Read | None, _Write | None]] = {
    "local_address": (operator.methodcaller("bound_local_address"), None),
    "remote_address": (operator.methodcaller("remote_address"), None),
    "receive_buffer_size": _buffer_size(False),
    "send_buffer_size": _buffer_size(True),
}
_TCP_OPTIONS: dict[str, tuple[_Read | None, _Write | None]] = {
    **_BOTH,
    "keep_alive_enabled": _core_option("keep_alive_enabled"),
    "keep_alive_idle_time": _core_option("keep_alive_idle_time"),
    "keep_alive_interval": _core_option("keep_alive_interval"),
    "keep_alive_count": _core_option("keep_alive_count"),
    "hop_limit": _core_option("hop_limit"),
    "listen_backlog_size": _core_option("listen_backlog_size", readable=False),
}
_UDP_OPTIONS: dict[str, tuple[_Read | None, _Write | None]] = {
    **_BOTH,
    "unicast_hop_limit": _core_option("hop_limit"),
}


def _option_methods(
    options: dict[str, tuple[_Read | None, _Write | None]],
    result: Callable[..., Ok | Err],
    get_prefix: str,
) -> Callable[[type[_T]], type[_T]]:
    """Add a getter (``get_prefix`` + name) and a ``set_`` method per option to a socket class.

    ``result`` turns the core's answer or its ``SockError`` into that generation's
    ``result`` value (``_r03`` or ``_r02``).
    """

    def getter(name: str, read: _Read) -> Callable[[Any], Ok | Err]:
        def get(self: Any) -> Ok | Err:
            return result(read, self.core)

        get.__name__ = get.__qualname__ = get_prefix + name
        return get

    def setter(name: str, write: _Write) -> Callable[[Any, Any], Ok | Err]:
        def set_(self: Any, value: Any) -> Ok | Err:
            return result(write, self.core, value)

        set_.__name__ = set_.__qualname__ = "set_" + name
        return set_

    def install(cls: type[_T]) -> type[_T]:
        for name, (read, write) in options.items():
            if read is not None:
                setattr(cls, get_prefix + name, getter(name, read))
            if write is not None:
                setattr(cls, "set_" + name, setter(name, write))
        return cls

    return install


# ===========================================================================
# 0.3.0


class _ReceiveBytes03(trio.abc.ReceiveChannel[bytes]):
    """The ``stream<u8>`` of ``tcp-socket.receive``: read on demand, then its future.

    The runtime closes a host stream only when the guest drops it early, so
    the stream lets go of the socket itself when it ends.
    """

    def __init__(self, core: TcpCore, done: trio.MemorySendChannel[Any]) -> None:
        core.retain()
        self._core = core
        self._done = done
        self._ended = False

    async def _end(self, value: Ok | Err) -> None:
        self._ended = True
        try:
            self._done.send_nowait(value)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        self._done.close()
        await self._core.release()

    async def receive(self) -> bytes:
        if self._ended:
            raise trio.EndOfChannel
        try:
            data = await self._core.receive_some(CHUNK)
        except OSError as exc:
            await self._end(_err03(os_error(exc)))
            raise trio.EndOfChannel from None
        if not data:
            await self._end(Ok())
            raise trio.EndOfChannel
        return data

    async def aclose(self) -> None:
        if self._ended:
            await trio.lowlevel.checkpoint()
            return
        # The guest stopped reading: nothing more will be received.
        try:
            self._core.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        await self._end(Ok())


async def _send_task(
    core: TcpCore, data: StreamReceiver, done: trio.MemorySendChannel[Any]
) -> None:
    """Drain the guest's ``stream<u8>`` into the socket, shut the sending side, resolve."""
    result: Ok | Err = Ok()
    async with done:
        try:
            async for chunk in data:
                await core.send_all(bytes(chunk))
            core.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            result = _err03(os_error(exc))
        finally:
            await data.aclose()
            await core.release()
        done.send_nowait(result)


class _Accept03(trio.abc.ReceiveChannel[Any]):
    """The ``stream<tcp-socket>`` of ``listen``: one accepted connection per item."""

    def __init__(self, owner: TcpSocket03) -> None:
        owner.core.retain()
        self._owner = owner
        self._ended = False

    async def _end(self) -> None:
        if not self._ended:
            self._ended = True
            await self._owner.core.release()

    async def receive(self) -> Any:
        while not self._ended:
            try:
                core = await self._owner.core.accept()
            except SockError as exc:
                if exc.code == "connection-aborted":
                    continue  # the peer gave up before we accepted: wait for the next
                await self._end()
                break
            return type(self._owner)(core)
        raise trio.EndOfChannel

    async def aclose(self) -> None:
        await self._end()
        await trio.lowlevel.checkpoint()


@_option_methods(_TCP_OPTIONS, _r03, "get_")
class TcpSocket03(_Options):
    """``wasi:sockets/types@0.3.0.tcp-socket``."""

    core: TcpCore

    def __init__(self, core: TcpCore) -> None:
        self.core = core
        self._sending = False
        self._receiving = False

    @classmethod
    def _create(cls, policy: NetworkPolicy, ctx: HostContext, address_family: str) -> Ok | Err:
        net = Net.of(ctx, policy)
        try:
            net.check_create(address_family)
            return Ok(cls(TcpCore(net, address_family)))
        except SockError as exc:
            return _err03(exc)

    def bind(self, local_address: Variant) -> Ok | Err:
        return _r03(self.core.bind, local_address)

    async def connect(self, remote_address: Variant) -> Ok | Err:
        try:
            await self.core.connect(remote_address)
            return Ok()
        except SockError as exc:
            return _err03(exc)

    def listen(self) -> Ok | Err:
        try:
            self.core.listen(implicit_bind=True)
        except SockError as exc:
            return _err03(exc)
        return Ok(_Accept03(self))

    def send(self, data: StreamReceiver) -> Any:
        send, receive = trio.open_memory_channel[Any](1)
        if self._sending or self.core.state != "connected":

            async def refuse() -> None:
                async with send:
                    await data.aclose()
                    send.send_nowait(Err(Variant("invalid-state")))

            self.core.net.context.start_soon(refuse)
            return receive
        self._sending = True
        self.core.retain()
        self.core.net.context.start_soon(_send_task, self.core, data, send)
        return receive

    def receive(self) -> tuple[Any, Any]:
        if self._receiving or self.core.state != "connected":
            return _ended(), _future(Err(Variant("invalid-state")))
        self._receiving = True
        send, receive = trio.open_memory_channel[Any](1)
        return _ReceiveBytes03(self.core, send), receive

    def get_is_listening(self) -> bool:
        return self.core.state == "listening"

    def get_address_family(self) -> str:
        return self.core.family


@_option_methods(_UDP_OPTIONS, _r03, "get_")
class UdpSocket03(_Options):
    """``wasi:sockets/types@0.3.0.udp-socket``."""

    core: UdpCore

    def __init__(self, core: UdpCore) -> None:
        self.core = core

    @classmethod
    def _create(cls, policy: NetworkPolicy, ctx: HostContext, address_family: str) -> Ok | Err:
        net = Net.of(ctx, policy)
        try:
            net.check_create(address_family)
            return Ok(cls(UdpCore(net, address_family)))
        except SockError as exc:
            return _err03(exc)

    def bind(self, local_address: Variant) -> Ok | Err:
        return _r03(self.core.bind, local_address)

    def connect(self, remote_address: Variant) -> Ok | Err:
        return _r03(self.core.connect, remote_address)

    def disconnect(self) -> Ok | Err:
        return _r03(self.core.disconnect)

    async def send(self, data: bytes, remote_address: Variant | None) -> Ok | Err:
        try:
            await self.core.send(bytes(data), remote_address)
            return Ok()
        except SockError as exc:
            return _err03(exc)

    async def receive(self) -> Ok | Err:
        try:
            return Ok(await self.core.receive())
        except SockError as exc:
            return _err03(exc)

    def get_address_family(self) -> str:
        return self.core.family


def _with_create(cls: type, policy: NetworkPolicy) -> type:
    """``cls`` with its static ``create`` bound to ``policy`` (one class per linker)."""

    @with_context
    def create(ctx: HostContext, address_family: str) -> Ok | Err:
        return cls._create.__func__(sub, policy, ctx, address_family)  # type: ignore[attr-defined,no-any-return]

    sub = type(cls.__name__, (cls,), {"create": staticmethod(create)})
    return sub


class NameLookup03:
    """``wasi:sockets/ip-name-lookup@0.3.0``."""

    def __init__(self, policy: NetworkPolicy, context: HostContext) -> None:
        self.policy = policy

    async def resolve_addresses(self, name: str) -> Ok | Err:
        if not self.policy.allow_name_lookup:
            return Err(Variant("access-denied"))
        try:
            found = await resolve(name)
        except SockError as exc:
            return _err03(exc, LOOKUP_CODES_03)
        return Ok([ip_address_value(ip) for ip in found])


# ===========================================================================
# 0.2.0


class Network:
    """``wasi:sockets/network@0.2.0.network``: a token; the policy lives in the instance."""


class NetworkInterface:
    Network = Network


class InstanceNetwork:
    @staticmethod
    def instance_network() -> Network:
        return Network()


class SocketInputStream(PumpedInputStream):
    """A TCP connection's receiving side as a wasi:io input stream."""

    def __init__(self, core: TcpCore) -> None:
        core.retain()
        self._core = core
        super().__init__(PumpedSource(core.net.context, core.receive_some))

    async def aclose(self) -> None:
        await self._core.release()


class SocketOutputStream(PumpedOutputStream):
    """A TCP connection's sending side as a wasi:io output stream."""

    def __init__(self, core: TcpCore) -> None:
        core.retain()
        self._core = core
        super().__init__(core.net.context, core.send_all)

    async def aclose(self) -> None:
        # What write() took still goes out before the connection may close.
        sent = trio.Event()
        self._end_after_flush(sent.set)
        with trio.move_on_after(RELEASE_GRACE_SECONDS):
            await sent.wait()
        await self._core.release()


_SHUTDOWN = {"receive": socket.SHUT_RD, "send": socket.SHUT_WR, "both": socket.SHUT_RDWR}


@_option_methods(_TCP_OPTIONS, _r02, "")
class TcpSocket02(_Options):
    """``wasi:sockets/tcp@0.2.0.tcp-socket``."""

    core: TcpCore

    def __init__(self, core: TcpCore) -> None:
        self.core = core
        self._pending: str | None = None  # "bind", "connect" or "listen" between start and finish
        self._output: SocketOutputStream | None = None

    def _start(self, what: str, fn: Callable[..., Any], *args: Any) -> Ok | Err:
        if self._pending is not None:
            return Err("concurrency-conflict")
        result = _r02(fn, *args)
        if isinstance(result, Ok):
            self._pending = what
        return Ok() if isinstance(result, Ok) else result

    def _finish(self, what: str) -> Ok | Err:
        if self._pending != what:
            return Err("not-in-progress")
        self._pending = None
        return Ok()

    def _streams(self) -> tuple[SocketInputStream, SocketOutputStream]:
        self._output = SocketOutputStream(self.core)
        return SocketInputStream(self.core), self._output

    def start_bind(self, network: Network, local_address: Variant) -> Ok | Err:
        return self._start("bind", self.core.bind, local_address)

    def finish_bind(self) -> Ok | Err:
        return self._finish("bind")

    def start_connect(self, network: Network, remote_address: Variant) -> Ok | Err:
        return self._start("connect", self.core.start_connect, remote_address)

    def finish_connect(self) -> Ok | Err:
        """tcp.wit ``finish-connect``: ``would-block`` until the connect completes."""
        if self._pending != "connect":
            return Err("not-in-progress")
        if self.core.state == "connecting":
            if not self.core.connect_ready():
                return Err("would-block")
            try:
                self.core.finish_connect()
            except SockError as exc:
                self._pending = None
                return _err02(exc)
        self._pending = None
        return Ok(self._streams())

    def start_listen(self) -> Ok | Err:
        return self._start("listen", self.core.listen, False)

    def finish_listen(self) -> Ok | Err:
        return self._finish("listen")

    def accept(self) -> Ok | Err:
        try:
            core = self.core.accept_now()
        except SockError as exc:
            return _err02(exc)
        if core is None:
            return Err("would-block")
        conn = type(self)(core)
        return Ok((conn, *conn._streams()))

    def is_listening(self) -> bool:
        return self.core.state == "listening"

    def address_family(self) -> str:
        return self.core.family

    def subscribe(self) -> Pollable:
        core = self.core

        def ready() -> bool:
            if core.state == "connecting":
                return core.connect_ready()
            if core.state == "listening":
                return core.accept_ready()
            return True

        async def wait() -> None:
            if core.state in ("connecting", "listening"):
                await wait_socket(core.sock, readable=core.state == "listening")
            else:
                await trio.lowlevel.checkpoint()

        return Pollable(FnReadiness(ready, wait))

    def shutdown(self, shutdown_type: str) -> Ok | Err:
        how = _SHUTDOWN[shutdown_type]
        out = self._output
        if how == socket.SHUT_RD or out is None or self.core.state != "connected":
            return _r02(self.core.shutdown, how)
        if how == socket.SHUT_RDWR:
            result = _r02(self.core.shutdown, socket.SHUT_RD)
            if isinstance(result, Err):
                return result
        # The output stream takes no more writes at once (tcp.wit), but what
        # it took before is sent first: the send side shuts after that.
        out._end_after_flush(self._shut_send)
        return Ok()

    def _shut_send(self) -> None:
        # Nobody is left to tell: the guest's shutdown call has returned.
        with contextlib.suppress(SockError):
            self.core.shutdown(socket.SHUT_WR)


class TcpInterface:
    TcpSocket = TcpSocket02


class TcpCreateSocket02:
    """``wasi:sockets/tcp-create-socket@0.2.0``."""

    def __init__(self, policy: NetworkPolicy, context: HostContext) -> None:
        self.net = Net.of(context, policy)

    def create_tcp_socket(self, address_family: str) -> Ok | Err:
        try:
            self.net.check_create(address_family)
            return Ok(TcpSocket02(TcpCore(self.net, address_family)))
        except SockError as exc:
            return _err02(exc)


class IncomingDatagramStream:
    """``udp.incoming-datagram-stream``."""

    def __init__(self, core: UdpCore) -> None:
        core.retain()
        self.core = core

    def receive(self, max_results: int) -> Ok | Err:
        out: list[dict[str, Any]] = []
        while len(out) < max_results:
            try:
                got = self.core.receive_now()
            except SockError as exc:
                if out:
                    break
                return _err02(exc)
            if got is None:
                break
            out.append({"data": got[0], "remote-address": got[1]})
        return Ok(out)

    def subscribe(self) -> Pollable:
        core = self.core
        return Pollable(
            FnReadiness(core.readable_now, functools.partial(wait_socket, core.sock, True))
        )

    async def aclose(self) -> None:
        await self.core.release()


class OutgoingDatagramStream:
    """``udp.outgoing-datagram-stream``."""

    PERMIT = 16

    def __init__(self, core: UdpCore) -> None:
        core.retain()
        self.core = core
        self._permit = 0

    def check_send(self) -> Ok | Err:
        """udp.wit ``check-send``: how many datagrams the next ``send`` may carry."""
        self._permit = self.PERMIT if self.core.writable_now() else 0
        return Ok(self._permit)

    def send(self, datagrams: list[dict[str, Any]]) -> Ok | Err:
        """udp.wit ``send``: as many as go out now; an error only if the first fails.

        More datagrams than ``check-send`` permitted is ``invalid-argument``
        (the WIT forbids it; a refusal rather than a trap).
        """
        if len(datagrams) > self._permit:
            return Err("invalid-argument")
        sent = 0
        for dg in datagrams:
            try:
                addr = self.core.destination(dg["remote-address"])
                if not self.core.send_now(bytes(dg["data"]), addr):
                    break
            except SockError as exc:
                if sent:
                    break
                return _err02(exc)
            sent += 1
        self._permit -= sent
        return Ok(sent)

    def subscribe(self) -> Pollable:
        core = self.core
        return Pollable(
            FnReadiness(core.writable_now, functools.partial(wait_socket, core.sock, False))
        )

    async def aclose(self) -> None:
        await self.core.release()


@_option_methods(_UDP_OPTIONS, _r02, "")
class UdpSocket02(_Options):
    """``wasi:sockets/udp@0.2.0.udp-socket``."""

    core: UdpCore

    def __init__(self, core: UdpCore) -> None:
        self.core = core
        self._binding = False

    def start_bind(self, network: Network, local_address: Variant) -> Ok | Err:
        if self._binding:
            return Err("concurrency-conflict")
        result = _r02(self.core.bind, local_address)
        self._binding = isinstance(result, Ok)
        return result

    def finish_bind(self) -> Ok | Err:
        if not self._binding:
            return Err("not-in-progress")
        self._binding = False
        return Ok()

    def stream(self, remote_address: Variant | None) -> Ok | Err:
        """udp.wit ``stream``: (re)connect or disconnect, and new datagram streams."""
        if not self.core.bound:
            return Err("invalid-state")
        if remote_address is not None:
            result = _r02(self.core.connect, remote_address)
            if isinstance(result, Err):
                return result
        else:
            self.core.remote = self.core.remote_value = None
        return Ok((IncomingDatagramStream(self.core), OutgoingDatagramStream(self.core)))

    def address_family(self) -> str:
        return self.core.family

    def subscribe(self) -> Pollable:
        return Pollable(FnReadiness(lambda: True, trio.lowlevel.checkpoint))


class UdpInterface:
    UdpSocket = UdpSocket02
    IncomingDatagramStream = IncomingDatagramStream
    OutgoingDatagramStream = OutgoingDatagramStream


class UdpCreateSocket02:
    """``wasi:sockets/udp-create-socket@0.2.0``."""

    def __init__(self, policy: NetworkPolicy, context: HostContext) -> None:
        self.net = Net.of(context, policy)

    def create_udp_socket(self, address_family: str) -> Ok | Err:
        try:
            self.net.check_create(address_family)
            return Ok(UdpSocket02(UdpCore(self.net, address_family)))
        except SockError as exc:
            return _err02(exc)


class ResolveAddressStream:
    """``ip-name-lookup@0.2.0.resolve-address-stream``: results of a lookup run on trio."""

    def __init__(self, found: list[IPAddress] | None = None) -> None:
        self._lock = threading.Lock()
        self._found = list(found or [])
        self._error: SockError | None = None
        self._done = found is not None
        self._event: trio.Event | None = None  # touched on trio only

    async def run(self, name: str, lookup: Callable[[str], Awaitable[list[IPAddress]]]) -> None:
        try:
            found = await lookup(name)
            with self._lock:
                self._found = found
        except SockError as exc:
            with self._lock:
                self._error = exc
        finally:
            with self._lock:
                self._done = True
            if self._event is not None:
                self._event.set()

    def resolve_next_address(self) -> Ok | Err:
        with self._lock:
            if not self._done:
                return Err("would-block")
            if self._error is not None:
                return _err02(self._error)
            return Ok(ip_address_value(self._found.pop(0)) if self._found else None)

    def ready(self) -> bool:
        with self._lock:
            return self._done

    async def wait(self) -> None:
        while not self.ready():
            if self._event is None:
                self._event = trio.Event()
            await self._event.wait()

    def subscribe(self) -> Pollable:
        return Pollable(FnReadiness(self.ready, self.wait))


class NameLookup02:
    """``wasi:sockets/ip-name-lookup@0.2.0``."""

    ResolveAddressStream = ResolveAddressStream

    def __init__(self, policy: NetworkPolicy, context: HostContext) -> None:
        self.policy = policy
        self.context = context

    def resolve_addresses(self, network: Network, name: str) -> Ok | Err:
        if not self.policy.allow_name_lookup:
            return Err("access-denied")
        literal = literal_address(name)
        if literal is not None:
            return Ok(ResolveAddressStream([literal]))
        try:
            check_name(name)
        except SockError as exc:
            return _err02(exc)
        stream = ResolveAddressStream()
        self.context.start_soon(stream.run, name, resolve)
        return Ok(stream)


# ===========================================================================
# Registration


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:sockets 0.3.0 and 0.2.0 under the policy ``config`` grants."""
    policy = policy_of(config)

    def per(cls: type) -> Any:
        return functools.partial(cls, policy)

    types03 = type(
        "SocketTypes",
        (),
        {
            "TcpSocket": _with_create(TcpSocket03, policy),
            "UdpSocket": _with_create(UdpSocket03, policy),
        },
    )
    linker.define_interface("wasi:sockets/types@0.3.0", types03)
    linker.define_interface("wasi:sockets/ip-name-lookup@0.3.0", factory=per(NameLookup03))
    linker.define_interface("wasi:sockets/network@0.2.0", NetworkInterface)
    linker.define_interface("wasi:sockets/instance-network@0.2.0", InstanceNetwork)
    linker.define_interface("wasi:sockets/tcp@0.2.0", TcpInterface)
    linker.define_interface("wasi:sockets/tcp-create-socket@0.2.0", factory=per(TcpCreateSocket02))
    linker.define_interface("wasi:sockets/udp@0.2.0", UdpInterface)
    linker.define_interface("wasi:sockets/udp-create-socket@0.2.0", factory=per(UdpCreateSocket02))
    linker.define_interface("wasi:sockets/ip-name-lookup@0.2.0", factory=per(NameLookup02))
