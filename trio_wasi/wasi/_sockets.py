"""wasi:sockets 0.3.0 and 0.2.0: the deny-everything baseline.

Creating a socket returns ``access-denied`` (or the interface's nearest
refusal) and name lookups are refused, whatever the network policy in
``WasiConfig`` says. The real implementation replaces ``add_to_linker``
here, enforcing ``allowed_addresses``, ``inherit_network`` and
``allow_ip_name_lookup`` and building its 0.2 streams and pollables on
``_io``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._deny import deny_all

if TYPE_CHECKING:
    from .._linker import Linker
    from ._config import WasiConfig

__all__ = ["add_to_linker"]

INTERFACES = (
    "wasi:sockets/types@0.3.0",
    "wasi:sockets/ip-name-lookup@0.3.0",
    "wasi:sockets/network@0.2.0",
    "wasi:sockets/instance-network@0.2.0",
    "wasi:sockets/tcp@0.2.0",
    "wasi:sockets/tcp-create-socket@0.2.0",
    "wasi:sockets/udp@0.2.0",
    "wasi:sockets/udp-create-socket@0.2.0",
    "wasi:sockets/ip-name-lookup@0.2.0",
)


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:sockets with nothing granted (the baseline)."""
    for name in INTERFACES:
        deny_all(linker, name)
