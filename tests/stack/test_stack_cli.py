"""`otel-ml stack`: root discovery, subcommand wiring, builds and their stamps, loopback-only
defaults, and the Alertmanager config and secret stand-ins `up` writes."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from otel_ml._internal import env
from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack import alerting, build, cli
from otel_ml._internal.stack.components import components
from otel_ml._internal.stack.paths import HOME_ENV, StackPaths, find_root

REPO = Path(__file__).resolve().parents[2]


def test_root_is_found_from_a_subdirectory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walking up from any folder of the checkout finds the folder holding collector/manifest.yaml."""
    monkeypatch.delenv(HOME_ENV, raising=False)
    assert find_root(REPO / "tests" / "stack").root == REPO


def test_bad_home_is_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OTEL_ML_HOME pointing outside a checkout is reported, not guessed around."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    with pytest.raises(CLIError, match=r"collector/manifest\.yaml"):
        find_root()


def test_stack_subcommands_are_registered() -> None:
    """build, up, down and status each parse and carry a handler."""
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    for sub in ("build", "up", "down", "status"):
        args = parser.parse_args(["stack", sub])
        assert callable(args.handler)


def test_stamp_must_match_for_a_build_to_be_skipped(tmp_path: Path) -> None:
    """A binary is reused only when its stamp records the same inputs."""
    binary = tmp_path / "tool"
    assert not build._stamp_matches(binary, "k1")
    binary.write_text("")
    build._write_stamp(binary, "k1")
    assert build._stamp_matches(binary, "k1")
    assert not build._stamp_matches(binary, "k2")


def test_loki_version_comes_from_the_wrapper_go_mod() -> None:
    """The Loki version built is the one stack/loki-build/go.mod requires."""
    assert re.fullmatch(r"v3\.\d+\.\d+", build.loki_version(REPO / "stack" / "loki-build"))


@pytest.mark.parametrize("name", ["collector/config.yaml", "stack/jaeger.yaml", "stack/loki.yaml"])
def test_default_binds_are_loopback(name: str) -> None:
    """Every `${VAR:-default}` host default is 127.0.0.1; only compose switches to 0.0.0.0."""
    text = (REPO / name).read_text()
    defaults = re.findall(r"_HOST:-([^}:]+)\}", text)
    assert defaults and set(defaults) == {"127.0.0.1"}


def test_health_urls_and_local_processes_stay_on_loopback() -> None:
    """The supervisor only ever talks to 127.0.0.1."""
    for c in components(find_root(REPO)):
        assert c.health_url.startswith("http://127.0.0.1:"), c
        assert all("0.0.0.0" not in a for a in c.argv), c


@pytest.mark.parametrize(
    ("module", "release"), [("v0.316.0", "3.16.0"), ("v0.300.1", "3.0.1"), ("v0.399.12", "3.99.12")]
)
def test_prometheus_release_follows_the_module_version(module: str, release: str) -> None:
    """Prometheus 3.XX.Y is published to Go modules as v0.3XX.Y."""
    assert build.prometheus_release(module) == release


@pytest.mark.parametrize("module", ["v3.16.0", "v0.54.1", "v0.199.0", "v0.316", "v2.53.0"])
def test_prometheus_release_rejects_other_versions(module: str) -> None:
    """Anything but v0.NXX.Y is refused with a message, not mapped to a wrong release."""
    with pytest.raises(CLIError, match=r"v0\.3XX\.Y"):
        build.prometheus_release(module)


def test_pinned_prometheus_is_3x_and_its_version_file_is_checked(tmp_path: Path) -> None:
    """The pin maps to a 3.x release, and a module whose VERSION says otherwise is refused."""
    assert build.prometheus_release(build.PROMETHEUS_VERSION).startswith("3.")
    (tmp_path / "VERSION").write_text("3.15.0\n")
    build._check_release(tmp_path, build.PROMETHEUS_MODULE, "v0.315.0", "3.15.0")
    with pytest.raises(CLIError, match=r"declares VERSION 3\.15\.0, expected 3\.16\.0"):
        build._check_release(tmp_path, build.PROMETHEUS_MODULE, "v0.316.0", "3.16.0")


