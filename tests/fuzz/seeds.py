"""Seed inputs for the decoder fuzz tests and the fuzz campaign (``tests/fuzz/campaign.py``).

Three kinds of seeds:

- a few small hand-written components (``SOURCES``) that touch every kind of
  definition, assembled in process;
- every component binary of the shared Component Model conformance suite,
  converted from its ``.wast`` scripts with ``wasm-tools json-from-wast`` into a
  cache directory at run time (the binaries are derived from fetched data and
  are never committed);
- the componentize-py guests of the guest cache, reduced to skeletons: their
  core modules (most of their 18 MB, and opaque to the component decoder) are
  replaced by an empty module, the component structure around them is kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "COMPONENT_PREAMBLE",
    "EMPTY_MODULE",
    "REPO",
    "SOURCES",
    "Section",
    "encode_uleb",
    "guest_paths",
    "iter_sections",
    "parse_sections",
    "read_uleb",
    "serialize",
    "skeleton",
    "small_binaries",
    "suite_binaries",
]

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO.parent / "shared" / "conformance" / "component-model"
COMPONENT_PREAMBLE = b"\x00asm\x0d\x00\x01\x00"
EMPTY_MODULE = b"\x00asm\x01\x00\x00\x00"

SOURCES = {
    "types": """
        (component
          (type $r (record (field "a" u8) (field "b" string)))
          (type (variant (case "x" s64) (case "y")))
          (type (list $r))
          (type (list u8 4))
          (type (tuple bool char))
          (type (flags "p" "q"))
          (type (enum "e1" "e2"))
          (type (result u32 (error string)))
          (type (stream u8))
          (type (future))
          (type (map string u64))
          (type $i (instance
            (export "t" (type (sub resource)))
            (export "f" (func (param "v" string) (result u32)))))
          (type (component
            (import "in" (instance (type $i)))
            (export "out" (func async))))
          (import "host" (instance (type $i)))
          (core type (module
            (import "env" "mem" (memory 1 2))
            (export "run" (func (param i32) (result i64)))))
        )
    """,
    "canon": """
        (component
          (type $s (stream u8))
          (core module $m
            (memory (export "mem") 1)
            (table (export "tbl") 1 funcref)
            (func (export "run") (param i32 i32) (result i32) unreachable)
            (func (export "cb") (param i32 i32 i32) (result i32) unreachable)
            (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
            (func (export "dtor") (param i32)))
          (core instance $i (instantiate $m))
          (alias core export $i "mem" (core memory $mem))
          (alias core export $i "tbl" (core table $tbl))
          (alias core export $i "run" (core func $run))
          (alias core export $i "cb" (core func $cb))
          (alias core export $i "realloc" (core func $realloc))
          (alias core export $i "dtor" (core func $dtor))
          (type $res (resource (rep i32) (dtor (core func $dtor))))
          (core type $ft (func (param i32)))
          (type $f (func async (param "x" string) (result u32)))
          (func (export "run") (type $f) (canon lift (core func $run) async
            (callback (core func $cb)) (memory (core memory $mem))
            (realloc (core func $realloc))))
          (core func (canon task.return (result u32) (memory (core memory $mem))))
          (core func (canon context.get i32 0))
          (core func (canon waitable-set.wait (memory (core memory $mem))))
          (core func (canon stream.read $s async (memory (core memory $mem))))
          (core func (canon subtask.cancel async))
          (core func (canon resource.new $res))
          (core func (canon thread.new-indirect $ft (core table $tbl)))
          (core func (canon error-context.new (memory (core memory $mem)) string-encoding=utf16))
        )
    """,
    "nested": """
        (component
          (import "f" (func $f))
          (component $c
            (import "x" (func))
            (core module $m (func (export "g")))
            (core instance (instantiate $m))
            (component $d (type string))
            (export "y" (func 0)))
          (instance $i (instantiate $c (with "x" (func $f))))
          (instance (export "a" (func $f)) (export "i" (instance $i)))
          (alias export $i "y" (func))
          (export "c" (component $c))
        )
    """,
    "core-types": """
        (component
          (core rec
            (type $s (sub (struct (field i8) (field (mut i16)) (field (ref null $s)))))
            (type (sub final $s
              (struct (field i8) (field (mut i16)) (field (ref null $s)) (field f64)))))
          (core type (array (mut (ref null any))))
          (core type (func (param (ref null func) externref) (result (ref i31))))
          (core type (module
            (import "m" "mem" (memory i64 1 (pagesize 1)))
            (import "m" "t" (table 1 10 externref))
            (import "m" "g" (global (mut i32)))
            (type $f (func))
            (import "m" "tag" (tag (type $f)))
            (export "f" (func (type $f)))))
          (import (interface "a:b/c@1.0.0") (instance))
        )
    """,
}


def small_binaries() -> list[bytes]:
    """The hand-written ``SOURCES`` assembled to binaries."""
    import wasmtime

    return [bytes(wasmtime.wat2wasm(text)) for text in SOURCES.values()]


def suite_binaries(cache_dir: Path, suite: Path = SUITE) -> list[bytes]:
    """Every binary the conformance suite's ``.wast`` scripts define.

    Conversion runs once per script; the results stay in ``cache_dir`` (keyed by
    the script's path and modification time) for later campaigns.
    """
    if not suite.is_dir():
        return []
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from conformance._wast import ConversionError, convert

    found: list[bytes] = []
    for wast in sorted(suite.rglob("*.wast")):
        relative = wast.relative_to(suite).with_suffix("")
        out = cache_dir / "suite" / f"{relative}-{wast.stat().st_mtime_ns}"
        done = out / ".converted"
        if not done.exists():
            out.mkdir(parents=True, exist_ok=True)
            try:
                convert(wast, out)
            except ConversionError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else "conversion failed"
                print(f"seeds: skipping {relative}: {reason}", file=sys.stderr)
                continue
            done.touch()
        found.extend(p.read_bytes() for p in sorted(out.glob("*.wasm")))
    return found


def guest_paths() -> list[Path]:
    """The built guests in ``$TRIO_WASI_GUEST_CACHE`` (else ``.cache/guests``)."""
    cache = Path(os.environ.get("TRIO_WASI_GUEST_CACHE") or REPO / ".cache" / "guests")
    return sorted(cache.glob("*.wasm")) if cache.is_dir() else []


# -- the section structure of a component -----------------------------------

#: One section: its id and either its body bytes or, for a nested component
#: (id 4) that parses, the nested component's sections.
Section = tuple[int, "bytes | list[Section]"]


def read_uleb(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """The unsigned LEB128 at ``pos`` and the position after it; None if cut short."""
    result = shift = 0
    while pos < end and shift < 35:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    return None


def encode_uleb(value: int) -> bytes:
    """``value`` as unsigned LEB128, in the fewest bytes."""
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse_sections(data: bytes, start: int = 0, end: int | None = None) -> list[Section] | None:
    """The sections of a component, nested components included; None if malformed."""
    end = len(data) if end is None else end
    if data[start : start + 8] != COMPONENT_PREAMBLE:
        return None
    pos = start + 8
    sections: list[Section] = []
    while pos < end:
        section_id = data[pos]
        size = read_uleb(data, pos + 1, end)
        if size is None or size[1] + size[0] > end:
            return None
        body_start, body_end = size[1], size[1] + size[0]
        nested = parse_sections(data, body_start, body_end) if section_id == 4 else None
        sections.append((section_id, nested if nested is not None else data[body_start:body_end]))
        pos = body_end
    return sections


def serialize(sections: list[Section]) -> bytes:
    """A component binary with these sections (sizes recomputed)."""
    out = [COMPONENT_PREAMBLE]
    for section_id, body in sections:
        raw = body if isinstance(body, bytes) else serialize(body)
        out.append(bytes([section_id]) + encode_uleb(len(raw)) + raw)
    return b"".join(out)


def skeleton(sections: list[Section]) -> list[Section]:
    """The same structure with every core module empty and custom sections dropped."""
    kept: list[Section] = []
    for section_id, body in sections:
        if section_id == 0:
            continue
        if section_id == 1:
            kept.append((1, EMPTY_MODULE))
        elif isinstance(body, list):
            kept.append((section_id, skeleton(body)))
        else:
            kept.append((section_id, body))
    return kept


def iter_sections(sections: list[Section]) -> Iterator[tuple[list[Section], int]]:
    """Every (containing list, index) pair, nested components included."""
    for i, (_, body) in enumerate(sections):
        yield sections, i
        if isinstance(body, list):
            yield from iter_sections(body)
