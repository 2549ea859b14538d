"""``otel-ml stack build|up|down|status``: the local backends as background processes.

``build``  Go builds of the collector (ocb), Jaeger, Loki, Prometheus and Alertmanager into .stack/bin
``up``     builds if needed, writes Alertmanager's local config and secret stand-ins and
           Prometheus's (rules at $OTEL_ML_RULES_TIME_SCALE), starts what is not running
           (reloading a running Prometheus or Alertmanager whose config changed), waits until
           every component is healthy
``down``   stops the components started by ``up``
``status`` one line per component: health, pid, URL (exit status 1 unless all are healthy)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack import alerting, build, processes, rules
from otel_ml._internal.stack.components import components
from otel_ml._internal.stack.paths import StackPaths, find_root

UP_TIMEOUT_S = 120.0  # Loki alone needs ~15 s to report ready on a 2-core machine.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("stack", help="build, start, stop or inspect the local backend stack")
    sub = parser.add_subparsers(dest="stack_command", required=True)
    sub.add_parser("build", help="install/build every component into .stack/").set_defaults(handler=_build)
    up = sub.add_parser("up", help="build if needed, start all components and wait until healthy")
    up.add_argument("--timeout", type=float, default=UP_TIMEOUT_S, help="seconds to wait for health")
    up.set_defaults(handler=_up)
    sub.add_parser("down", help="stop the components `up` started").set_defaults(handler=_down)
    status = sub.add_parser("status", help="health, pid and URL of each component")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)


def _say(msg: str) -> None:
    print(f"otel-ml stack: {msg}", flush=True)


def _build(args: argparse.Namespace) -> int:
    build.build_all(find_root(), _say)
    return 0


def _missing_executables(paths: StackPaths) -> list[str]:
    return [c.name for c in components(paths)
            if not (Path(c.executable).is_file() if "/" in c.executable else shutil.which(c.executable))]


def _up(args: argparse.Namespace) -> int:
    paths = find_root()
    if _missing_executables(paths):
        build.build_all(paths, _say)
    paths.ensure()
    alertmanager_changed = alerting.prepare(paths)
    prometheus_changed = rules.prepare(paths)
    comps = components(paths)
    running = []
    for c in comps:
        st = processes.state(paths, c)
        if st.pid is not None or st.healthy:
            # Already ours and running, or something healthy already answers on its port.
            running.append(c)
            continue
        pid = processes.start(paths, c)
        _say(f"started {c.name} (pid {pid})")
    failed = processes.wait_healthy(paths, comps, args.timeout)
    if failed:
        details = "\n".join(f"- {name}: {why}" for name, why in failed.items())
        raise CLIError(f"{len(failed)} component(s) did not come up:\n{details}")
    for c in running:
        if c.name == "alertmanager" and alertmanager_changed:
            processes.reload(c)
            _say(f"reloaded {c.name}: its config (alerts/alertmanager.yml or the secrets folder) changed")
        if c.name == "prometheus" and prometheus_changed:
            processes.reload(c)
            _say(f"reloaded {c.name}: its config or rule time scale changed")
    _print_table(paths)
    return 0


def _down(args: argparse.Namespace) -> int:
    paths = find_root()
    # Reverse start order: the collector stops before the backends it exports to.
    for c in reversed(components(paths)):
        if processes.stop(paths, c):
            _say(f"stopped {c.name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    paths = find_root()
    states = [processes.state(paths, c) for c in components(paths)]
    if args.json:
        rows = [{"name": s.component.name, "healthy": s.healthy, "pid": s.pid, "url": s.component.url}
                for s in states]
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        _print_table(paths, states)
    return 0 if all(s.healthy for s in states) else 1


def _print_table(paths: StackPaths, states: list[processes.State] | None = None) -> None:
    states = states if states is not None else [processes.state(paths, c) for c in components(paths)]
    print(f"{'component':<13} {'health':<10} {'pid':<8} url")
    for s in states:
        pid = str(s.pid) if s.pid is not None else ("external" if s.healthy else "-")
        print(f"{s.component.name:<13} {'healthy' if s.healthy else 'DOWN':<10} {pid:<8} {s.component.url}")
