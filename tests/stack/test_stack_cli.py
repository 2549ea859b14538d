"""`otel-ml stack`: root discovery, subcommand wiring, build stamps and loopback-only defaults."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack import build, cli
from otel_ml._internal.stack.components import components
from otel_ml._internal.stack.paths import HOME_ENV, find_root

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
