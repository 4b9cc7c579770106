"""WIT socket addresses and stdlib socket addresses convert both ways without loss."""

from __future__ import annotations

import ipaddress
import socket

from hypothesis import given
from hypothesis import strategies as st

from trio_wasi import Variant
from trio_wasi.wasi._sockcore import (
    from_sockaddr,
    ip_address_value,
    literal_address,
    to_sockaddr,
)

u8 = st.integers(0, 255)
u16 = st.integers(0, 65535)
u32 = st.integers(0, (1 << 32) - 1)

ipv4 = st.builds(
    lambda port, a: Variant("ipv4", {"port": port, "address": a}),
    u16,
    st.tuples(u8, u8, u8, u8),
)
ipv6 = st.builds(
    lambda port, flow, a, scope: Variant(
        "ipv6", {"port": port, "flow-info": flow, "address": a, "scope-id": scope}
    ),
    u16,
    st.integers(0, (1 << 20) - 1),  # the flow label is 20 bits
    st.tuples(u16, u16, u16, u16, u16, u16, u16, u16),
    u32,
)


@given(st.one_of(ipv4, ipv6))
def test_socket_addresses_round_trip(value: Variant) -> None:
    ip, addr = to_sockaddr(value)
    family = socket.AF_INET if value.case == "ipv4" else socket.AF_INET6
    assert from_sockaddr(family, addr) == value
    assert ip_address_value(ip).value == value.value["address"]
    # The stdlib form is what socket.bind and sendto take: a text address.
    assert ipaddress.ip_address(addr[0]) == ip


def test_known_addresses() -> None:
    assert to_sockaddr(Variant("ipv4", {"port": 80, "address": (127, 0, 0, 1)}))[1] == (
        "127.0.0.1",
        80,
    )
    v6 = Variant(
        "ipv6",
        {"port": 443, "flow-info": 0, "address": (0x2001, 0xDB8, 0, 0, 0, 0, 0, 1), "scope-id": 0},
    )
    assert to_sockaddr(v6)[1] == ("2001:db8::1", 443, 0, 0)
    assert literal_address("[2001:db8::1]") == ipaddress.ip_address("2001:db8::1")
    assert literal_address("10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert literal_address("example.test") is None
