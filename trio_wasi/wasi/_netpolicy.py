"""The network policy of wasi:sockets: which socket addresses a guest may bind or reach.

A policy is a list of address patterns, each ``HOST:PORT``:

* ``HOST`` is ``*`` (any address of either family), an IPv4 address
  (``127.0.0.1``), an IPv4 network (``10.0.0.0/8``), or an IPv6 address or
  network in brackets (``[::1]``, ``[fd00::/8]``);
* ``PORT`` is ``*`` (any port, port 0 included), a number (``8080``) or an
  inclusive range (``8000-8099``);
* a bare ``*`` is ``*:*``.

An address is allowed when any pattern matches it. The same list governs
``bind`` (the local address, port 0 for "any free port") and ``connect`` and
UDP sends (the remote address). ``allow_all`` (``inherit_network``) matches
everything. Patterns are checked when the policy is built, so a mistyped one
fails the configuration, not a guest's call later.

Incoming traffic is not filtered: a listener accepts any peer and a bound
UDP socket receives from anyone (a "connected" one only from its peer); the
policy decided where the socket could be bound. Creating a socket is refused
outright when no address at all is allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .._frozen import frozen

__all__ = ["AddressPattern", "NetworkPolicy", "parse_pattern"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@frozen
class AddressPattern:
    """One parsed pattern: a network (``None`` for any address) and a port range."""

    network: IPNetwork | None
    low: int
    high: int

    def matches(self, address: IPAddress, port: int) -> bool:
        if not self.low <= port <= self.high:
            return False
        if self.network is None:
            return True
        return address.version == self.network.version and address in self.network


def _port_range(text: str, pattern: str) -> tuple[int, int]:
    if text == "*":
        return 0, 65535
    low_text, dash, high_text = text.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if dash else low
    except ValueError:
        raise ValueError(f"address pattern {pattern!r}: bad port {text!r}") from None
    if not 0 <= low <= high <= 65535:
        raise ValueError(f"address pattern {pattern!r}: port out of range {text!r}")
    return low, high


def parse_pattern(pattern: str) -> AddressPattern:
    """Parse one ``HOST:PORT`` pattern (see the module docstring); ``ValueError`` if malformed."""
    text = pattern.strip()
    if text == "*":
        return AddressPattern(None, 0, 65535)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"address pattern {pattern!r}: expected [IPv6]:PORT")
        port = rest[1:]
        version = 6
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise ValueError(f"address pattern {pattern!r}: expected HOST:PORT")
        version = 4
    low, high = _port_range(port, pattern)
    if host == "*":
        return AddressPattern(None, low, high)
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise ValueError(f"address pattern {pattern!r}: bad address {host!r}") from None
    if network.version != version:
        raise ValueError(f"address pattern {pattern!r}: IPv6 addresses go in brackets")
    return AddressPattern(network, low, high)


@frozen
class NetworkPolicy:
    """What a guest's sockets may do: allowed address patterns, and name lookup."""

    patterns: tuple[AddressPattern, ...] = ()
    allow_all: bool = False
    allow_name_lookup: bool = False

    @classmethod
    def build(
        cls, patterns: Iterable[str], *, allow_all: bool = False, allow_name_lookup: bool = False
    ) -> NetworkPolicy:
        return cls(tuple(parse_pattern(p) for p in patterns), allow_all, allow_name_lookup)

    @property
    def any_allowed(self) -> bool:
        """Whether any address at all is allowed (sockets are refused otherwise)."""
        return self.allow_all or bool(self.patterns)

    def allows(self, address: IPAddress, port: int) -> bool:
        """Whether a socket may bind or connect to ``address`` at ``port``."""
        if self.allow_all:
            return True
        return any(p.matches(address, port) for p in self.patterns)
