"""The wasi:sockets address policy: pattern grammar and matching."""

from __future__ import annotations

import ipaddress

import pytest

from trio_wasi import WasiConfig
from trio_wasi.wasi._netpolicy import NetworkPolicy, parse_pattern
from trio_wasi.wasi._sockets import policy_of


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("pattern", "address", "port", "allowed"),
    [
        ("127.0.0.1:*", "127.0.0.1", 0, True),
        ("127.0.0.1:*", "127.0.0.1", 65535, True),
        ("127.0.0.1:*", "127.0.0.2", 80, False),
        ("127.0.0.1:8080", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", 8081, False),
        ("127.0.0.1:8080", "127.0.0.1", 0, False),
        ("127.0.0.0/8:*", "127.9.8.7", 1, True),
        ("127.0.0.0/8:*", "128.0.0.1", 1, False),
        ("*:443", "10.1.2.3", 443, True),
        ("*:443", "::1", 443, True),
        ("*:443", "10.1.2.3", 80, False),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "127.0.0.1", 8080, False),
        ("[fd00::/8]:1000-2000", "fd12::1", 1500, True),
        ("[fd00::/8]:1000-2000", "fd12::1", 2001, False),
        ("*", "192.0.2.1", 7, True),
        ("*:*", "::", 0, True),
    ],
)
def test_pattern_matching(pattern: str, address: str, port: int, allowed: bool) -> None:
    policy = NetworkPolicy.build([pattern])
    assert policy.allows(ip(address), port) is allowed


@pytest.mark.parametrize(
    "pattern",
    [
        "127.0.0.1",
        "::1:80",
        "[::1]80",
        "[127.0.0.1]:80",
        "host.example:80",
        "1.2.3.4:x",
        "1.2.3.4:70000",
        "1.2.3.4:9-3",
        "[::1:80",
    ],
)
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="address pattern"):
        parse_pattern(pattern)


def test_config_builds_the_policy() -> None:
    nothing = policy_of(WasiConfig())
    assert not nothing.any_allowed
    assert not nothing.allows(ip("127.0.0.1"), 80)
    assert not nothing.allow_name_lookup

    everything = policy_of(WasiConfig(inherit_network=True, allow_ip_name_lookup=True))
    assert everything.any_allowed
    assert everything.allows(ip("203.0.113.9"), 12345)
    assert everything.allow_name_lookup

    some = policy_of(WasiConfig(allowed_addresses=["127.0.0.1:*", "[::1]:8080"]))
    assert some.any_allowed
    assert some.allows(ip("::1"), 8080)
    assert not some.allows(ip("::1"), 8081)


def test_a_malformed_pattern_fails_the_linker_setup() -> None:
    from trio_wasi import Engine, Linker

    linker = Linker(Engine(use_cache=False))
    with pytest.raises(ValueError, match="address pattern"):
        linker.add_wasi(WasiConfig(allowed_addresses=["localhost:80"]))
