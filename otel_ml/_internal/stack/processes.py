"""Starting, stopping and health-checking the stack's components as background processes.

A component counts as ours when ``.stack/run/<name>.pid`` names a live process running the
component's executable; pid files of dead or recycled pids are ignored and replaced.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack.components import Component
from otel_ml._internal.stack.logtail import RUN_MARKER, tail
from otel_ml._internal.stack.paths import StackPaths


@dataclass(frozen=True)
class State:
    component: Component
    pid: int | None
    healthy: bool


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _pid_file(paths: StackPaths, c: Component) -> Path:
    return paths.run / f"{c.name}.pid"


def _log_file(paths: StackPaths, c: Component) -> Path:
    return paths.logs / f"{c.name}.log"


def _alive_pid(paths: StackPaths, c: Component) -> int | None:
    """The pid from the component's pid file, if that process is alive and runs its executable."""
    try:
        pid = int(_pid_file(paths, c).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError):
        return None
    return pid if os.path.basename(cmdline) == os.path.basename(c.executable) else None


def state(paths: StackPaths, c: Component) -> State:
    return State(c, _alive_pid(paths, c), healthy(c.health_url))


def start(paths: StackPaths, c: Component) -> int:
    """Start ``c`` detached (own session, so it outlives the CLI), logging to .stack/logs."""
    if c.data_dir is not None:
        c.data_dir.mkdir(parents=True, exist_ok=True)
    log = _log_file(paths, c)
    with log.open("a") as out:
        out.write(f"{RUN_MARKER}{time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(c.argv)}\n")
        out.flush()
        proc = subprocess.Popen(
            list(c.argv), cwd=paths.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **c.env}, start_new_session=True,
        )
    _pid_file(paths, c).write_text(f"{proc.pid}\n")
    return proc.pid


def wait_healthy(paths: StackPaths, comps: list[Component], timeout: float) -> dict[str, str]:
    """Poll until every component is healthy; returns {name: why} for those that are not."""
    pending = {c.name: c for c in comps}
    deadline = time.monotonic() + timeout
    failed: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        for name, c in list(pending.items()):
            if healthy(c.health_url):
                del pending[name]
            elif _exited(paths, c):
                log = _log_file(paths, c)
                failed[name] = f"exited during start-up; end of {log}:\n{tail(log)}"
                del pending[name]
        if pending:
            time.sleep(0.5)
    for name, c in pending.items():
        failed[name] = (f"not healthy at {c.health_url} after {timeout:.0f} s; "
                        f"end of {_log_file(paths, c)}:\n{tail(_log_file(paths, c))}")
    return failed


def reload(c: Component, timeout: float = 10.0) -> None:
    """Ask a running Prometheus or Alertmanager to re-read its config (POST /-/reload)."""
    request = urllib.request.Request(f"{c.url}/-/reload", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except (OSError, urllib.error.URLError) as exc:
        detail = exc.read().decode(errors="replace") if isinstance(exc, urllib.error.HTTPError) else exc
        raise CLIError(f"{c.name} did not reload its config ({c.url}/-/reload): {detail}") from exc


def _exited(paths: StackPaths, c: Component) -> bool:
    """True when the process we started has gone (or is a zombie); cmdline is not checked here
    because right after the fork it still shows the parent's (Python's) command line."""
    try:
        pid = int(_pid_file(paths, c).read_text().strip())
    except (OSError, ValueError):
        return False
    return not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def stop(paths: StackPaths, c: Component, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; True when a process of ours was stopped."""
    pid = _alive_pid(paths, c)
    _pid_file(paths, c).unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return fields[0] == "Z"
