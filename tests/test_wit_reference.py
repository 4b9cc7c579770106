"""The WIT this host ships (``wit/``) matches the WASI reference WIT, interface by interface.

Both sides are encoded by ``wasm-tools component wit --wasm`` and read by our own
decoder; every function type and resource of every interface must be the same. The
reference lives in ``../shared/reference/wit``; without it the test is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trio_wasi._abi import _types as T
from trio_wasi._names import compatibility_key
from trio_wasi._validate import _validator
from trio_wasi._wit import WitInterface, load_wit, resolve_interface

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "wit"
PACKAGES_02 = ("cli", "clocks", "filesystem", "http", "io", "random", "sockets")
PACKAGES_03 = ("cli", "clocks", "filesystem", "http", "random", "sockets")

pytestmark = [
    pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} is not checked out"),
    pytest.mark.skipif(_validator() is None, reason="wasm-tools is not installed"),
]


def _own(pkg: str, interfaces: dict[str, WitInterface]) -> dict[str, WitInterface]:
    # A package's encoding also mentions the interfaces it uses, with only the
    # types it uses: take each interface from its own package.
    return {k: v for k, v in interfaces.items() if k.startswith(f"wasi:{pkg}/")}


def _reference_interfaces(tmp: Path) -> dict[str, WitInterface]:
    found: dict[str, WitInterface] = {}
    for pkg in PACKAGES_03:
        found.update(_own(pkg, load_wit(REFERENCE / "wasi-0.3.0-flat" / f"{pkg}-0.3.0")))
    for pkg in PACKAGES_02:
        # A 0.2.0 package with every other 0.2.0 package as its dependencies.
        root = tmp / pkg
        (root / "deps").mkdir(parents=True)
        for wit in (REFERENCE / "wasi-0.2.0" / pkg).glob("*.wit"):
            (root / wit.name).symlink_to(wit)
        for dep in PACKAGES_02:
            if dep != pkg:
                (root / "deps" / dep).symlink_to(REFERENCE / "wasi-0.2.0" / dep)
        found.update(_own(pkg, load_wit(root)))
    return found


def _shape(iface: WitInterface, resources: dict[tuple[str, str], T.ResourceType]) -> object:
    def resource_for(interface: str, name: str) -> T.ResourceType:
        key = (compatibility_key(interface), name)
        if key not in resources:
            resources[key] = T.ResourceType(name=name, instance=None)
        return resources[key]

    resolved = resolve_interface(iface, resource_for)
    return resolved.functions, sorted(resolved.resources)


def test_every_shipped_interface_matches_the_reference(tmp_path: Path) -> None:
    ours = load_wit(ROOT / "wit")
    reference = _reference_interfaces(tmp_path)
    # Shared resource types on both sides, so function types compare structurally.
    resources: dict[tuple[str, str], T.ResourceType] = {}
    compared = []
    for name, iface in sorted(ours.items()):
        if not name.startswith("wasi:"):
            continue
        if name not in reference:
            # Only interfaces the reference gates as unstable may be missing there.
            assert name == "wasi:clocks/timezone@0.3.0", f"{name} is not in the reference"
            continue
        assert _shape(iface, resources) == _shape(reference[name], resources), name
        compared.append(name)
    assert len(compared) >= 45
    missing = set(reference) - set(ours)
    assert not missing, f"the reference has interfaces we do not ship: {sorted(missing)}"


def test_the_shipped_encoding_is_current() -> None:
    # The host reads wit/host.wasm (no wasm-tools needed at run time); it must
    # say exactly what wit/*.wit says.
    from trio_wasi._hostdefs import BUNDLED_ENCODED
    from trio_wasi._wit import load_encoded

    shipped = load_encoded((ROOT / "wit" / BUNDLED_ENCODED).read_bytes())
    fresh = load_wit(ROOT / "wit")
    assert sorted(shipped) == sorted(fresh)
    resources: dict[tuple[str, str], T.ResourceType] = {}
    for name in fresh:
        assert _shape(shipped[name], resources) == _shape(fresh[name], resources), (
            f"{name}: regenerate with `wasm-tools component wit wit --wasm -o wit/host.wasm`"
        )
