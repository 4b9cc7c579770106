"""A time-boxed mutation fuzzer for the component decoder.

The decoder's contract: any input either decodes or raises
:class:`trio_wasi.DecodeError` whose offset lies inside the input; never
another exception, never a hang, never pathological slowness. This script
feeds it mutants of the seeds in ``seeds.py`` in a tight in-process loop and
checks that contract for each.

Mutants are mostly structure-aware: a section of a (possibly nested)
component is mutated, deleted, duplicated, swapped or transplanted from
another seed and the sizes around it are re-encoded, so the damage reaches
the section contents instead of stopping at the first size prefix. The rest
are raw byte mutations of the whole binary. An input that reaches an error
message not seen before (or decodes) joins the corpus, a cheap stand-in for
coverage feedback.

A contract violation is minimised (bytes removed while it still fails the
same way) and written to ``tests/fuzz/crashers/``, where
``tests/test_binary_fuzz.py`` replays every file.

Usage (``nox -s fuzz -- ARGS`` passes the same arguments)::

    python tests/fuzz/campaign.py                 # 1,000,000 inputs
    python tests/fuzz/campaign.py 600             # as many as fit in 600 s
    python tests/fuzz/campaign.py 600 --inputs N  # whichever limit comes first
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import random
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, ModuleType

HERE = Path(__file__).resolve().parent


def _load_seeds() -> ModuleType:
    # By path under a unique name, so this works as a script and when a test
    # loads this file, and never collides with another ``seeds`` module.
    name = "_trio_wasi_tests_fuzz_seeds"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "seeds.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


seeds = _load_seeds()
if str(seeds.REPO) not in sys.path:
    sys.path.insert(0, str(seeds.REPO))

from trio_wasi._binary import DecodeError, decode_component  # noqa: E402

CRASHERS = HERE / "crashers"
DEFAULT_INPUTS = 1_000_000

# Decoding is linear: the costliest inputs (one-byte definitions, each a new
# model object) take a few microseconds per byte, also on a loaded machine. An
# input is reported as slow beyond SLOW_SECONDS plus SLOW_SECONDS_PER_BYTE per
# byte (several times that cost, so only superlinear work crosses it), and the
# hang guard interrupts one that runs for HANG_SECONDS.
SLOW_SECONDS = 0.5
SLOW_SECONDS_PER_BYTE = 20e-6
HANG_SECONDS = 30.0

INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x3F, 0x40, 0x7F, 0x80, 0xFF, 0x11, 0x12, 0x63, 0x65)
INTERESTING_LEBS = (
    b"\x00",
    b"\x01",
    b"\x7f",
    b"\x80\x01",
    b"\xff\xff\xff\xff\x0f",  # u32 max
    b"\xff\xff\xff\xff\x1f",  # u32 too large
    b"\x80\x80\x80\x80\x80\x00",  # too long
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # u64 max
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00",
    b"\x40",
    b"\x7f\x7f",
)
# The largest input the amplification mutation builds.
AMPLIFY_BYTES = 256 * 1024
SECTION_IDS = (*range(14), 0x7F, 0xFF)


class _Hang(BaseException):
    """Raised from the hang guard's signal handler into the running decode."""


def _describe(exc: BaseException) -> str:
    """A signature for a failure: the exception type and the innermost decoder frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "trio_wasi" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__} at {where}"


# The number of the decode in progress, or -1 between decodes (for the hang guard).
_decoding = -1
_decodes = 0


def _decode(data: bytes) -> None:
    """``decode_component(data)``, visible to the hang guard while it runs."""
    global _decoding, _decodes
    _decodes += 1
    _decoding = _decodes
    try:
        decode_component(data)
    finally:
        _decoding = -1


def violation(data: bytes) -> str | None:
    """How ``data`` breaks the decoder's contract, or None when it keeps it."""
    try:
        _decode(data)
    except DecodeError as exc:
        if not 0 <= exc.offset <= len(data):
            return f"DecodeError offset {exc.offset} outside 0..{len(data)}"
    except _Hang:
        return "hang"
    except Exception as exc:
        return _describe(exc)
    return None


