"""``otel-ml stack build`` replaces the collector binary while the old one is running.

Writing into an executable that a process runs fails on Linux (ETXTBSY, "Text file busy"), so a
rebuild after a manifest change used to fail whenever the stack was up. The new binary is now
copied beside the old one and renamed over it: the running process keeps its file.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from otel_ml._internal.stack import build
from otel_ml._internal.stack.components import collector_binary
from otel_ml._internal.stack.paths import StackPaths

SLEEP = shutil.which("sleep")


@pytest.mark.skipif(SLEEP is None, reason="needs a `sleep` executable to run as the old collector")
def test_rebuild_replaces_a_running_collector_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SLEEP is not None
    paths = StackPaths(tmp_path)
    paths.ensure()
    (tmp_path / "collector").mkdir()
    (tmp_path / "collector" / "manifest.yaml").write_text("dist: {name: otelcol-otel-ml}\n")
    builder = paths.build / "tools" / "builder"
    builder.parent.mkdir(parents=True)
    builder.write_text("")
    binary = collector_binary(paths)
    shutil.copy2(SLEEP, binary)  # the "old collector", running below
    new_build = b"#!/bin/sh\necho new collector\n"

    def fake_run(argv: Sequence[str], log: Path, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        out = paths.build / "collector" / "otelcol-otel-ml"
        out.write_bytes(new_build)
        out.chmod(0o755)

    monkeypatch.setattr(build, "_run", fake_run)
    monkeypatch.setattr(build, "_output", lambda argv, cwd=None: build.BUILDER_VERSION)
    running = subprocess.Popen([str(binary), "60"])
    try:
        assert build.build_collector(paths, "go", "go1.26", lambda msg: None) is True
        assert binary.read_bytes() == new_build
        assert running.poll() is None, "the running collector was disturbed"
        # Stamped: a second build with the same manifest is skipped.
        assert build.build_collector(paths, "go", "go1.26", lambda msg: None) is False
    finally:
        running.kill()
        running.wait(10)
