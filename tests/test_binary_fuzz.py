"""Robustness of the component decoder against damaged binaries.

Truncated and mutated versions of real components must fail with DecodeError
(or decode, when the damage happens to yield another well-formed binary),
never with another exception, and always quickly. Every file in
``tests/fuzz/crashers/`` (inputs found by the fuzz campaign, minimised, and
hand-made edge cases) is replayed here; the campaign itself
(``tests/fuzz/campaign.py``, ``nox -s fuzz``) is smoke-tested.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_wasi._binary import DecodeError, decode_component
from trio_wasi._binary import _model as M
from trio_wasi._binary._model import DecodedComponent

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
CRASHERS = FUZZ_DIR / "crashers"


def _load(name: str, path: Path) -> ModuleType:
    # By path under a unique name, like the guest build module in tests/guests.
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


seeds = _load("_trio_wasi_tests_fuzz_seeds", FUZZ_DIR / "seeds.py")
campaign = _load("_trio_wasi_tests_fuzz_campaign", FUZZ_DIR / "campaign.py")


@functools.cache
def binaries() -> tuple[bytes, ...]:
    return tuple(seeds.small_binaries())


# Every call must finish within this many seconds of CPU; the inputs are a
# few hundred bytes and decode in well under a millisecond, so anything near
# it means a runaway loop.
CALL_BUDGET = 1.0
# Measured in this thread's CPU time, which other load on a shared machine
# does not inflate (wall time does).

FUZZ = settings(
    max_examples=800,
    deadline=None,  # timing is checked per call below; a shared CI box is noisy
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)


@contextlib.contextmanager
def cpu_budget(what: str) -> Iterator[None]:
    """Fail when the block uses more than CALL_BUDGET of this thread's CPU.

    The garbage collector is off meanwhile: a full collection of the test
    process's heap is the process's cost, not the decoder's.
    """
    enabled = gc.isenabled()
    gc.disable()
    start = time.thread_time()
    try:
        yield
    finally:
        elapsed = time.thread_time() - start
        if enabled:
            gc.enable()
    assert elapsed < CALL_BUDGET, f"{what} took {elapsed:.3f}s of CPU"


def check(data: bytes) -> None:
    with cpu_budget(f"decoding {len(data)} bytes"):
        try:
            assert isinstance(decode_component(data), DecodedComponent)
        except DecodeError as exc:
            assert 0 <= exc.offset <= len(data)


def test_sources_decode() -> None:
    for data in binaries():
        assert decode_component(data).definitions


def test_every_truncation_fails_cleanly() -> None:
    # Exhaustive: each proper prefix must be reported as malformed.
    for data in binaries():
        for end in range(len(data)):
            with cpu_budget(f"decoding a {end}-byte prefix"):
                try:
                    decode_component(data[:end])
                except DecodeError as exc:
                    assert exc.offset <= end
                else:
                    # A prefix ending exactly at a section boundary is well formed.
                    assert end >= 8


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(binaries())))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif len(data) > 1:
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutations_fail_cleanly(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from(range(len(seeds.SOURCES))), st.integers(0, 4096), st.binary(max_size=16))
def test_spliced_garbage_fails_cleanly(which: int, at: int, garbage: bytes) -> None:
    data = binaries()[which]
    at %= len(data)
    check(data[:at] + garbage + data[at:])


@FUZZ
@given(st.binary(max_size=64))
def test_random_bodies_after_a_preamble(body: bytes) -> None:
    check(b"\x00asm\x0d\x00\x01\x00" + body)


# ---------------------------------------------------------------------------
# Regression inputs and the campaign


@pytest.mark.parametrize("path", sorted(CRASHERS.glob("*.wasm")), ids=lambda p: p.name)
def test_crasher_decodes_or_fails_cleanly(path: Path) -> None:
    check(path.read_bytes())


def test_crashers_directory_is_not_empty() -> None:
    # Guards the parametrisation above against a moved directory.
    assert len(list(CRASHERS.glob("*.wasm"))) >= 10


def test_deep_nesting_with_little_stack_left_fails_cleanly() -> None:
    # The deepest nesting the decoder accepts, decoded with only a little of
    # the recursion limit left: a DecodeError, not a RecursionError.
    body = b"\x7f"
    for _ in range(99):
        body = b"\x42\x01\x01" + body
    data = seeds.serialize([(7, b"\x01" + body)])
    decode_component(data)  # fine with a normal stack

    def at_depth(n: int) -> None:
        if n:
            at_depth(n - 1)
            return
        try:
            decode_component(data)
        except DecodeError as exc:
            outcomes.append(exc)

    outcomes: list[DecodeError] = []
    frame, used = sys._getframe(), 0
    while frame is not None:
        frame, used = frame.f_back, used + 1
    # Leave 60 frames: less than the ~200 that 99 nested types take.
    at_depth(sys.getrecursionlimit() - used - 60)
    assert len(outcomes) == 1
    assert "nested too deeply" in str(outcomes[0])


def test_sections_parse_and_serialize_back() -> None:
    for data in binaries():
        sections = seeds.parse_sections(data)
        assert sections is not None
        assert seeds.serialize(sections) == data
    assert seeds.parse_sections(b"\x00asm\x01\x00\x00\x00") is None
    assert seeds.encode_uleb(624485) == b"\xe5\x8e\x26"
    assert seeds.read_uleb(b"\xe5\x8e\x26", 0, 3) == (624485, 3)
    assert seeds.read_uleb(b"\xe5\x8e", 0, 2) is None


def test_skeleton_keeps_the_structure_and_empties_modules() -> None:
    data = binaries()[1]  # "canon": one core module
    sections = seeds.parse_sections(data)
    assert sections is not None
    small = seeds.serialize(seeds.skeleton(sections))
    original = decode_component(data).definitions
    reduced = decode_component(small).definitions
    # Custom sections go; every other definition stays, in order.
    kinds = [type(d) for d in original if not isinstance(d, M.CustomSection)]
    assert [type(d) for d in reduced] == kinds
    modules = [d for d in reduced if isinstance(d, M.CoreModule)]
    assert [m.data for m in modules] == [seeds.EMPTY_MODULE]


def test_campaign_runs_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "crashers"
    status = campaign.main(
        ["--inputs", "3000", "--seed", "1", "--no-suite", "--no-guests", "--out", str(out)]
    )
    assert status == 0
    assert not out.exists()
    assert "fuzz: 3,000 inputs" in capsys.readouterr().out


def test_campaign_records_a_minimised_crasher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A decoder with a planted bug: any input holding the bytes "run" crashes.
    real = campaign.decode_component

    def planted(data: bytes) -> object:
        if b"run" in data:
            raise ValueError("planted")
        return real(data)

    monkeypatch.setattr(campaign, "decode_component", planted)
    out = tmp_path / "crashers"
    seed_input = binaries()[0]  # "types": a core export is named "run"
    assert b"run" in seed_input
    status = campaign.main(
        ["--inputs", "50", "--seed", "1", "--no-suite", "--no-guests", "--out", str(out)]
    )
    assert status == 1
    [found] = out.iterdir()
    assert found.name.startswith("valueerror-at-")
    assert found.read_bytes() == b"run"
    assert "contract violation: ValueError" in capsys.readouterr().out


def test_campaign_mutants_are_mostly_well_framed() -> None:
    # Structure-aware mutation keeps the section framing intact most of the
    # time, so most mutants get past the section headers.
    fuzzer = campaign.Fuzzer(list(binaries()), random.Random(3))
    framed = sum(seeds.parse_sections(fuzzer.mutant()) is not None for _ in range(500))
    assert framed > 250


def test_campaign_interrupts_a_hanging_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A decoder with a planted bug: the first input holding "run" never returns.
    real = campaign.decode_component
    hung: list[bytes] = []

    def planted(data: bytes) -> object:
        if b"run" in data and not hung:
            hung.append(data)
            while True:
                pass
        return real(data)

    monkeypatch.setattr(campaign, "decode_component", planted)
    monkeypatch.setattr(campaign, "HANG_SECONDS", 1.0)
    out = tmp_path / "crashers"
    status = campaign.main(
        ["--inputs", "20", "--seed", "1", "--no-suite", "--no-guests", "--out", str(out)]
    )
    assert status == 1
    [found] = out.iterdir()
    assert found.name.startswith("hang-")
    assert found.read_bytes() == hung[0]
    assert "contract violation: hang" in capsys.readouterr().out


def test_campaign_reports_a_slow_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # With no time allowed at all, every input is slow; only the first is recorded.
    monkeypatch.setattr(campaign, "SLOW_SECONDS", 0.0)
    monkeypatch.setattr(campaign, "SLOW_SECONDS_PER_BYTE", 0.0)
    out = tmp_path / "crashers"
    status = campaign.main(
        ["--inputs", "20", "--seed", "1", "--no-suite", "--no-guests", "--out", str(out)]
    )
    assert status == 1
    [found] = out.iterdir()
    assert found.name.startswith("slow-")
    assert capsys.readouterr().out.count("contract violation: slow") == 1
