"""Private collector processes for tests that must start, stop or reconfigure a collector.

Each runs the built ``.stack/bin/otelcol-otel-ml`` on its own loopback address (127.0.0.x), never
the shared stack's 127.0.0.1, and is stopped by the test that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / ".stack" / "bin" / "otelcol-otel-ml"


class Collector:
    """One collector process: ``start`` waits for its health_check, ``stop`` ends it (SIGTERM, then
    SIGKILL) and is safe to call twice. Output goes to ``log``, shown when startup fails."""

    def __init__(self, configs: Sequence[Path], env: Mapping[str, str], log: Path, health_url: str) -> None:
        self.configs, self.env, self.log, self.health_url = list(configs), dict(env), log, health_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Collector:
        argv = [str(BINARY), *(f"--config={c}" for c in self.configs)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited with {self.proc.returncode}:\n{self.output()}")
            if healthy(self.health_url):
                return self
            time.sleep(0.3)
        raise AssertionError(f"collector not healthy at {self.health_url} after {timeout:.0f} s:\n{self.output()}")

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def kill(self) -> None:
        """SIGKILL: the collector gets no chance to flush what it holds (an outage, not a shutdown)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def scrape(url: str) -> str:
    """The text of a Prometheus endpoint ("" while it is not up)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except (OSError, urllib.error.URLError):
        return ""


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def make_certs(d: Path, hosts: Iterable[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and one server certificate for the IP addresses ``hosts`` signed by it:
    (ca.pem, server.pem, server.key) in ``d``."""
    hosts = list(hosts)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=otel-ml test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={hosts[0]}", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=" + ",".join(f"IP:{h}" for h in hosts) + "\n"
                               "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf", cwd=d)
    return d / "ca.pem", d / "server.pem", d / "server.key"


def secret_file(path: Path, value: str) -> Path:
    """``value`` (a token) in a file only its owner may read, as a mounted Secret would be."""
    path.write_text(f"{value}\n")
    path.chmod(0o600)
    return path
