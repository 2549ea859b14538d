"""`otel-ml demo`, as a newcomer runs it (README's first command calls it), on the real stack:
a bounded run shows both model versions, fills Prometheus, and ends pointing at a slow
prediction that `otel-ml explain` follows; Ctrl-C stops the load and the service cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stack.backends import Backends

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "otel_ml.cli", "demo", "--plain", "--port", str(_free_port()), *args]


def test_a_bounded_demo_shows_every_version_and_a_trace_to_follow(backends: Backends) -> None:
    proc = subprocess.run(_demo("--seconds", "45", "--rps", "15", "--json"), cwd=ROOT, capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    summary = json.loads(out.strip().splitlines()[-1])
    # Every inference the load made is in Prometheus: the load generator's own count (predictions it
    # sent, less those the service refused as malformed before the model ran) against the pipeline's.
    load = summary["load"]
    made = load["predictions"] - load["rejected"]
    assert made >= 50 and summary["inferences"] == made, load
    # At least one alert fired and reached Alertmanager within the 45 s (rules on compressed time).
    assert summary["in_alertmanager"], summary["firing"]
    assert all(name.startswith("OtelMl") for name in summary["in_alertmanager"]), summary["in_alertmanager"]
    versions = sorted(summary["versions"])
    assert len(versions) == 2 and versions[1] == versions[0] + "-rc1", versions  # main and canary
    assert all(v.get("rate") for v in summary["versions"].values())
    assert summary["series"] > 100
    # Progress lines while it ran, and the URLs to open.
    assert sum(1 for line in out.splitlines() if line.startswith("[") and " s] " in line) >= 5
    for url in ("http://127.0.0.1:9090", "http://127.0.0.1:9093", "http://127.0.0.1:16686/api/traces",
                "http://127.0.0.1:3100"):
        assert url in out
    trace = summary["slowest_trace"]
    assert trace and f"otel-ml explain {trace}" in out
    explained = subprocess.run([sys.executable, "-m", "otel_ml.cli", "explain", trace, "--lookback", "1h"],
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert explained.returncode == 0 and "inference breast-cancer-classifier" in explained.stdout


def test_ctrl_c_stops_the_load_and_the_service(backends: Backends) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "otel_ml.cli", "demo", "--plain", "--port", str(port), "--seconds", "300"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if line.startswith("["):  # the first progress line: service and load are running
            break
    else:
        proc.kill()
        raise AssertionError("".join(seen))
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "stopping the load and the service" in rest
    with socket.socket() as s:  # nothing listens on the service's port any more
        assert s.connect_ex(("127.0.0.1", port)) != 0
    leftovers = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
