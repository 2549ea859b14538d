"""``otel-ml bench load``: the example service under sustained load, with otel_ml and without.

Two copies of the example service run side by side under uvicorn on loopback:

* **with otel_ml**: ``examples/classifier_service/app.py`` as the demo runs it - ``configure()``,
  the FastAPI instrumentor, a monitor with a reference profile (drift, data quality), prediction
  ids kept for delayed labels, a log line per prediction; exporting over OTLP to 127.0.0.1:4317
  (the local stack when it is up; otherwise otel_ml's exporters retry and drop, as in production);
* **without**: ``examples/classifier_service/bare.py``, the same model and ``/predict`` handler
  with no telemetry at all.

A load generator in a separate process (stdlib ``http.client``, one keep-alive connection per
thread, ``--concurrency`` threads) sends ``POST /predict`` with rows of the training data. The
requests are split into a warm-up and ten chunks; each chunk goes to both services, one after
the other (alternating which goes first), so both see the same machine load over time.
Reported per service: requests/s, p50 and p99 latency (client side, the whole HTTP round trip),
errors, and the resident memory of the service process (``VmRSS`` from ``/proc/<pid>/status``)
at start, after warm-up and after every 10 %, with its slope over the run (least squares, MB per
100 000 requests); then the ratios with/without.

The figures depend on the machine (and on whatever else runs on it); compare only the two
columns of one run. Importing this module does nothing; the measurement runs only when called.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from otel_ml._internal.errors import CLIError

APPS = {"with": "examples.classifier_service.app:app", "without": "examples.classifier_service.bare:app"}
_CHUNKS = 10


# --------------------------------------------------------------------------- load generator
def _worker(argv: list[str]) -> int:
    """``python -m otel_ml._internal.bench.load PORT N CONCURRENCY BODIES``: one JSON line out."""
    import http.client

    port, n, concurrency, bodies_path = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    bodies = [b.encode() for b in Path(bodies_path).read_text().splitlines() if b]
    latencies: list[list[int]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}

    def run(k: int) -> None:
        todo = n // concurrency + (1 if k < n % concurrency else 0)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat = latencies[k]
        for i in range(todo):
            body = bodies[(k * 7919 + i) % len(bodies)]
            t0 = time.perf_counter_ns()
            try:
                conn.request("POST", "/predict", body, headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            lat.append((time.perf_counter_ns() - t0) // 1000)
            if not ok:
                errors[k] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    merged = sorted(x for lat in latencies for x in lat)
    print(json.dumps({"n": len(merged), "errors": sum(errors), "wall_s": wall, "latencies_us": merged}))
    return 0


# --------------------------------------------------------------------------- services
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class _Service:
    def __init__(self, kind: str, root: Path, logdir: Path, service_name: str) -> None:
        self.kind = kind
        self.port = _free_port()
        self.log = logdir / f"service-{kind}.log"
        env = {**os.environ, "OTEL_SERVICE_NAME": service_name, "PYTHONUNBUFFERED": "1"}
        for key in ("CANARY_SHARE", "DEMO_FAULTS"):
            env.pop(key, None)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", APPS[kind], "--host", "127.0.0.1", "--port", str(self.port),
                 "--no-access-log", "--log-level", "warning"],
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.latencies: list[int] = []
        self.wall = 0.0
        self.errors = 0
        self.rss: dict[str, Any] = {"progress": []}

    def wait_healthy(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CLIError(f"the {self.kind}-otel_ml service ({APPS[self.kind]}) exited with "
                               f"{self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise CLIError(f"the {self.kind}-otel_ml service did not answer {url} within {timeout:.0f} s; see {self.log}")

    def rss_now(self) -> float:
        return round(_rss_mb(self.proc.pid), 2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _drive(service: _Service, n: int, concurrency: int, bodies: Path, record: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "otel_ml._internal.bench.load", str(service.port), str(n), str(concurrency),
         str(bodies)], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise CLIError(f"the load generator failed against the {service.kind}-otel_ml service: "
                       f"{out.stderr.strip()[-500:]}")
    if service.proc.poll() is not None:
        raise CLIError(f"the {service.kind}-otel_ml service exited with {service.proc.returncode} under load; "
                       f"see {service.log}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if r["errors"] == r["n"]:
        raise CLIError(f"every request to the {service.kind}-otel_ml service failed; see {service.log}")
    if record:
        service.latencies.extend(r["latencies_us"])
        service.wall += float(r["wall_s"])
        service.errors += int(r["errors"])


def _bodies(path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data
    path.write_text("\n".join(json.dumps({"features": [float(v) for v in row]}) for row in data[:256]) + "\n")


def _pct(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[i] / 1000.0


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) per 100 000 requests."""
    if len(points) < 2:
        return float("nan")
    xs = [p[0] / 100_000 for p in points]
    ys = [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def measure(requests: int, concurrency: int, warmup: int | None = None, root: Path | None = None,
            progress: bool = False, kinds: tuple[str, ...] = ("with", "without")) -> dict[str, Any]:
    from otel_ml._internal.stack.paths import find_root

    root = root or find_root().root
    for kind, target in APPS.items():
        path = root / (target.split(":")[0].replace(".", "/") + ".py")
        if not path.is_file():
            raise CLIError(f"{path} not found: bench load runs the example service from a checkout of otel_ml "
                           f"({kind} otel_ml)")
    warmup = warmup if warmup is not None else min(5_000, max(200, requests // 20))
    logdir = Path(tempfile.mkdtemp(prefix="otel-ml-bench-load-"))
    bodies = logdir / "bodies.jsonl"
    _bodies(bodies)
    services = [_Service(kind, root, logdir, f"otel-ml-bench-load-{os.getpid()}") for kind in kinds]
    try:
        for s in services:
            s.wait_healthy()
        for s in services:
            s.rss["start"] = s.rss_now()
        for s in services:
            _drive(s, warmup, concurrency, bodies, record=False)
            s.rss["after_warmup"] = s.rss_now()
            s.rss["progress"].append((0, s.rss["after_warmup"]))
        done = 0
        for chunk in range(_CHUNKS):
            n = requests // _CHUNKS + (1 if chunk < requests % _CHUNKS else 0)
            order = services if chunk % 2 == 0 else services[::-1]
            for s in order:
                _drive(s, n, concurrency, bodies, record=True)
            done += n
            for s in services:
                s.rss["progress"].append((done, s.rss_now()))
            if progress:
                print(f"  {done}/{requests} requests", file=sys.stderr, flush=True)
    finally:
        for s in services:
            s.stop()
    out: dict[str, Any] = {"requests": requests, "concurrency": concurrency, "warmup": warmup, "logs": str(logdir)}
    for s in services:
        s.latencies.sort()
        out[s.kind] = {
            "rps": round(len(s.latencies) / s.wall, 1) if s.wall else float("nan"),
            "p50_ms": round(_pct(s.latencies, 0.50), 3),
            "p99_ms": round(_pct(s.latencies, 0.99), 3),
            "errors": s.errors,
            "rss_mb_start": s.rss["start"],
            "rss_mb_after_warmup": s.rss["after_warmup"],
            "rss_mb_progress": [list(p) for p in s.rss["progress"]],
            "rss_slope_mb_per_100k": round(_slope(s.rss["progress"]), 3),
            # Over the second half of the run: past bounded stores filling up (the pending labels'
            # 100 000), what is left of a slope is a leak.
            "rss_slope_second_half_mb_per_100k": round(_slope(s.rss["progress"][len(s.rss["progress"]) // 2:]), 3),
        }
    if "without" not in out:
        return out
    w, b = out["with"], out["without"]
    out["throughput_ratio"] = round(w["rps"] / b["rps"], 3)
    out["p50_ratio"] = round(w["p50_ms"] / b["p50_ms"], 3)
    out["p99_ratio"] = round(w["p99_ms"] / b["p99_ms"], 3)
    return out


def run(args: argparse.Namespace) -> int:
    if args.requests < 100:
        raise CLIError(f"--requests must be at least 100, got {args.requests}")
    if not 1 <= args.concurrency <= 256:
        raise CLIError(f"--concurrency must be within 1..256, got {args.concurrency}")
    if args.warmup is not None and args.warmup < 1:
        raise CLIError(f"--warmup must be at least 1, got {args.warmup}")
    r = measure(args.requests, args.concurrency, args.warmup, progress=not args.json,
                kinds=("with",) if args.memory_only else ("with", "without"))
    if args.json:
        print(json.dumps(r))
        return 0
    if args.memory_only:
        w = r["with"]
        print(f"otel-ml bench load --memory-only ({r['requests']} requests after {r['warmup']} warm-up, "
              f"{r['concurrency']} keep-alive connections, loopback; the example service with otel_ml alone)")
        print(f"  throughput {w['rps']:.1f} requests/s, p50 {w['p50_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms, "
              f"errors {w['errors']}")
        print(f"  RSS at start {w['rss_mb_start']:.1f} MB, after warm-up {w['rss_mb_after_warmup']:.1f} MB")
        for n, mw in w["rss_mb_progress"][1:]:
            print(f"  {f'RSS after {n} (MB)':28}{mw:>14.1f}")
        print(f"  RSS slope (MB / 100k req): {w['rss_slope_mb_per_100k']:.3f} over the run, "
              f"{w['rss_slope_second_half_mb_per_100k']:.3f} over its second half")
        print(f"  service logs: {r['logs']}")
        return 0
    w, b = r["with"], r["without"]
    print(f"otel-ml bench load ({r['requests']} requests to each service after {r['warmup']} warm-up, "
          f"{r['concurrency']} keep-alive connections, loopback; compare the columns, not across runs)")
    print(f"  {'':28}{'with otel_ml':>14}{'without':>12}{'ratio':>9}")
    print(f"  {'throughput (requests/s)':28}{w['rps']:>14.1f}{b['rps']:>12.1f}{r['throughput_ratio']:>9.3f}")
    print(f"  {'p50 latency (ms)':28}{w['p50_ms']:>14.2f}{b['p50_ms']:>12.2f}{r['p50_ratio']:>9.3f}")
    print(f"  {'p99 latency (ms)':28}{w['p99_ms']:>14.2f}{b['p99_ms']:>12.2f}{r['p99_ratio']:>9.3f}")
    print(f"  {'errors':28}{w['errors']:>14}{b['errors']:>12}")
    print(f"  {'RSS at start (MB)':28}{w['rss_mb_start']:>14.1f}{b['rss_mb_start']:>12.1f}")
    print(f"  {'RSS after warm-up (MB)':28}{w['rss_mb_after_warmup']:>14.1f}{b['rss_mb_after_warmup']:>12.1f}")
    for (n, mw), (_, mb) in zip(w["rss_mb_progress"][1:], b["rss_mb_progress"][1:], strict=True):
        print(f"  {f'RSS after {n} (MB)':28}{mw:>14.1f}{mb:>12.1f}")
    print(f"  {'RSS slope (MB / 100k req)':28}{w['rss_slope_mb_per_100k']:>14.3f}{b['rss_slope_mb_per_100k']:>12.3f}")
    print(f"  {'  over the second half':28}{w['rss_slope_second_half_mb_per_100k']:>14.3f}"
          f"{b['rss_slope_second_half_mb_per_100k']:>12.3f}")
    print(f"  service logs: {r['logs']}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load", help="the example service under sustained HTTP load: throughput, p99, RSS, with vs without otel_ml")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--requests", type=int, default=20_000, help="requests to each service (default 20000)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--memory-only", action="store_true",
                        help="the service with otel_ml alone (no bare twin): for long resident-memory runs")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up requests per service, not measured (default 5%% of --requests, 200..5000)")
    parser.set_defaults(handler=run)


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
