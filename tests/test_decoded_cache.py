"""Decoded components kept on disk by content (trio_wasi._binary._cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trio_wasi._binary import _cache
from trio_wasi._binary import _model as M
from trio_wasi._binary._decode import decode_component
from trio_wasi._engine import wat_to_wasm
from trio_wasi._hostdefs import BUNDLED_ENCODED, _bundled_wit_dirs

# A component embedding two core modules, to check they come back as views.
COMPONENT = """
(component
  (core module $a (func (export "f") (result i32) (i32.const 1)))
  (core module $b (memory (export "m") 1))
  (core instance $ia (instantiate $a))
  (core instance $ib (instantiate $b))
  (type $t (func (result u32)))
  (func $f (type $t) (canon lift (core func $ia "f")))
  (export "f" (func $f))
)
"""


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    seen: list[bytes] = []

    def counting(data: bytes) -> M.DecodedComponent:
        seen.append(data)
        return decode_component(data)

    monkeypatch.setattr(_cache, "decode_component", counting)
    return seen


@pytest.mark.parametrize("kind", ["wit", "component"])
def test_a_decoded_form_is_kept_and_a_damaged_one_decoded_again(
    tmp_path: Path, decodes: list[bytes], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == "wit":
        data = (_bundled_wit_dirs()[0] / BUNDLED_ENCODED).read_bytes()
    else:
        data = wat_to_wasm(COMPONENT)
    expected = decode_component(data)
    assert _cache.decode_cached(data, tmp_path) == expected and len(decodes) == 1
    (entry,) = (tmp_path / _cache._DIR).iterdir()
    again = _cache.decode_cached(data, tmp_path)
    assert again == expected and len(decodes) == 1  # from the entry
    for found in again.definitions:
        if isinstance(found, M.CoreModule):
            assert found.data.readonly
            assert bytes(found.data) == data[found.offset : found.offset + len(found.data)]
    raw = bytearray(entry.read_bytes())
    raw[-8] ^= 0xFF
    entry.write_bytes(bytes(raw))
    assert _cache.decode_cached(data, tmp_path) == expected and len(decodes) == 2
    assert _cache.decode_cached(data, tmp_path) == expected and len(decodes) == 2  # rewritten
    # A changed decoder (here: another digest of its source) has entries of its own.
    monkeypatch.setattr(_cache, "_decoder_digest", lambda: b"another decoder")
    assert _cache.decode_cached(data, tmp_path) == expected and len(decodes) == 3
    assert len(list((tmp_path / _cache._DIR).iterdir())) == 2


def test_no_cache_directory_always_decodes(decodes: list[bytes]) -> None:
    data = wat_to_wasm(COMPONENT)
    _cache.decode_cached(data, None)
    _cache.decode_cached(data, None)
    assert len(decodes) == 2


def test_an_entry_naming_bytes_outside_the_binary_is_not_used(
    tmp_path: Path, decodes: list[bytes]
) -> None:
    data = wat_to_wasm(COMPONENT)
    _cache.decode_cached(data, tmp_path)
    (entry,) = (tmp_path / _cache._DIR).iterdir()
    # The sealed entry, read against bytes too short for the modules it names.
    assert _cache._read(entry, entry.name, data) is not None
    assert _cache._read(entry, entry.name, data[:10]) is None


def test_an_unwritable_cache_directory_costs_no_pickling(
    tmp_path: Path, decodes: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pickling(*args: object) -> None:
        raise AssertionError("pickled for a cache that cannot be written")

    monkeypatch.setattr(_cache, "_Pickler", no_pickling)
    blocked = tmp_path / "a file, not a directory"
    blocked.write_bytes(b"")
    data = wat_to_wasm(COMPONENT)
    assert _cache.decode_cached(data, blocked) == decode_component(data)
    assert len(decodes) == 1


def test_an_entry_naming_anything_but_the_model_is_refused(
    tmp_path: Path, decodes: list[bytes]
) -> None:
    # A correctly sealed entry whose pickle calls os.system is never run:
    # entries may only name the decoded model's classes.
    import os
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo should-not-run",))

    data = wat_to_wasm(COMPONENT)
    assert _cache.decode_cached(data, tmp_path) == decode_component(data)
    (entry,) = (tmp_path / _cache._DIR).iterdir()
    payload = pickle.dumps(Evil())
    key = entry.name
    entry.write_bytes(_cache._MAGIC + _cache._seal(key, payload) + payload)
    with pytest.raises(pickle.UnpicklingError, match="not part of a decoded component"):
        _cache._Unpickler(__import__("io").BytesIO(payload), data).load()
    # Through the cache, the forged entry is ignored and the binary decoded.
    assert _cache.decode_cached(data, tmp_path) == decode_component(data)
    assert len(decodes) == 2
