"""The last lines of a log file, for error messages that say why something failed."""

from __future__ import annotations

from pathlib import Path


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    kept = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in kept) if kept else f"(empty log {path})"
