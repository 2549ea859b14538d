"""``otel-ml demo``: the main job - the local stack, the example service and a load that shows
every signal, with a live view of what the backends see.

It starts the stack (building it if needed; rules on compressed time so alerts fire within
minutes), the example service (a breast-cancer classifier with a canary version at 10 % of the
traffic that is measurably worse, a regression model and an LLM-style stream) and
``examples/load.py`` (inputs drifting gradually, delayed labels, 7 % failing and 3 % slow
inferences). While it runs, every ``--interval`` seconds it reads Prometheus and Alertmanager
and shows elapsed/remaining time, requests, per-version rate, error ratio, p95 latency and
accuracy, the firing alerts, and the backends' URLs. At the end it prints where to look next:
a slow prediction to follow with ``otel-ml explain``.

Bounded in time (``--seconds``) and requests (``--max-requests``). Ctrl-C stops the load and
the service, and the stack too when this command started it; after a normal end the stack keeps
running so you can explore (``otel-ml stack down`` stops it). ``--plain`` prints one line per
interval instead of the live view (used where stdout is not a terminal).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_ml._internal import env
from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack import processes
from otel_ml._internal.stack.components import components
from otel_ml._internal.stack.paths import find_root

MODEL = "breast-cancer-classifier"
URLS = {
    "Prometheus": "http://127.0.0.1:9090",
    "Alertmanager": "http://127.0.0.1:9093",
    "Jaeger API": "http://127.0.0.1:16686/api/traces",
    "Loki": "http://127.0.0.1:3100",
    "OTLP (gRPC / HTTP)": "127.0.0.1:4317 / 127.0.0.1:4318",
    "Grafana (Docker users: docker compose up)": "http://127.0.0.1:3000",
}


@dataclass
class Snapshot:
    elapsed: float
    requests: int = 0
    versions: dict[str, dict[str, float | None]] = field(default_factory=dict)
    firing: list[str] = field(default_factory=list)  # Prometheus ALERTS
    delivered: list[str] = field(default_factory=list)  # alert names Alertmanager holds
    series: int = 0
    error: str = ""


def _get(url: str, params: dict[str, str] | None = None) -> Any:
    full = f"{url}?{urllib.parse.urlencode(params)}" if params else url
    with urllib.request.urlopen(full, timeout=5) as resp:
        return json.loads(resp.read())


def _query(expr: str) -> list[dict[str, Any]]:
    return list(_get(f"{URLS['Prometheus']}/api/v1/query", {"query": expr})["data"]["result"])


def snapshot(elapsed: float, service: str) -> Snapshot:
    snap = Snapshot(elapsed)
    sel = f'ml_model_name="{MODEL}",service_name="{service}"'
    try:
        total = _query(f"sum by (ml_model_version) (ml_inference_duration_seconds_count{{{sel}}})")
        rate = _query(f"sum by (ml_model_version) (rate(ml_inference_duration_seconds_count{{{sel}}}[1m]))")
        count = "ml_inference_duration_seconds_count"
        errors = _query(f'sum by (ml_model_version) (rate({count}{{{sel},error_type!=""}}[1m]))'
                        f" / sum by (ml_model_version) (rate({count}{{{sel}}}[1m]))")
        p95 = _query(f"histogram_quantile(0.95, sum by (ml_model_version, le) "
                     f"(rate(ml_inference_duration_seconds_bucket{{{sel}}}[1m])))")
        accuracy = _query(f'max by (ml_model_version) (ml_quality_score_ratio{{{sel},ml_quality_metric="accuracy"}})')
        for name, rows in (("total", total), ("rate", rate), ("errors", errors), ("p95", p95),
                           ("accuracy", accuracy)):
            for r in rows:
                version = r["metric"].get("ml_model_version", "?")
                value = float(r["value"][1])
                snap.versions.setdefault(version, {})[name] = value if value == value else None  # NaN: none
        snap.requests = int(sum(float(r["value"][1]) for r in total))
        firing = _query(f'ALERTS{{alertstate="firing",service_name="{service}"}}')
        snap.firing = sorted({r["metric"]["alertname"] for r in firing})
        series = _query(f'count({{service_name="{service}"}})')
        snap.series = int(float(series[0]["value"][1])) if series else 0
        am = _get(f"{URLS['Alertmanager']}/api/v2/alerts", {"filter": f'service_name="{service}"'})
        snap.delivered = sorted({a["labels"]["alertname"] for a in am})
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        snap.error = f"backends not answering yet: {exc}"
    return snap


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ratio":
        return f"{value * 100:.1f} %"
    if kind == "ms":
        return f"{value * 1000:.0f} ms"
    if kind == "rate":
        return f"{value:.1f}/s"
    return f"{value:.0f}"


def render_plain(snap: Snapshot, seconds: float) -> str:
    parts = [f"[{snap.elapsed:4.0f}/{seconds:.0f} s] {snap.requests} inferences, {snap.series} series"]
    for version, v in sorted(snap.versions.items()):
        parts.append(f"{version}: {_fmt(v.get('rate'), 'rate')} err {_fmt(v.get('errors'), 'ratio')} "
                     f"p95 {_fmt(v.get('p95'), 'ms')} acc {_fmt(v.get('accuracy'), 'ratio')}")
    parts.append(f"firing: {', '.join(snap.firing) or 'none'}")
    if snap.error:
        parts.append(snap.error)
    return " | ".join(parts)


def render_rich(snap: Snapshot, seconds: float, service: str) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    head = Table.grid(padding=(0, 2))
    head.add_row(f"[bold]otel-ml demo[/] service [cyan]{service}[/]",
                 f"elapsed {snap.elapsed:.0f} s / {seconds:.0f} s",
                 f"remaining {max(0.0, seconds - snap.elapsed):.0f} s",
                 f"{snap.requests} inferences", f"{snap.series} series in Prometheus")
    versions = Table(title=f"{MODEL}, per version (last minute)", expand=True)
    for col in ("version", "rate", "error ratio", "p95 latency", "accuracy (delayed labels)", "inferences"):
        versions.add_column(col, justify="left" if col == "version" else "right")
    for version, v in sorted(snap.versions.items()):
        err = v.get("errors")
        style = "red" if err is not None and err > 0.1 else ""
        versions.add_row(version + (" (canary)" if version.endswith("-rc1") else ""), _fmt(v.get("rate"), "rate"),
                         f"[{style}]{_fmt(err, 'ratio')}[/]" if style else _fmt(err, "ratio"),
                         _fmt(v.get("p95"), "ms"), _fmt(v.get("accuracy"), "ratio"), _fmt(v.get("total"), "n"))
    alerts = Table(title="alerts", expand=True)
    alerts.add_column("firing in Prometheus")
    alerts.add_column("in Alertmanager")
    for i in range(max(len(snap.firing), len(snap.delivered), 1)):
        alerts.add_row(snap.firing[i] if i < len(snap.firing) else ("none yet" if i == 0 else ""),
                       snap.delivered[i] if i < len(snap.delivered) else ("none yet" if i == 0 else ""))
    links = Table.grid(padding=(0, 2))
    for name, url in URLS.items():
        links.add_row(name, f"[link={url}]{url}[/link]" if url.startswith("http") else url)
    parts: list[Any] = [head, ProgressBar(total=seconds, completed=min(snap.elapsed, seconds)), versions, alerts,
                        Panel(links, title="where to look")]
    if snap.error:
        parts.append(f"[yellow]{snap.error}[/]")
    return Group(*parts)


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def _stack_healthy() -> bool:
    paths = find_root()
    return all(processes.state(paths, c).healthy for c in components(paths))


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CLIError(f"the example service exited with {proc.returncode}; see {log}")
        try:
            _get(f"{url}/healthz")
            return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.5)
    raise CLIError(f"the example service did not answer {url}/healthz within {timeout:.0f} s; see {log}")


def _slowest_exemplar(service: str) -> tuple[float, str] | None:
    now = time.time()
    try:
        body = _get(f"{URLS['Prometheus']}/api/v1/query_exemplars", {
            "query": f'ml_inference_duration_seconds_bucket{{ml_model_name="{MODEL}",service_name="{service}"}}',
            "start": str(now - 900), "end": str(now)})
    except (urllib.error.URLError, OSError, ValueError):
        return None
    exemplars = [e for s in body.get("data") or [] for e in s.get("exemplars", [])]
    if not exemplars:
        return None
    slowest = max(exemplars, key=lambda e: float(e["value"]))
    return float(slowest["value"]), str(slowest["labels"].get("trace_id", ""))


def run(args: argparse.Namespace) -> int:
    root = find_root().root
    python = sys.executable
    otel_ml = [python, "-m", "otel_ml.cli"]
    service = f"otel-ml-demo-{os.getpid()}"
    started_stack = not _stack_healthy()
    stack_env = {**os.environ, env.RULES_TIME_SCALE: os.environ.get(env.RULES_TIME_SCALE, "0.0333")}
    print("==> otel-ml stack up (rules on compressed time: an hour of rule windows is two minutes)", flush=True)
    up = subprocess.run([*otel_ml, "stack", "up"], cwd=root, env=stack_env)
    if up.returncode != 0:
        raise CLIError("the local stack did not come up (see above)")
    port = _free_port(args.port)
    url = f"http://127.0.0.1:{port}"
    logs = root / ".stack" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    svc_log, load_log = logs / "demo-service.log", logs / "demo-load.log"
    svc_env = {**os.environ, "OTEL_SERVICE_NAME": service, "OTEL_METRIC_EXPORT_INTERVAL": "2000",
               "DRIFT_WINDOW_S": "30", "CANARY_SHARE": "0.1", "DEMO_FAULTS": "1", "OTEL_BSP_SCHEDULE_DELAY": "500"}
    children: list[subprocess.Popen[bytes]] = []
    interrupted = False
    previous_handler: Any = None
    if threading.current_thread() is threading.main_thread():
        _Interrupt.seen = False
        previous_handler = signal.signal(signal.SIGINT, _Interrupt.handler)
    load_result: dict[str, Any] = {}
    try:
        with svc_log.open("wb") as out:
            svc = subprocess.Popen([python, "-m", "uvicorn", "examples.classifier_service.app:app", "--host",
                                    "127.0.0.1", "--port", str(port)], cwd=root, env=svc_env, stdout=out,
                                   stderr=subprocess.STDOUT)
        children.append(svc)
        print(f"==> example service {service} on {url} (log {svc_log})", flush=True)
        _wait_healthy(url, svc, svc_log)
        with load_log.open("wb") as out:
            load = subprocess.Popen(
                [python, "examples/load.py", "--url", url, "--seconds", str(args.seconds), "--rps", str(args.rps),
                 "--max-requests", str(args.max_requests), "--error-rate", "0.07", "--slow-rate", "0.03",
                 "--drift-after", "0.3", "--drift-ramp", "0.2"], cwd=root, stdout=out, stderr=subprocess.STDOUT)
        children.append(load)
        print(f"==> load for {args.seconds} s at {args.rps} requests/s (log {load_log}); Ctrl-C stops everything",
              flush=True)
        started = time.monotonic()
        last = _watch(load, started, args, service)
        if load.returncode not in (0, None):
            raise CLIError(f"examples/load.py exited with {load.returncode}; see {load_log}")
        load_result = _load_result(load_log)
        last = _settle(started, service, load_result, args)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping the load and the service", flush=True)
        raise
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if interrupted and started_stack:
            print("==> otel-ml stack down (this demo started it)", flush=True)
            subprocess.run([*otel_ml, "stack", "down"], cwd=root)
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    _summary(last, service, args, load_result)
    return 0


def _load_result(log: Path) -> dict[str, Any]:
    """The load generator's own count of what it sent (its log's last line), to check Prometheus against."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}
    return result if isinstance(result, dict) else {}


