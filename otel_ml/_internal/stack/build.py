"""``otel-ml stack build``: the collector, Jaeger, Loki, Prometheus and Alertmanager, all from Go.

Each build is skipped when its binaries exist and the stamp file beside each records the same
inputs (pinned version, manifest/go.sum hash, Go version). Go's default module and build caches
are used, so a rebuild after a version bump only compiles what changed.

Prometheus and Alertmanager are built rather than taken from Debian: bookworm ships Prometheus
2.42 and Alertmanager 0.25 (2023), while users run 3.x and 0.3x, whose PromQL and config
semantics differ (stack/README.md lists what changed for our rules).
"""

from __future__ import annotations

import gzip
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
# Prometheus 3 is published as module versions v0.3XX.Y (= release 3.XX.Y; Go modules cannot be v3
# without a /v3 path). `remove_all_sd` leaves out every service-discovery plugin: the nomad one
# needs a pseudo-version this workplace's module proxy refuses, and the stack only uses
# static_configs.
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
PROMETHEUS_VERSION = "v0.316.0"
PROMETHEUS_TAGS = "remove_all_sd"
ALERTMANAGER_MODULE = "github.com/prometheus/alertmanager"
ALERTMANAGER_VERSION = "v0.34.2"
# Both projects print this in --version; their release builds (promu) set it the same way.
VERSION_VARIABLE = "github.com/prometheus/common/version.Version"

Report = Callable[[str], None]


def go_executable() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not found:
        raise CLIError("`go` not found on PATH: every stack component is built from source with Go")
    return found


class Progress:
    """What the build is doing now, said every ``every`` seconds while a step runs: the component,
    elapsed time against its previous build's (kept in ``.stack/build-times.json``), packages
    compiled so far (``go build -v`` lists each) and the log's last line."""

    def __init__(self, report: Report, times_file: Path | None = None, every: float = 15.0) -> None:
        self.report, self.every, self.times_file = report, every, times_file
        self.name = self.label = ""
        self.started = time.monotonic()
        self.previous: dict[str, float] = {}
        if times_file is not None:
            try:
                self.previous = {k: float(v) for k, v in json.loads(times_file.read_text()).items()}
            except (OSError, ValueError, AttributeError):
                self.previous = {}

    def begin(self, name: str, label: str | None = None) -> None:
        self.name, self.label, self.started = name, label or name, time.monotonic()

    def estimate(self) -> str:
        prev = self.previous.get(self.name)
        return f" of ~{prev:.0f} s last time" if prev else ""

    def done(self, seconds: float) -> None:
        self.previous[self.name] = round(seconds, 1)
        if self.times_file is not None:
            try:
                self.times_file.write_text(json.dumps(self.previous, indent=1, sort_keys=True))
            except OSError:
                pass

    def tick(self, log: Path) -> None:
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        packages = sum(1 for line in lines if line and not line.startswith(("$", "go: ", " ")) and "/" in line
                       and " " not in line.strip())
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        elapsed = time.monotonic() - self.started
        self.report(f"  {self.label}: {elapsed:.0f} s{self.estimate()}, {packages} packages compiled; "
                    f"{last[:100]}")


_PROGRESS: Progress | None = None


def _run(argv: Sequence[str], log: Path, cwd: Path, env: Mapping[str, str] | None = None) -> None:
    """Run a build step, appending its output to ``log`` (and saying how it goes every few seconds);
    a failure names the step and shows the log."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}  (in {cwd})\n")
        out.flush()
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        while True:
            try:
                rc = proc.wait(timeout=_PROGRESS.every if _PROGRESS is not None else None)
                break
            except subprocess.TimeoutExpired:
                if _PROGRESS is not None:
                    _PROGRESS.tick(log)
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
    # Copy beside, then rename over: a running collector keeps its (old) file, and writing into
    # the busy executable in place would fail with ETXTBSY ("Text file busy").
    staged = binary.with_name(binary.name + ".new")
    shutil.copy2(paths.build / "collector" / "otelcol-otel-ml", staged)
    os.replace(staged, binary)
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
    _run([go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(binary), "./cmd/jaeger"], log, src)
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
    _run([go, "build", "-v", "-trimpath", "-o", str(binary), "."], log, work)
    _write_stamp(binary, key)
    return True


def prometheus_release(module_version: str) -> str:
    """``v0.316.0`` -> ``3.16.0``: Prometheus 3.XX.Y is tagged v0.3XX.Y for Go modules."""
    # 2.x releases were v0.<minor>.Y (v0.54.1 = 2.54.1); 3.0 started at v0.300.0.
    found = re.fullmatch(r"v0\.([3-9]\d{2})\.(\d+)", module_version)
    if not found:
        raise CLIError(f"{module_version} is not a Prometheus module version of the form v0.3XX.Y")
    minor = int(found.group(1))
    return f"{minor // 100}.{minor % 100}.{found.group(2)}"


def _check_release(src: Path, module: str, version: str, release: str) -> None:
    """The module's own VERSION file must say the release we stamp into the binaries."""
    try:
        declared = (src / "VERSION").read_text().strip()
    except OSError as exc:
        raise CLIError(f"{module}@{version} has no readable VERSION file: {exc}") from exc
    if declared != release:
        raise CLIError(f"{module}@{version} declares VERSION {declared}, expected {release}")


