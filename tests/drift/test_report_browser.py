"""The HTML report in a real browser: headless Chromium lays out every chart, logs no error, and
the screenshot is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from otel_ml._internal import env
from otel_ml.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get(env.REQUIRE_BROWSER) == "1":
            pytest.fail("chromium is not installed (scripts/install installs it where it runs as root)")
        pytest.skip("chromium is not installed")
    return CHROMIUM


def test_chromium_draws_every_chart_without_errors(chromium: str, report_files: tuple[Path, Path, object],
                                                   tmp_path: Path) -> None:
    profile_path, data_path, _ = report_files
    html = tmp_path / "report.html"
    assert main(["report", "--profile", str(profile_path), "--data", str(data_path), "-o", str(html)]) == 0
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--enable-logging=stderr", "--v=0", "--dump-dom", html.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-charts="30"' in dom.stdout and 'data-drawn="30"' in dom.stdout  # laid out with a size
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    shot = tmp_path / "shot.png"
    run = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,2400", html.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.stat().st_size > 20_000, run.stderr[-2000:]
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, badges and bars: not a blank page
    blue = sum(n for n, (r, g, b) in colours if (r, g, b) == (0x15, 0x65, 0xC0))  # the "current" bars
    assert blue > 5_000
