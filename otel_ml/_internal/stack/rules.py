"""The local stack's Prometheus config: stack/prometheus.yml with its rule files made absolute.

By default Prometheus loads the shipped rules, ``alerts/*.rules.yml``. With
``OTEL_ML_RULES_TIME_SCALE`` set (e.g. ``0.0333``: an hour becomes two minutes) ``stack up``
renders the same rules with every duration scaled (``alerts/generate.py --time-scale``) into
``.stack/prometheus/rules/`` and loads those instead: the demo and the real-data tests fire the
shipped expressions on minutes of traffic. The copy lives in ``.stack/prometheus/``; the
committed stack/prometheus.yml stays what compose.yaml and deployments load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from otel_ml._internal import env
from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack.paths import StackPaths


def config_file(paths: StackPaths) -> Path:
    """What the stack's Prometheus runs (written by :func:`prepare`)."""
    return paths.stack / "prometheus" / "prometheus.yml"


def time_scale() -> float:
    text = os.environ.get(env.RULES_TIME_SCALE, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise CLIError(f"{env.RULES_TIME_SCALE}={text!r} is not a number (e.g. 0.0333)") from None
    if not 0 < value <= 1:
        raise CLIError(f"{env.RULES_TIME_SCALE}={text!r} must be in (0, 1]")
    return value


def prepare(paths: StackPaths) -> bool:
    """Write the config copy (and scaled rules); True when the copy changed."""
    source = paths.root / "stack" / "prometheus.yml"
    try:
        doc = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CLIError(f"cannot read {source}: {exc}") from exc
    scale = time_scale()
    out = config_file(paths).parent
    out.mkdir(parents=True, exist_ok=True)
    before = _digest(out / "rules")
    if scale == 1.0:
        rules = str(paths.root / "alerts" / "*.rules.yml")
    else:
        target = out / "rules"
        proc = subprocess.run([sys.executable, str(paths.root / "alerts" / "generate.py"), "--time-scale",
                               repr(scale), "--out", str(target)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise CLIError(f"alerts/generate.py --time-scale {scale} failed: {proc.stderr.strip()[-500:]}")
        rules = str(target / "*.rules.yml")
    # Relative rule paths in the committed file are relative to stack/: make them absolute.
    doc["rule_files"] = [rules if "alerts/" in r else str((source.parent / r).resolve())
                         for r in doc.get("rule_files", [])]
    text = f"# Written by otel-ml stack up from stack/prometheus.yml (rule time scale {scale!r}).\n" + yaml.safe_dump(
        doc, sort_keys=False)
    target_file = config_file(paths)
    rules_changed = _digest(out / "rules") != before
    if target_file.is_file() and target_file.read_text() == text:
        return rules_changed and scale != 1.0
    target_file.write_text(text)
    return True


def _digest(folder: Path) -> dict[str, str]:
    """What the rendered rule files hold now (a reload is due when it changes)."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(folder.glob("*.rules.yml"))}
