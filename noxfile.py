"""Developer tasks: ``nox`` runs tests, lint and typecheck; ``nox -s NAME`` runs one session."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]

ROOT = Path(__file__).resolve().parent
SUITE = ROOT.parent / "shared" / "conformance" / "component-model"
BENCHMARKS = ROOT / "tests" / "benchmarks" / "run.py"
FUZZ = ROOT / "tests" / "fuzz" / "campaign.py"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (``nox -s tests -- -k name`` passes arguments to pytest)."""
    session.install(".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """The conformance suite judged against conformance/ledger.txt.

    Runs ``../shared/conformance/component-model`` unless paths and options
    are given after ``--`` (for example ``nox -s conformance -- --json r.json DIR``).
    """
    session.install(".[test]")
    args = session.posargs or [str(SUITE)]
    session.run("python", "-m", "conformance", *args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy in strict mode over the packages listed in pyproject.toml."""
    session.install(".[test]")
    session.run("mypy", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks (tests/benchmarks/run.py); arguments after ``--`` go to it."""
    if not BENCHMARKS.is_file():
        session.skip(f"{BENCHMARKS.relative_to(ROOT)} does not exist")
    session.install(".[test]")
    session.run("python", str(BENCHMARKS.relative_to(ROOT)), *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """A decoder fuzz campaign (tests/fuzz/campaign.py), 1,000,000 inputs by default.

    ``nox -s fuzz -- 600`` runs for 600 seconds instead; ``--inputs N`` and
    ``--seed N`` are passed on too. Seeds come from the shared conformance suite
    (converted into ``.cache/fuzz-seeds/``) and the built guests; crashers are
    written, minimised, to ``tests/fuzz/crashers/`` and the session fails.
    """
    session.install(".[test]")
    session.run("python", str(FUZZ.relative_to(ROOT)), *session.posargs)
