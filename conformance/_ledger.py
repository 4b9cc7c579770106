"""The ledger of known conformance failures (``ledger.txt``), one command per entry.

Each entry is ``path.wast:LINE: reason``: the ``.wast`` path relative to the
suite root, the source line of the command (as ``json-from-wast`` reports it),
and the reason, which is required (an entry nobody can explain is an entry
nobody will remove). ``#`` starts a comment line; blank lines are ignored. A
reason that starts with ``skip:`` marks a command that is not run at all (only
for a command that cannot be run safely, e.g. one that crashes the process).

An entry matches a file whose path ends with the entry's path components, so
the same ledger applies whether the runner is given the suite root, a
sub-directory or single files. When several entry paths match one file, the
longest (most specific) path wins and entries under other paths are ignored
for that file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Final, final

import attrs

__all__ = [
    "DEFAULT_LEDGER",
    "SKIP_PREFIX",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "load_ledger",
    "parse_ledger",
]

#: The ledger shipped next to this module.
DEFAULT_LEDGER: Final = Path(__file__).with_name("ledger.txt")

#: A reason with this prefix means "do not run the command".
SKIP_PREFIX: Final = "skip:"

_ENTRY: Final = re.compile(r"^(\S+?):(\d+):\s+(\S.*)$")


class LedgerError(ValueError):
    """The ledger text is not well-formed."""


def _suffix_matches(wanted: PurePosixPath, file: Path) -> bool:
    parts = file.parts
    n = len(wanted.parts)
    return len(parts) >= n and parts[len(parts) - n :] == wanted.parts


@final
@attrs.frozen
class LedgerEntry:
    """One command that is expected to fail (or is not run)."""

    path: PurePosixPath
    line: int
    reason: str
    #: The line of the ledger file this entry is on.
    source_line: int

    @property
    def skip(self) -> bool:
        """True when the command must not be run at all."""
        return self.reason.startswith(SKIP_PREFIX)

    def matches(self, file: Path) -> bool:
        """Whether ``file`` is the file this entry names (trailing path components)."""
        return _suffix_matches(self.path, file)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@final
@attrs.frozen
class Ledger:
    """A parsed ledger."""

    entries: tuple[LedgerEntry, ...] = ()

    def for_file(self, file: Path) -> Mapping[int, LedgerEntry]:
        """The entries of ``file`` keyed by command line (empty when none apply)."""
        paths = {entry.path for entry in self.entries if entry.matches(file)}
        if not paths:
            return {}
        # The longest (most specific) path wins when several suffixes match.
        best = max(paths, key=lambda p: len(p.parts))
        return {entry.line: entry for entry in self.entries if entry.path == best}

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def parse_ledger(text: str, source: str = "ledger") -> Ledger:
    """Parse ledger text; :class:`LedgerError` names the offending line."""
    entries: list[LedgerEntry] = []
    seen: dict[tuple[PurePosixPath, int], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise LedgerError(f"{source}:{number}: expected 'path.wast:LINE: reason', got {line!r}")
        path = PurePosixPath(match.group(1))
        if path.suffix != ".wast" or path.is_absolute() or ".." in path.parts:
            raise LedgerError(f"{source}:{number}: {path} is not a relative path to a .wast file")
        key = (path, int(match.group(2)))
        if key in seen:
            raise LedgerError(
                f"{source}:{number}: {path}:{key[1]} is already listed on line {seen[key]}"
            )
        seen[key] = number
        entries.append(LedgerEntry(path, key[1], match.group(3).strip(), number))
    return Ledger(tuple(entries))


def load_ledger(path: Path) -> Ledger:
    """Read and parse the ledger file at ``path``."""
    return parse_ledger(path.read_text(encoding="utf-8"), str(path))
