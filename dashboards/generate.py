"""Writes every otel_ml dashboard to ``dashboards/<uid>.json`` from its builder module.

    python dashboards/generate.py            # rewrite the JSON files
    python dashboards/generate.py --check    # exit 1 and name the files that are stale

The JSON is committed (Grafana's file provisioning reads it as is, and reviewers see the diff);
``tests/dashboards`` fails when it differs from what this script would write.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make the repository root importable so `dashboards.*` resolves.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import ab, gpu, llm, overview, quality_drift
from dashboards.common import render

HERE = Path(__file__).resolve().parent

# uid -> builder; the UIDs are fixed: alerts' runbooks and other dashboards link to them.
BUILDERS: dict[str, Callable[[], Dashboard]] = {
    overview.UID: overview.build,
    quality_drift.UID: quality_drift.build,
    llm.UID: llm.build,
    gpu.UID: gpu.build,
    ab.UID: ab.build,
}


def generate() -> dict[Path, str]:
    """Every dashboard's path and JSON text, as it should be committed."""
    return {HERE / f"{uid}.json": render(build()) for uid, build in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path.relative_to(HERE.parent)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