def _ldflags(release: str) -> str:
    return f"-X {VERSION_VARIABLE}={release}"


def build_prometheus(paths: StackPaths, go: str, go_version: str, report: Report) -> bool:
    binaries = (paths.bin / "prometheus", paths.bin / "promtool")
    release = prometheus_release(PROMETHEUS_VERSION)
    key = f"{PROMETHEUS_MODULE}@{PROMETHEUS_VERSION} tags={PROMETHEUS_TAGS} {_ldflags(release)} {go_version}"
    if all(_stamp_matches(b, key) for b in binaries):
        return False
    log = paths.logs / "build-prometheus.log"
    log.write_text("")
    report(f"building Prometheus {release} and promtool ({PROMETHEUS_MODULE}@{PROMETHEUS_VERSION})")
    _check_release(_module_dir(go, PROMETHEUS_MODULE, PROMETHEUS_VERSION, log, paths.root),
                   PROMETHEUS_MODULE, PROMETHEUS_VERSION, release)
    # The module has no replace lines, so `go install pkg@version` builds it as released.
    _run([go, "install", "-v", "-trimpath", "-tags", PROMETHEUS_TAGS, "-ldflags", _ldflags(release),
          f"{PROMETHEUS_MODULE}/cmd/prometheus@{PROMETHEUS_VERSION}",
          f"{PROMETHEUS_MODULE}/cmd/promtool@{PROMETHEUS_VERSION}"],
         log, paths.root, {"GOBIN": str(paths.bin)})
    for b in binaries:
        _write_stamp(b, key)
    return True


def _writable_copy(src: Path, dst: Path) -> None:
    """Copy a read-only module cache directory to ``dst`` (replacing it) as a writable tree."""
    if dst.exists():
        _make_dirs_writable(dst)
        shutil.rmtree(dst)
    # copyfile, not copy2: files get the umask's mode instead of the cache's read-only one.
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    _make_dirs_writable(dst)


def _make_dirs_writable(root: Path) -> None:
    for d, _, _ in os.walk(root):
        os.chmod(d, 0o755)


# The UI is a separate npm build whose output (ui/app/dist) is not in the module zip, but
# ui/web.go embeds that folder. The API, which is all the stack and its tests use, does not need it.
PLACEHOLDER_UI = (
    "<!doctype html><title>Alertmanager</title><p>This Alertmanager was built by "
    "<code>otel-ml stack build</code> without its web UI; the API is at <a href=\"api/v2/status\">"
    "/api/v2/status</a>.</p>\n"
)


def build_alertmanager(paths: StackPaths, go: str, go_version: str, report: Report) -> bool:
    binaries = (paths.bin / "alertmanager", paths.bin / "amtool")
    release = ALERTMANAGER_VERSION.removeprefix("v")
    key = f"{ALERTMANAGER_MODULE}@{ALERTMANAGER_VERSION} {_ldflags(release)} {go_version}"
    if all(_stamp_matches(b, key) for b in binaries):
        return False
    log = paths.logs / "build-alertmanager.log"
    log.write_text("")
    report(f"building Alertmanager {release} and amtool ({ALERTMANAGER_MODULE}@{ALERTMANAGER_VERSION})")
    src = _module_dir(go, ALERTMANAGER_MODULE, ALERTMANAGER_VERSION, log, paths.root)
    _check_release(src, ALERTMANAGER_MODULE, ALERTMANAGER_VERSION, release)
    work = paths.build / "alertmanager"
    _writable_copy(src, work)
    dist = work / "ui" / "app" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "index.html").write_text(PLACEHOLDER_UI)
    # ui/web.go serves HTML only from its pre-compressed variant.
    (dist / "index.html.gz").write_bytes(gzip.compress(PLACEHOLDER_UI.encode(), mtime=0))
    _run([go, "build", "-v", "-trimpath", "-ldflags", _ldflags(release), "-o", f"{paths.bin}/",
          "./cmd/alertmanager", "./cmd/amtool"], log, work)
    for b in binaries:
        _write_stamp(b, key)
    return True


STEPS: tuple[tuple[str, Callable[[StackPaths, str, str, Report], bool]], ...] = (
    ("collector", build_collector),
    ("jaeger", build_jaeger),
    ("loki", build_loki),
    ("prometheus", build_prometheus),
    ("alertmanager", build_alertmanager),
)


def build_all(paths: StackPaths, report: Report, every: float = 15.0) -> None:
    global _PROGRESS
    paths.ensure()
    go = go_executable()
    go_version = _output([go, "env", "GOVERSION"]).strip()
    progress = _PROGRESS = Progress(report, paths.root / ".stack" / "build-times.json", every)
    try:
        for i, (name, step) in enumerate(STEPS, 1):
            started = time.monotonic()
            progress.begin(name, f"[{i}/{len(STEPS)}] {name}")
            try:
                built = step(paths, go, go_version, report)
            except CLIError as exc:
                raise CLIError(f"could not build {name}: {exc}") from exc
            if built:
                elapsed = time.monotonic() - started
                report(f"built {name} in {elapsed:.0f} s")
                progress.done(elapsed)
            else:
                report(f"{name}: up to date")
    finally:
        _PROGRESS = None
