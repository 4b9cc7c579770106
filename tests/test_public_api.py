"""The public namespace: exactly these names, each documented, each re-exported."""

from __future__ import annotations

import inspect

import trio_wasi

PUBLIC = {
    "Component",
    "DecodeError",
    "DuplicateKeyMap",
    "Engine",
    "Err",
    "Error",
    "ErrorContext",
    "FutureReceiver",
    "GuestResource",
    "HostContext",
    "Instance",
    "Instantiation",
    "Limits",
    "LinkedComponent",
    "Linker",
    "LinkError",
    "Ok",
    "Some",
    "StreamReceiver",
    "Trap",
    "ValidationError",
    "Variant",
    "WasiConfig",
    "parse_w_options",
    "with_context",
}
# Subpackages that are namespaces of their own (their public names are
# re-exported above or documented there).
SUBPACKAGES = {"wasi"}


def test_the_public_names_are_pinned() -> None:
    assert set(trio_wasi.__all__) == PUBLIC
    public = {name for name in dir(trio_wasi) if not name.startswith("_")}
    assert public - SUBPACKAGES == PUBLIC


def test_every_public_name_is_documented_and_lives_in_a_private_module() -> None:
    for name in PUBLIC:
        obj = getattr(trio_wasi, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
        module = getattr(obj, "__module__", "")
        assert module.startswith(("trio_wasi._", "trio_wasi.wasi._")), (
            f"{name} is defined in {module}"
        )


def test_public_methods_are_documented() -> None:
    for name in PUBLIC:
        obj = getattr(trio_wasi, name)
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member):
                continue
            assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_public_properties_are_documented_and_read_only() -> None:
    for name in PUBLIC:
        obj = getattr(trio_wasi, name)
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not isinstance(member, property):
                continue
            assert inspect.getdoc(member), f"{name}.{attr} has no docstring"
            assert member.fset is None, f"{name}.{attr} is writable"


def test_instance_poisoned_is_public() -> None:
    prop = vars(trio_wasi.Instance)["poisoned"]
    assert isinstance(prop, property) and prop.fset is None