class Fuzzer:
    """The corpus and the mutators: ``mutant()`` makes the next input to try."""

    def __init__(self, seed_inputs: list[bytes], rng: random.Random) -> None:
        self.rng = rng
        self.corpus: list[tuple[bytes, list[seeds.Section] | None]] = []
        self.bodies: dict[int, list[bytes]] = {}
        self.seen: set[str] = set()
        for data in seed_inputs:
            self.add(data)

    def add(self, data: bytes) -> None:
        sections = seeds.parse_sections(data)
        self.corpus.append((data, sections))
        if sections is not None:
            for container, i in seeds.iter_sections(sections):
                section_id, body = container[i]
                if isinstance(body, bytes) and len(body) < 4096:
                    self.bodies.setdefault(section_id, []).append(body)

    # -- mutations --------------------------------------------------------

    def mutate_bytes(self, data: bytearray, rounds: int) -> None:
        rng = self.rng
        for _ in range(rounds):
            n = len(data)
            op = rng.randrange(8)
            at = rng.randrange(n) if n else 0
            if op == 0 and n:
                data[at] ^= 1 << rng.randrange(8)
            elif op == 1 and n:
                data[at] = rng.choice(INTERESTING_BYTES)
            elif op == 2:
                data[at:at] = rng.randbytes(rng.randint(1, 8))
            elif op == 3 and n:
                del data[at : at + rng.randint(1, 16)]
            elif op == 4 and n:
                chunk = data[at : at + rng.randint(1, 32)]
                to = rng.randrange(n)
                data[to:to] = chunk
            elif op == 5:
                leb = rng.choice(INTERESTING_LEBS)
                if rng.random() < 0.5:
                    data[at:at] = leb
                else:
                    data[at : at + len(leb)] = leb
            elif op == 6 and n:
                del data[rng.randrange(n) :]
            elif op == 7 and n:
                data[at] = rng.randrange(256)

    def mutate_sections(self, sections: list[seeds.Section]) -> bytes:
        rng = self.rng
        places = list(seeds.iter_sections(sections))
        container, i = rng.choice(places)
        replacement = list(container)
        section_id, body = replacement[i]
        roll = rng.random()
        op = 10 if roll < 0.02 else 11 if roll < 0.04 else rng.randrange(10)
        if op == 10:
            # Deep nesting: wrap this list of sections in nested components.
            for _ in range(rng.choice((1, 2, 50, 99, 100, 101, 300))):
                replacement = [(4, replacement)]
            return seeds.serialize(_replace(sections, container, replacement))
        if op == 11:
            # Amplification: many copies of one section, for superlinear costs.
            size = len(body) if isinstance(body, bytes) else 1024
            copies = min(rng.choice((10, 300, 3000)), AMPLIFY_BYTES // (size + 2))
            replacement[i:i] = [replacement[i]] * copies
            return seeds.serialize(_replace(sections, container, replacement))
        if op < 5:
            raw = bytearray(body if isinstance(body, bytes) else seeds.serialize(body)[8:])
            self.mutate_bytes(raw, rng.randint(1, 4))
            replacement[i] = (section_id, bytes(raw))
        elif op == 5:
            del replacement[i]
        elif op == 6:
            replacement.insert(i, replacement[i])
        elif op == 7 and len(replacement) > 1:
            j = rng.randrange(len(replacement))
            replacement[i], replacement[j] = replacement[j], replacement[i]
        elif op == 8:
            donors = self.bodies.get(section_id) or [b""]
            replacement[i] = (section_id, rng.choice(donors))
        else:
            other_id = rng.choice(list(self.bodies))
            new = (other_id, rng.choice(self.bodies[other_id]))
            if rng.random() < 0.5:
                replacement.insert(i, new)
            else:
                replacement[i] = (rng.choice(SECTION_IDS), body)
        return seeds.serialize(_replace(sections, container, replacement))

    def mutant(self) -> bytes:
        rng = self.rng
        data, sections = rng.choice(self.corpus)
        if sections and rng.random() < 0.75:
            out = self.mutate_sections(sections)
            if rng.random() < 0.1:
                raw = bytearray(out)
                self.mutate_bytes(raw, 1)
                out = bytes(raw)
            return out
        raw = bytearray(data)
        self.mutate_bytes(raw, rng.randint(1, 6))
        return bytes(raw)

    def note(self, data: bytes, outcome: str) -> None:
        """Keep inputs that reach an outcome not seen before."""
        if outcome not in self.seen:
            self.seen.add(outcome)
            if len(data) < 65536:
                self.add(data)


def _replace(
    sections: list[seeds.Section], target: list[seeds.Section], new: list[seeds.Section]
) -> list[seeds.Section]:
    if sections is target:
        return new
    out: list[seeds.Section] = []
    for section_id, body in sections:
        if isinstance(body, list):
            body = _replace(body, target, new)
        out.append((section_id, body))
    return out


_DIGITS = re.compile(r"0x[0-9a-f]+|\d+")


def minimise(data: bytes, failure: str, budget: float) -> bytes:
    """A smaller input that fails the same way (greedy chunk removal, then truncation)."""
    deadline = time.monotonic() + budget

    def fails(candidate: bytes) -> bool:
        return violation(candidate) == failure

    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        progressed = False
        while i < len(data) and time.monotonic() < deadline:
            candidate = data[:i] + data[i + chunk :]
            if candidate and fails(candidate):
                data = candidate
                progressed = True
            else:
                i += chunk
        if not progressed:
            chunk //= 2
    return data


def _timed_violation(data: bytes) -> tuple[str | None, float]:
    start = time.perf_counter()
    failure = violation(data)
    return failure, time.perf_counter() - start


def _slow_limit(data: bytes) -> float:
    return SLOW_SECONDS + SLOW_SECONDS_PER_BYTE * len(data)


class Campaign:
    """Runs inputs, checks the contract, and records each new kind of violation once."""

    def __init__(self, out_dir: Path, rng: random.Random) -> None:
        self.out_dir = out_dir
        self.rng = rng
        self.inputs = 0
        self.failures: dict[str, Path] = {}

    def check(self, data: bytes) -> str:
        """Run one input; returns its outcome class (for corpus feedback)."""
        self.inputs += 1
        start = time.perf_counter()
        try:
            _decode(data)
        except DecodeError as exc:
            elapsed = time.perf_counter() - start
            if not 0 <= exc.offset <= len(data):
                self.record(data, f"DecodeError offset {exc.offset} outside 0..{len(data)}")
            outcome = _DIGITS.sub("#", str(exc.args[0]) if exc.args else "")
        except _Hang:
            self.record(data, "hang")
            return "hang"
        except Exception as exc:
            self.record(data, _describe(exc))
            return "crash"
        else:
            elapsed = time.perf_counter() - start
            outcome = "decoded"
        if elapsed > _slow_limit(data):
            # Re-time before blaming the decoder: the machine may just be busy.
            again = min(_timed_violation(data)[1] for _ in range(3))
            if again > _slow_limit(data):
                self.record(data, "slow")
        return outcome

    def record(self, data: bytes, failure: str) -> None:
        if failure in self.failures:
            return
        print(f"\nfuzz: contract violation: {failure} ({len(data)} bytes)", flush=True)
        if failure not in ("slow", "hang"):
            data = minimise(data, failure, budget=60.0)
        name = f"{_slug(failure)}-{hashlib.sha256(data).hexdigest()[:12]}.wasm"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / name
        path.write_bytes(data)
        self.failures[failure] = path
        print(f"fuzz: wrote {path} ({len(data)} bytes)", flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _install_hang_guard(progress: Callable[[], int]) -> Callable[[], None]:
    """Interrupt an input that has been decoding for HANG_SECONDS.

    ``progress`` is the number of the input being decoded, or -1 between inputs.
    """
    state = {"last": -1, "since": time.monotonic()}

    def on_tick(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        current = progress()
        if current < 0 or current != state["last"]:
            state["last"], state["since"] = current, now
        elif now - state["since"] >= HANG_SECONDS:
            state["since"] = now
            raise _Hang

    previous = signal.signal(signal.SIGALRM, on_tick)
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)

    def remove() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return remove


def _big_guest_inputs(paths: list[Path], rng: random.Random, per_guest: int) -> Iterator[bytes]:
    """Damage to full-size guests: truncations and header flips at section boundaries."""
    for path in paths:
        data = path.read_bytes()
        boundaries = []
        pos = 8
        while pos < len(data):
            size = seeds.read_uleb(data, pos + 1, len(data))
            if size is None:
                break
            boundaries.append(pos)
            pos = size[1] + size[0]
        if not boundaries:
            continue
        for _ in range(per_guest):
            at = rng.choice(boundaries)
            kind = rng.randrange(3)
            if kind == 0:
                yield data[: at + rng.randint(0, 6)]
            elif kind == 1:
                raw = bytearray(data)
                raw[at + rng.randint(0, 5)] ^= 1 << rng.randrange(8)
                yield bytes(raw)
            else:
                raw = bytearray(data)
                leb = rng.choice(INTERESTING_LEBS)
                raw[at + 1 : at + 1 + len(leb)] = leb
                yield bytes(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seconds", nargs="?", type=float, help="time box (default: none)")
    parser.add_argument("--inputs", type=int, help=f"input budget (default {DEFAULT_INPUTS:,})")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--cache", type=Path, default=seeds.REPO / ".cache" / "fuzz-seeds")
    parser.add_argument("--out", type=Path, default=CRASHERS)
    parser.add_argument("--big-guest-inputs", type=int, default=40, help="per full-size guest")
    parser.add_argument(
        "--outcomes", action="store_true", help="list the distinct outcomes reached at the end"
    )
    parser.add_argument("--no-suite", action="store_true", help="no conformance suite seeds")
    parser.add_argument("--no-guests", action="store_true", help="no guest seeds")
    args = parser.parse_args(argv)
    max_inputs = args.inputs
    if max_inputs is None and args.seconds is None:
        max_inputs = DEFAULT_INPUTS
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)

    started = time.monotonic()
    small = seeds.small_binaries()
    suite = [] if args.no_suite else seeds.suite_binaries(args.cache)
    guests = [] if args.no_guests else seeds.guest_paths()
    skeletons = []
    for path in guests:
        sections = seeds.parse_sections(path.read_bytes())
        if sections is not None:
            skeletons.append(seeds.serialize(seeds.skeleton(sections)))
    components = [d for d in suite if d.startswith(seeds.COMPONENT_PREAMBLE)]
    print(
        f"fuzz: seed {seed}; seeds: {len(small)} hand-written, {len(components)} components "
        f"(+{len(suite) - len(components)} core modules) from the conformance suite, "
        f"{len(skeletons)} guest skeletons; prepared in {time.monotonic() - started:.1f} s",
        flush=True,
    )

    campaign = Campaign(args.out, rng)
    remove_hang_guard = _install_hang_guard(lambda: _decoding)
    start = time.monotonic()
    deadline = start + args.seconds if args.seconds is not None else float("inf")
    fuzzer = Fuzzer(small + components + skeletons, rng)
    report_at = time.monotonic() + 30
    try:
        for data in small + suite + skeletons:
            campaign.check(data)
        for data in _big_guest_inputs(guests, rng, args.big_guest_inputs):
            campaign.check(data)
        while (max_inputs is None or campaign.inputs < max_inputs) and (
            campaign.inputs % 256 or time.monotonic() < deadline
        ):
            data = fuzzer.mutant()
            fuzzer.note(data, campaign.check(data))
            if not campaign.inputs % 4096 and time.monotonic() >= report_at:
                report_at += 30
                _progress(campaign, fuzzer, start)
    except KeyboardInterrupt:
        print("\nfuzz: interrupted", flush=True)
    finally:
        remove_hang_guard()
    _progress(campaign, fuzzer, start)
    if args.outcomes:
        for outcome in sorted(fuzzer.seen):
            print(f"fuzz: outcome: {outcome}")
    for failure, path in campaign.failures.items():
        print(f"fuzz: crasher {path.name}: {failure}")
    return 1 if campaign.failures else 0


def _progress(campaign: Campaign, fuzzer: Fuzzer, start: float) -> None:
    elapsed = time.monotonic() - start
    print(
        f"fuzz: {campaign.inputs:,} inputs in {elapsed:.0f} s "
        f"({campaign.inputs / max(elapsed, 1e-9):,.0f}/s), corpus {len(fuzzer.corpus)}, "
        f"outcomes {len(fuzzer.seen)}, crashers {len(campaign.failures)}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
