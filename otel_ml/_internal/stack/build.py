"""``otel-ml stack build``: Debian packages, then the Go-built collector, Jaeger and Loki.

Each Go build is skipped when its binary exists and the stamp file beside it records the same
inputs (pinned version, manifest/go.sum hash, Go version). Go's default module and build caches
are used, so a rebuild after a version bump only compiles what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack.components import collector_binary
from otel_ml._internal.stack.logtail import tail
from otel_ml._internal.stack.paths import StackPaths

BUILDER_VERSION = "v0.159.0"  # go.opentelemetry.io/collector/cmd/builder; matches collector/manifest.yaml
# Jaeger v2's binary lives in the v1-numbered module: v1.76.0 is the commit tagged v2.13.0. Newer
# v2 releases exist only as commit pseudo-versions, which this workplace's module proxy does not
# serve; v1.76.0 carries one `replace` line, so it is built inside its own module (not `go install`).
JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.76.0"
JAEGER_RELEASE = "v2.13.0"  # what `jaeger version` reports (set through -ldflags, as Jaeger's Makefile does)
LOKI_MODULE = "github.com/grafana/loki/v3"
# command -> Debian package providing it
APT_COMMANDS = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}

Report = Callable[[str], None]


def go_executable() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not found:
        raise CLIError("`go` not found on PATH: the collector, Jaeger and Loki are built from source with Go")
    return found


def _run(argv: Sequence[str], log: Path, cwd: Path, env: Mapping[str, str] | None = None) -> None:
    """Run a build step, appending its output to ``log``; a failure names the step and shows the log."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}  (in {cwd})\n")
        out.flush()
        rc = subprocess.call(
            list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    if rc != 0:
        raise CLIError(f"`{' '.join(argv)}` failed with exit status {rc}; end of {log}:\n{tail(log)}")


def _output(argv: Sequence[str], cwd: Path | None = None) -> str:
    return subprocess.run(list(argv), cwd=cwd, check=True, capture_output=True, text=True).stdout


def _stamp_matches(binary: Path, key: str) -> bool:
    stamp = binary.with_name(binary.name + ".stamp")
    try:
        return binary.is_file() and json.loads(stamp.read_text()).get("key") == key
    except (OSError, ValueError):
        return False


def _write_stamp(binary: Path, key: str) -> None:
    binary.with_name(binary.name + ".stamp").write_text(json.dumps({"key": key}) + "\n")


def _sha256(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _module_dir(go: str, module: str, version: str, log: Path, cwd: Path) -> Path:
    """Download ``module@version`` into Go's module cache and return its (read-only) directory."""
    _run([go, "mod", "download", f"{module}@{version}"], log, cwd)
    info = json.loads(_output([go, "mod", "download", "-json", f"{module}@{version}"], cwd=cwd))
    return Path(info["Dir"])


def ensure_apt(report: Report) -> None:
    missing = sorted({pkg for cmd, pkg in APT_COMMANDS.items() if shutil.which(cmd) is None})
    if not missing:
        return
    report(f"apt-get install {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        [*sudo, "apt-get", "update", "-qq"],
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CLIError(f"`{' '.join(argv)}` failed: {done.stderr.strip()[-2000:]}")
    # The packages start system-wide services on the default ports; the stack runs its own.
    for svc in ("prometheus", "prometheus-alertmanager"):
        subprocess.run([*sudo, "service", svc, "stop"], capture_output=True)


def build_collector(paths: StackPaths, go: str, go_version: str, report: Report) -> bool:
    manifest = paths.root / "collector" / "manifest.yaml"
    binary = collector_binary(paths)
    key = f"{BUILDER_VERSION} {_sha256(manifest)} {go_version}"
    if _stamp_matches(binary, key):
        return False
    log = paths.logs / "build-collector.log"
    log.write_text("")
    tools = paths.build / "tools"
    builder = tools / "builder"
    if not builder.is_file() or BUILDER_VERSION not in _output([str(builder), "version"]):
        report(f"installing ocb {BUILDER_VERSION}")
        _run([go, "install", f"go.opentelemetry.io/collector/cmd/builder@{BUILDER_VERSION}"], log,
             paths.root, {"GOBIN": str(tools)})
    report("building the collector with ocb (collector/manifest.yaml)")
    # ocb refuses to create more than the last path element of dist.output_path.
    (paths.build / "collector").mkdir(parents=True, exist_ok=True)
    _run([str(builder), f"--config={manifest}"], log, paths.root)
    shutil.copy2(paths.build / "collector" / "otelcol-otel-ml", binary)
    _write_stamp(binary, key)
    return True


def build_jaeger(paths: StackPaths, go: str, go_version: str, report: Report) -> bool:
    binary = paths.bin / "jaeger"
    key = f"{JAEGER_MODULE}@{JAEGER_VERSION} {go_version}"
    if _stamp_matches(binary, key):
        return False
    log = paths.logs / "build-jaeger.log"
    log.write_text("")
    report(f"building Jaeger {JAEGER_RELEASE} ({JAEGER_MODULE}@{JAEGER_VERSION}, cmd/jaeger)")
    src = _module_dir(go, JAEGER_MODULE, JAEGER_VERSION, log, paths.root)
    # Built as the main module so its replace line applies; nothing is written into the cache dir.
    ldflags = f"-X github.com/jaegertracing/jaeger/internal/version.latestVersion={JAEGER_RELEASE}"
    _run([go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(binary), "./cmd/jaeger"], log, src)
    _write_stamp(binary, key)
    return True


def loki_version(wrapper: Path) -> str:
    found = re.search(rf"^\s*{re.escape(LOKI_MODULE)}\s+(v\S+)", (wrapper / "go.mod").read_text(), re.M)
    if not found:
        raise CLIError(f"{wrapper / 'go.mod'} does not require {LOKI_MODULE}")
    return found.group(1)


def build_loki(paths: StackPaths, go: str, go_version: str, report: Report) -> bool:
    wrapper = paths.root / "stack" / "loki-build"
    binary = paths.bin / "loki"
    key = f"{_sha256(wrapper / 'go.mod', wrapper / 'go.sum')} {go_version}"
    if _stamp_matches(binary, key):
        return False
    log = paths.logs / "build-loki.log"
    log.write_text("")
    version = loki_version(wrapper)
    report(f"building Loki {version} (wrapper module stack/loki-build)")
    work = paths.build / "loki"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("go.mod", "go.sum"):
        shutil.copyfile(wrapper / name, work / name)
    # cmd/loki is a main package (not importable): build its files next to the wrapper go.mod.
    src = _module_dir(go, LOKI_MODULE, version, log, work)
    for f in sorted((src / "cmd" / "loki").glob("*.go")):
        if not f.name.endswith("_test.go"):
            shutil.copyfile(f, work / f.name)
    _run([go, "build", "-trimpath", "-o", str(binary), "."], log, work)
    _write_stamp(binary, key)
    return True


def build_all(paths: StackPaths, report: Report) -> None:
    paths.ensure()
    ensure_apt(report)
    go = go_executable()
    go_version = _output([go, "env", "GOVERSION"]).strip()
    for name, step in (("collector", build_collector), ("jaeger", build_jaeger), ("loki", build_loki)):
        started = time.monotonic()
        try:
            built = step(paths, go, go_version, report)
        except CLIError as exc:
            raise CLIError(f"could not build {name}: {exc}") from exc
        if built:
            report(f"built {name} in {time.monotonic() - started:.0f} s")
        else:
            report(f"{name}: up to date")
