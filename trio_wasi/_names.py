"""Extern names and semver-compatible matching of versioned interface names.

An import named ``wasi:cli/stdout@0.2.9`` must be satisfied by a host that
implements ``wasi:cli/stdout@0.2.0``: guests are built against whatever patch
release their toolchain pinned, and a 0.2.x host implements them all. The rule
(Explainer.md, "Import and Export Definitions", and the semver conventions
hosts follow) is that two versions are compatible when they agree on the first
non-zero component: ``1.x.y`` matches ``1.*``; ``0.2.x`` matches ``0.2.*``;
``0.0.x`` matches only itself. Pre-release versions match only exactly.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from ._frozen import frozen

__all__ = ["InterfaceName", "compatibility_key", "parse_interface_name"]

# ns:pkg/iface@version, with nested namespaces/packages allowed by the grammar.
_INTERFACE_RE: Final = re.compile(
    r"^(?P<package>[a-z0-9-]+(?::[a-z0-9-]+)+)/(?P<interface>[a-z0-9-]+(?:/[a-z0-9-]+)*)"
    r"(?:@(?P<version>[0-9A-Za-z.+-]+))?$"
)
_SEMVER_RE: Final = re.compile(
    r"^(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?P<pre>-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)


@frozen
class InterfaceName:
    """A parsed ``namespace:package/interface@version`` name."""

    package: str
    interface: str
    version: str | None

    @property
    def unversioned(self) -> str:
        return f"{self.package}/{self.interface}"


def parse_interface_name(name: str) -> InterfaceName | None:
    """Parse an interface name; ``None`` for plain names such as ``run`` or ``[method]r.m``."""
    m = _INTERFACE_RE.match(name)
    if m is None:
        return None
    return InterfaceName(m["package"], m["interface"], m["version"])


# A pure function of its argument, asked again for the same few hundred names
# by every definition and every link of a WASI component.
@functools.lru_cache(maxsize=4096)
def compatibility_key(name: str) -> str:
    """The key under which semver-compatible names collide.

    ``wasi:io/poll@0.2.9`` and ``wasi:io/poll@0.2.0`` share the key
    ``wasi:io/poll@0.2``; unversioned and plain names are their own key.
    """
    parsed = parse_interface_name(name)
    if parsed is None or parsed.version is None:
        return name
    v = _SEMVER_RE.match(parsed.version)
    if v is None or v["pre"]:
        return name
    major, minor, patch = v["major"], v["minor"], v["patch"]
    if major != "0":
        track = major
    elif minor != "0":
        track = f"0.{minor}"
    else:
        track = f"0.0.{patch}"
    return f"{parsed.unversioned}@{track}"
