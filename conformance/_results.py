"""Results of running ``.wast`` files, and their JSON form."""

from __future__ import annotations

import enum
from typing import Any, final

import attrs

__all__ = ["CommandResult", "FileResult", "Outcome", "Verdict"]


class Outcome(enum.Enum):
    """What happened when a file was run (before the ledger is consulted)."""

    PASSED = "passed"
    FAILED = "failed"


class Verdict(enum.Enum):
    """A command's result judged against the ledger."""

    PASS = "pass"
    FAIL = "unexpected failure"
    EXPECTED_FAILURE = "expected failure"
    UNEXPECTED_PASS = "unexpected pass"
    SKIPPED = "skipped"

    @property
    def is_problem(self) -> bool:
        """Whether this verdict makes the run fail."""
        return self in (Verdict.FAIL, Verdict.UNEXPECTED_PASS)


@final
@attrs.define
class CommandResult:
    """One command of a script.

    ``expected_text``/``actual_text`` carry the expected and actual error texts
    of assertions about errors. A command the ledger says not to run has
    ``skipped`` set (and ``passed`` false).
    """

    line: int
    kind: str
    passed: bool
    message: str = ""
    expected_text: str | None = None
    actual_text: str | None = None
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommandResult:
        """The inverse of :meth:`to_json`."""
        return cls(**data)


@final
@attrs.define
class FileResult:
    """One ``.wast`` file and the results of its commands.

    Whatever stops a file early (a conversion failure, a module that does not
    load, an unsupported command, the time limit) is recorded as a failed
    command too, so every failure has a line and a kind.
    """

    path: str
    outcome: Outcome
    commands: list[CommandResult] = attrs.Factory(list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[CommandResult]:
        """The commands that failed (skipped commands are not failures)."""
        return [c for c in self.commands if not c.passed and not c.skipped]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "outcome": self.outcome.value,
            "seconds": round(self.seconds, 3),
            "commands": [c.to_json() for c in self.commands],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileResult:
        """The inverse of :meth:`to_json`."""
        return cls(
            path=data["path"],
            outcome=Outcome(data["outcome"]),
            commands=[CommandResult.from_json(c) for c in data["commands"]],
            seconds=data["seconds"],
        )