def test_every_component_is_built_from_go() -> None:
    """No Debian packages: each component the stack runs has a build step and lives in .stack/bin."""
    paths = find_root(REPO)
    assert [name for name, _ in build.STEPS] == ["collector", "jaeger", "loki", "prometheus", "alertmanager"]
    for c in components(paths):
        assert Path(c.executable).parent == paths.bin, c
    assert not hasattr(build, "APT_COMMANDS")


def test_prometheus_and_alertmanager_flags() -> None:
    """Prometheus keeps exemplars and listens on loopback; Alertmanager runs the local config, no cluster."""
    paths = find_root(REPO)
    by_name = {c.name: c for c in components(paths)}
    prom, am = by_name["prometheus"].argv, by_name["alertmanager"].argv
    assert "--enable-feature=exemplar-storage" in prom and "--web.listen-address=127.0.0.1:9090" in prom
    assert "--cluster.listen-address=" in am and "--web.listen-address=127.0.0.1:9093" in am
    assert f"--config.file={alerting.config_file(paths)}" in am


def _checkout(tmp_path: Path) -> StackPaths:
    (tmp_path / "alerts" / "templates").mkdir(parents=True)
    (tmp_path / "alerts" / "alertmanager.yml").write_text((REPO / "alerts" / "alertmanager.yml").read_text())
    return StackPaths(tmp_path)


def test_up_writes_stand_in_secrets_and_a_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stack/secrets gets a 0600 stand-in per secret file; the copy reads them there, templates via a link."""
    monkeypatch.delenv(env.ALERTMANAGER_SECRETS_DIR, raising=False)
    paths = _checkout(tmp_path)
    assert alerting.prepare(paths) is True
    secrets = tmp_path / "stack" / "secrets"
    assert sorted(p.name for p in secrets.iterdir()) == sorted(alerting.STAND_INS)
    for f in secrets.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f
        assert f.read_text().strip() == alerting.STAND_INS[f.name]
    copy = alerting.config_file(paths).read_text()
    assert alerting.PRODUCTION_SECRETS not in copy and f"{secrets}/telegram_bot_token" in copy
    assert (paths.alertmanager / "templates").resolve() == tmp_path / "alerts" / "templates"
    assert alerting.prepare(paths) is False  # unchanged: no reload needed


def test_real_secrets_are_kept_and_the_folder_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files already in the secrets folder are never overwritten; OTEL_ML_ALERTMANAGER_SECRETS_DIR moves it."""
    elsewhere = tmp_path / "vault"
    elsewhere.mkdir()
    (elsewhere / "telegram_bot_token").write_text("123:real\n")
    monkeypatch.setenv(env.ALERTMANAGER_SECRETS_DIR, str(elsewhere))
    paths = _checkout(tmp_path / "repo")
    alerting.prepare(paths)
    assert (elsewhere / "telegram_bot_token").read_text() == "123:real\n"
    assert (elsewhere / "smtp_password").is_file()
    assert f"{elsewhere}/smtp_password" in alerting.config_file(paths).read_text()
    assert not (tmp_path / "repo" / "stack" / "secrets").exists()


def test_build_steps_say_how_they_go_while_they_run(tmp_path: Path) -> None:
    """A long build step reports elapsed time against the last build's, packages compiled (`go build
    -v` lines) and the log's last line - not minutes of silence; the time is kept for next time."""
    from otel_ml._internal.stack import build

    said: list[str] = []
    times = tmp_path / "build-times.json"
    times.write_text('{"jaeger": 200.0}')
    progress = build.Progress(said.append, times, every=0.2)
    progress.begin("jaeger", "[2/5] jaeger")
    build._PROGRESS = progress
    log = tmp_path / "build.log"
    try:
        build._run(["sh", "-c", "echo github.com/a/b; echo github.com/a/c; sleep 1; echo linking"], log, tmp_path)
    finally:
        build._PROGRESS = None
    ticks = [line for line in said if line.startswith("  [2/5] jaeger: ")]
    assert len(ticks) >= 2, said
    assert "of ~200 s last time, 2 packages compiled; github.com/a/c" in ticks[0]
    progress.done(181.5)
    assert json.loads(times.read_text()) == {"jaeger": 181.5}
