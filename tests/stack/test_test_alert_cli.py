"""`otel-ml test-alert` on the local stack, whose receivers point at loopback stand-ins nobody
listens on: the drill must say "failed", exit 1, and resolve its alert; bad arguments exit 2."""

from __future__ import annotations

import json

import pytest

from otel_ml.cli import main
from tests.stack.backends import Backends, get_json


def test_unreachable_alertmanager_and_bad_labels_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test-alert", "--alertmanager", "http://127.0.0.1:9", "--wait", "1"]) == 2
    assert "cannot reach Alertmanager at http://127.0.0.1:9/api/v2/status" in capsys.readouterr().err
    assert main(["test-alert", "--alertmanager", "ftp://x"]) == 2
    assert "--alertmanager 'ftp://x'" in capsys.readouterr().err
    assert main(["test-alert", "--label", "not a label"]) == 2
    assert "--label 'not a label'" in capsys.readouterr().err


@pytest.mark.e2e
def test_failed_delivery_is_reported_and_the_alert_resolved(backends: Backends,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    url = backends.urls.alertmanager
    # critical: the page route's group_wait is 10 s
    code = main(["test-alert", "--alertmanager", url, "--severity", "critical", "--team", "data", "--wait", "40",
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["ok"]
    assert report["receivers"] == ["data-page"]
    assert sorted((i["integration"], i["status"]) for i in report["integrations"]) == [
        ("telegram", "failed"), ("webhook", "failed")]
    # Resolved when the drill ended: Alertmanager no longer lists it as active.
    alerts = get_json(f"{url}/api/v2/alerts", {"filter": f'test_id="{report["labels"]["test_id"]}"'})
    assert alerts == []
