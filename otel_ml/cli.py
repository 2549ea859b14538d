"""The ``otel-ml`` command line.

Subcommands::

    otel-ml demo                     the main job: stack, example service and load, with a live view
    otel-ml stack up|down|status     the local collector + Prometheus + Alertmanager + Jaeger + Loki
    otel-ml bench overhead [--json]  per-inference CPU overhead against naive OTel instrumentation
    otel-ml bench drift [--json]     drift throughput, latency, memory, label retention, vs Evidently
    otel-ml bench outcomes [--json]  memory per prediction waiting for its label, join throughput
    otel-ml bench gpu [--json]       cost of the NVML energy meter per call (NVML faked)
    otel-ml bench load [--json]      example service under HTTP load: throughput, p99, RSS, with vs without
    otel-ml test-alert               send a synthetic alert through Alertmanager; which receivers got it
    otel-ml explain ID               one prediction's span tree, logs, model, drift and quality then
    otel-ml report -o R.html ...     self-contained HTML drift and quality report (profile + data, or Prometheus)
    otel-ml compare --model M ...    A/B or canary: figures, significance tests and a verdict (exit 1: worse)
    otel-ml profile DATA -o OUT      build a reference profile (JSON) from CSV or Parquet training data

Each subcommand lives beside the code it drives and registers itself here through a
``register(subparsers)`` function, so this module only wires them together.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from otel_ml._internal.errors import CLIError


def build_parser() -> argparse.ArgumentParser:
    from otel_ml._internal import compare, demo, explain, report
    from otel_ml._internal.bench import drift as bench_drift
    from otel_ml._internal.bench import gpu as bench_gpu
    from otel_ml._internal.bench import load as bench_load
    from otel_ml._internal.bench import outcomes as bench_outcomes
    from otel_ml._internal.bench import overhead as bench_overhead
    from otel_ml._internal.drift import cli as profile_cli
    from otel_ml._internal.stack import cli as stack_cli
    from otel_ml._internal.stack import test_alert

    parser = argparse.ArgumentParser(prog="otel-ml", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    stack_cli.register(sub)
    bench = sub.add_parser("bench", help="benchmarks that print figures and ratios against a baseline")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    bench_overhead.register(bench_sub)
    bench_drift.register(bench_sub)
    bench_outcomes.register(bench_sub)
    bench_gpu.register(bench_sub)
    bench_load.register(bench_sub)
    profile_cli.register(sub)
    test_alert.register(sub)
    explain.register(sub)
    compare.register(sub)
    demo.register(sub)
    report.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130
    except CLIError as exc:
        print(f"otel-ml: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