def _settle(started: float, service: str, load: dict[str, Any], args: argparse.Namespace) -> Snapshot:
    """Wait for the last export and scrape: until Prometheus counts every inference the load made (each
    /predict the service did not refuse as malformed), or 20 s."""
    expected = int(load.get("predictions", 0)) - int(load.get("rejected", 0))
    deadline = time.monotonic() + 20.0
    time.sleep(min(4.0, args.interval * 2))
    snap = snapshot(time.monotonic() - started, service)
    while expected and snap.requests < expected and time.monotonic() < deadline:
        _Interrupt.check()
        time.sleep(1.0)
        snap = snapshot(time.monotonic() - started, service)
    return snap


class _Interrupt:
    """Ctrl-C, remembered: a KeyboardInterrupt raised while the interpreter runs a finalizer (a
    socket's ``__del__`` during garbage collection) is printed and dropped by CPython, and the demo
    then ran on for its whole duration. The handler still raises at once; the loops below also
    check the flag, so a dropped one is raised again within a poll interval."""

    seen = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.seen = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.seen:
            raise KeyboardInterrupt


def _watch(load: subprocess.Popen[bytes], started: float, args: argparse.Namespace, service: str) -> Snapshot:
    live = None
    if not args.plain and sys.stdout.isatty():
        try:
            from rich.live import Live

            live = Live(render_rich(Snapshot(0.0), args.seconds, service), refresh_per_second=2)
        except ImportError:
            live = None
    snap = Snapshot(0.0)
    if live is not None:
        live.start()
    try:
        while load.poll() is None:
            _Interrupt.check()
            time.sleep(args.interval)
            _Interrupt.check()
            snap = snapshot(time.monotonic() - started, service)
            if live is not None:
                live.update(render_rich(snap, args.seconds, service))
            else:
                print(render_plain(snap, args.seconds), flush=True)
    finally:
        if live is not None:
            live.stop()
    return snap


