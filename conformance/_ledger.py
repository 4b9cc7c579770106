"""The ledger of known conformance failures (``ledger.txt``).

One entry per line: a ``.wast`` path relative to the suite root, whitespace,
then the reason (required: an entry nobody can explain is an entry nobody will
remove). ``#`` starts a comment line; blank lines are ignored. A reason that
starts with ``skip:`` marks a file that is not run at all.

An entry matches a file whose path ends with the entry's path components, so
the same ledger applies whether the runner is given the suite root, a
sub-directory or single files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Final, final

import attrs

__all__ = ["DEFAULT_LEDGER", "Ledger", "LedgerEntry", "LedgerError", "load_ledger", "parse_ledger"]

#: The ledger shipped next to this module.
DEFAULT_LEDGER: Final = Path(__file__).with_name("ledger.txt")

_SKIP_PREFIX: Final = "skip:"
_ENTRY: Final = re.compile(r"^(\S+)\s+(\S.*)$")


class LedgerError(ValueError):
    """The ledger text is not well-formed."""


@final
@attrs.frozen
class LedgerEntry:
    """One expected-failing (or skipped) file."""

    path: PurePosixPath
    reason: str
    line: int

    @property
    def skip(self) -> bool:
        """True when the file must not be run at all."""
        return self.reason.startswith(_SKIP_PREFIX)

    def matches(self, file: Path) -> bool:
        """Whether ``file`` is the file this entry names (trailing path components)."""
        wanted = self.path.parts
        parts = file.parts
        return len(parts) >= len(wanted) and parts[len(parts) - len(wanted) :] == wanted


@final
@attrs.frozen
class Ledger:
    """A parsed ledger."""

    entries: tuple[LedgerEntry, ...] = ()

    def lookup(self, file: Path) -> LedgerEntry | None:
        """The entry for ``file``, or None when it is expected to pass."""
        found = [entry for entry in self.entries if entry.matches(file)]
        # The longest (most specific) entry wins when several suffixes match.
        return max(found, key=lambda e: len(e.path.parts), default=None)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def parse_ledger(text: str, source: str = "ledger") -> Ledger:
    """Parse ledger text; :class:`LedgerError` names the offending line."""
    entries: list[LedgerEntry] = []
    seen: dict[PurePosixPath, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise LedgerError(f"{source}:{number}: expected 'path.wast  reason', got {line!r}")
        path = PurePosixPath(match.group(1))
        if path.suffix != ".wast" or path.is_absolute() or ".." in path.parts:
            raise LedgerError(f"{source}:{number}: {path} is not a relative path to a .wast file")
        if path in seen:
            raise LedgerError(f"{source}:{number}: {path} is already listed on line {seen[path]}")
        seen[path] = number
        entries.append(LedgerEntry(path, match.group(2).strip(), number))
    return Ledger(tuple(entries))


def load_ledger(path: Path) -> Ledger:
    """Read and parse the ledger file at ``path``."""
    return parse_ledger(path.read_text(encoding="utf-8"), str(path))
