"""The last lines of a log file, for error messages that say why something failed."""

from __future__ import annotations

from pathlib import Path

# Written by processes.start before each launch; only the latest run's lines explain a failure.
RUN_MARKER = "--- "


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    all_lines = text.splitlines()
    starts = [i for i, line in enumerate(all_lines) if line.startswith(RUN_MARKER)]
    kept = all_lines[starts[-1] + 1 :][-lines:] if starts else all_lines[-lines:]
    return "\n".join("    " + line for line in kept) if kept else f"(empty log {path})"