def _summary(snap: Snapshot, service: str, args: argparse.Namespace, load: dict[str, Any]) -> None:
    print(render_plain(snap, args.seconds))
    if load:
        made = int(load.get("predictions", 0)) - int(load.get("rejected", 0))
        print(f"The load sent {load.get('predictions')} predictions at {load.get('rps')}/s "
              f"({load.get('rejected')} refused as malformed); Prometheus counts {snap.requests} of the {made} "
              "inferences made.")
    slow = _slowest_exemplar(service)
    result = {"service": service, "inferences": snap.requests, "series": snap.series, "load": load,
              "versions": snap.versions, "firing": snap.firing, "in_alertmanager": snap.delivered,
              "slowest_trace": slow[1] if slow else None}
    print("\nWhere to look:")
    for name, url in URLS.items():
        print(f"  {name:<44} {url}")
    if slow:
        print(f"\nThe slowest sampled prediction took {slow[0] * 1000:.0f} ms; follow it across Jaeger and Loki:\n"
              f"  otel-ml explain {slow[1]}")
    main_version = next((v for v in sorted(snap.versions) if not v.endswith("-rc1")), "<version>")
    print("Compare the canary with the main version (exit 1 when it is worse):\n"
          f"  otel-ml compare --model {MODEL} --service {service} --baseline {main_version} "
          f"--candidate {main_version}-rc1 --range 10m")
    print("The stack keeps running: `otel-ml stack down` stops it.")
    if args.json:
        print(json.dumps(result))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="the local stack, the example service and a load, with a live view")
    parser.add_argument("--seconds", type=int, default=240, help="how long the load runs (default 240)")
    parser.add_argument("--rps", type=float, default=20.0, help="requests per second (default 20)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="request bound (default 20000)")
    parser.add_argument("--port", type=int, default=8000, help="the example service's port (a free one if taken)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between views (default 2)")
    parser.add_argument("--plain", action="store_true", help="one line per interval instead of the live view")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of what the backends saw")
    parser.set_defaults(handler=run)
