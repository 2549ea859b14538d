"""Print pip constraints pinning every OpenTelemetry dependency of pyproject.toml to its lower bound.

scripts/test installs the package with these into a second virtualenv and runs the core tests
there, so the oldest SDK the package claims to support is the one CI proves (sdk_seam.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def floors(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for dep in deps:
        m = re.match(r"^(opentelemetry-[a-z0-9-]+)\s*>=\s*([0-9][0-9a-z.]*)", dep)
        if m:
            pins.append(f"{m.group(1)}=={m.group(2)}")
    if not pins:
        raise SystemExit(f"{pyproject}: no opentelemetry-* dependency with a >= floor")
    return pins


if __name__ == "__main__":
    print("\n".join(floors(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "pyproject.toml")))
