"""alerts/alertmanager.yml routes each alert to the right channel, says what happened, and mutes what it should.

The routing table is checked statically with amtool. The e2e test starts its own Alertmanager
(the built 0.34, free loopback ports, no cluster) on a copy of the config whose endpoints point
at loopback stand-ins: an HTTP server speaking the Telegram Bot API, Slack incoming webhooks and
a generic webhook, and an SMTP server (aiosmtpd) that requires the password from the secret file.
Synthetic alerts go in through ``POST /api/v2/alerts``; the test asserts which channel got which
alert, what the messages say, that secrets came from the files, and that inhibited alerts never
arrive.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from otel_ml._internal.stack import alerting
from tests.stack.alert_rig import (
    ARRIVE_S,
    CONFIG,
    PATHS,
    REPO,
    SETTLE_S,
    Message,
    Rig,
    alertmanager,
    channels,
)
from tests.stack.built import built

# The SMTP stand-in takes AUTH without TLS on purpose (loopback only); aiosmtpd warns about both.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
]

@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"severity": "critical"}, "ml-platform-page"),
        ({"severity": "critical", "team": "ml-platform"}, "ml-platform-page"),
        ({"severity": "critical", "team": "data"}, "data-page"),
        ({"severity": "critical", "team": "unknown-team"}, "ml-platform-page"),
        ({"severity": "warning", "team": "ml-platform"}, "ml-platform-ticket"),
        ({"severity": "warning", "team": "data"}, "data-ticket"),
        ({"severity": "info", "team": "ml-platform"}, "ml-platform-digest"),
        ({"severity": "info", "team": "data"}, "data-digest"),
        ({"team": "ml-platform"}, "ml-platform-ticket"),
        ({"team": "data"}, "data-ticket"),
    ],
)
def test_routing_table(labels: dict[str, str], receiver: str) -> None:
    """Severity picks page/ticket/digest, team picks ml-platform (the default) or data."""
    done = subprocess.run(
        [built(PATHS.amtool), "config", "routes", "test", f"--config.file={alerting.source(PATHS)}",
         "alertname=OtelMlTest", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [receiver]


def _configured_templates() -> list[str]:
    """Every templated value of the receivers, e.g. '{{ template "otel_ml.slack.text" . }}'."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and "{{" in node:
            found.add(node)

    walk(CONFIG["receivers"])
    return sorted(found)


@pytest.mark.parametrize("text", _configured_templates())
def test_every_configured_template_renders(text: str) -> None:
    """Each template a receiver uses exists in alerts/templates and renders (amtool's example data)."""
    done = subprocess.run(
        [built(PATHS.amtool), "template", "render", f"--template.glob={REPO / 'alerts/templates/*.tmpl'}",
         f"--template.text={text}"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stdout + done.stderr


# --- the e2e test (stand-ins and the Alertmanager runner: alert_rig.py) -----------------------

@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    binary = built(PATHS.bin / "alertmanager")
    tmp = tmp_path_factory.mktemp("alertmanager")
    with channels(tmp) as ch, alertmanager(binary, ch.config_file, tmp / "data", "--cluster.listen-address=") as (
            url, log):
        yield Rig(url, ch.received, ch.secrets, log)


def _alert(alertname: str, severity: str, team: str, service: str, model: str, **annotations: str) -> dict[str, Any]:
    labels = {"alertname": alertname, "severity": severity, "team": team, "service_name": service,
              "ml_model_name": model, "ml_model_version": f"{model}-v3", "ml_model_variant": "canary"}
    return {
        "labels": labels,
        "annotations": {
            "summary": f"{alertname} on {model}",
            "description": f"{model} is not doing well",
            "value": f"{len(model)}.5% <errors>",
            "runbook_url": f"https://runbooks.example.org/otel-ml#{alertname.lower()}",
            **annotations,
        },
        "generatorURL": "http://127.0.0.1:9090/graph",
    }


def _chat(receiver: str) -> str:
    (rx,) = [r for r in CONFIG["receivers"] if r["name"] == receiver]
    return str(rx["telegram_configs"][0]["chat_id"])


PAGE = _alert("OtelMlAvailabilityBudgetBurnFast", "critical", "ml-platform", "scorer", "fraud",
              dashboard_url="http://grafana.example.org/d/otel-ml-overview?var-service=scorer&var-model=fraud")
MUTED = _alert("OtelMlHighLatencyP99", "warning", "ml-platform", "scorer", "fraud")
OTHER_MODEL = _alert("OtelMlHighLatencyP99", "warning", "ml-platform", "scorer", "churn")
DATA_PAGE = _alert("OtelMlTrainingDataMissing", "critical", "data", "feature-store", "ranker")
DATA_TICKET = _alert("OtelMlFeatureDrift", "warning", "data", "scorer", "churn")
PLATFORM_INFO = _alert("OtelMlGPUSaturated", "info", "ml-platform", "llm", "chat")
DATA_INFO = _alert("OtelMlFeatureUnseenCategories", "info", "data", "scorer", "churn")


@pytest.fixture(scope="module")
def delivered(rig: Rig) -> list[Message]:
    """Post every alert at once (so inhibition sources are there before the first flush), wait
    for the expected messages, then long enough for any that should not come."""
    rig.post(PAGE, MUTED, OTHER_MODEL, DATA_PAGE, DATA_TICKET, PLATFORM_INFO, DATA_INFO)
    expected = [
        ("telegram", PAGE), ("webhook", PAGE), ("telegram", DATA_PAGE), ("webhook", DATA_PAGE),
        ("slack", OTHER_MODEL), ("slack", DATA_TICKET), ("email", PLATFORM_INFO), ("email", DATA_INFO),
    ]
    for channel, alert in expected:
        name, model = alert["labels"]["alertname"], alert["labels"]["ml_model_name"]

        def arrived(m: Message, channel: str = channel, name: str = name, model: str = model) -> bool:
            return m.channel == channel and name in m.alertnames and model in m.text

        rig.wait_for(f"{name} ({model}) on {channel}", arrived)
    time.sleep(SETTLE_S)
    return rig.received.snapshot()


def _on(messages: list[Message], alert: dict[str, Any]) -> list[tuple[str, str]]:
    """(channel, destination) of every message about this alert (its name and model)."""
    name, model = alert["labels"]["alertname"], alert["labels"]["ml_model_name"]
    return sorted((m.channel, m.destination) for m in messages
                  if name in m.alertnames and re.search(rf"\b{re.escape(model)}\b", m.text))


@pytest.mark.e2e
def test_each_alert_reaches_its_channels_only(rig: Rig, delivered: list[Message]) -> None:
    """critical: Telegram chat of the team + incident webhook; warning: the team's Slack; info: its e-mail."""
    s = rig.secrets
    slack_path = {k: urlparse(s[f"slack_{k}_webhook_url"]).path for k in ("ml_platform", "data")}
    incident = urlparse(s["incident_webhook_url"]).path
    assert _on(delivered, PAGE) == [("telegram", _chat("ml-platform-page")), ("webhook", incident)]
    assert _on(delivered, DATA_PAGE) == [("telegram", _chat("data-page")), ("webhook", incident)]
    assert _on(delivered, OTHER_MODEL) == [("slack", slack_path["ml_platform"])]
    assert _on(delivered, DATA_TICKET) == [("slack", slack_path["data"])]
    assert _on(delivered, PLATFORM_INFO) == [("email", "ml-platform@example.org")]
    assert _on(delivered, DATA_INFO) == [("email", "data-team@example.org")]


@pytest.mark.e2e
def test_critical_inhibits_the_warning_for_the_same_service_and_model(delivered: list[Message]) -> None:
    """The warning for scorer/fraud never arrives while its critical fires; scorer/churn's does."""
    assert _on(delivered, MUTED) == []
    assert _on(delivered, OTHER_MODEL) != []
    assert sum(len(m.raw["alerts"]) for m in delivered if m.channel == "webhook") == 2


@pytest.mark.e2e
def test_secrets_come_from_the_files(rig: Rig, delivered: list[Message]) -> None:
    """Telegram's bot token, the Slack and webhook URLs and the SMTP password are the files' values."""
    paths = set(rig.received.http_paths)
    assert f"/bot{rig.secrets['telegram_bot_token']}/sendMessage" in paths
    for name in ("slack_ml_platform_webhook_url", "slack_data_webhook_url", "incident_webhook_url"):
        assert urlparse(rig.secrets[name]).path in paths, name
    # The SMTP stand-in refuses mail without AUTH and accepts only the file's password.
    assert rig.received.smtp_logins and all(login == CONFIG["global"]["smtp_auth_username"]
                                            for _, login in rig.received.smtp_logins)


@pytest.mark.e2e
def test_messages_say_model_version_value_runbook_and_dashboard(delivered: list[Message]) -> None:
    """Every channel shows model, version, variant, the value annotation, the runbook and a dashboard link."""
    (telegram,) = [m for m in delivered if m.channel == "telegram" and "fraud" in m.text]
    assert telegram.raw["parse_mode"] == "HTML"
    for part in ("<code>fraud</code>", "<code>fraud-v3</code>", "<code>canary</code>",
                 "<b>5.5% &lt;errors&gt;</b>",  # html/template escaped the value
                 'href="https://runbooks.example.org/otel-ml#otelmlavailabilitybudgetburnfast"',
                 'href="http://grafana.example.org/d/otel-ml-overview?var-service=scorer&amp;var-model=fraud"'):
        assert part in telegram.text, (part, telegram.text)

    (data_page,) = [m for m in delivered if m.channel == "telegram" and "ranker" in m.text]
    # No dashboard_url annotation: the link is built from the team, service and model.
    assert ('href="http://localhost:3000/d/otel-ml-quality-drift?orgId=1&amp;var-service=feature-store&amp;var-model=ranker"'
            in data_page.text), data_page.text

    (slack,) = [m for m in delivered if m.channel == "slack" and "OtelMlFeatureDrift" in m.alertnames]
    att = slack.raw["attachments"][0]
    fields = {f["title"]: f["value"] for f in att["fields"]}
    assert fields == {"Severity": "warning", "Service": "scorer", "Model": "churn", "Version": "churn-v3",
                      "Variant": "canary", "Value": "5.5% &lt;errors&gt;"}  # Slack's escaping
    assert att["title_link"] == "http://localhost:3000/d/otel-ml-quality-drift?orgId=1&var-service=scorer&var-model=churn"
    assert "<https://runbooks.example.org/otel-ml#otelmlfeaturedrift|Runbook>" in att["text"]
    assert "value *5.5% &lt;errors&gt;*" in att["text"]
    assert att["color"] == "warning"

    (mail,) = [m for m in delivered if m.channel == "email" and "data-team" in m.destination]
    assert mail.raw["Subject"] == "[FIRING:1] OtelMlFeatureUnseenCategories info churn"
    text = mail.raw.get_body(preferencelist=("plain",)).get_content()
    html = mail.raw.get_body(preferencelist=("html",)).get_content()
    for part in ("Model:       churn", "Version:     churn-v3", "Variant:     canary", "Value:       5.5% <errors>",
                 "Runbook:     https://runbooks.example.org/otel-ml#otelmlfeatureunseencategories",
                 "Dashboard:   http://localhost:3000/d/otel-ml-quality-drift?orgId=1&var-service=scorer&var-model=churn"):
        assert part in text, (part, text)
    for part in ("<code>churn-v3</code>", "<b>5.5% &lt;errors&gt;</b>",
                 'href="http://localhost:3000/d/otel-ml-quality-drift?orgId=1&amp;var-service=scorer&amp;var-model=churn"'):
        assert part in html, (part, html)

    (hook,) = [m for m in delivered if m.channel == "webhook" and "OtelMlAvailabilityBudgetBurnFast" in m.alertnames]
    (alert,) = hook.raw["alerts"]
    assert alert["labels"] == PAGE["labels"] and alert["annotations"] == PAGE["annotations"]


@pytest.mark.e2e
def test_the_test_alert_drill_reports_what_the_channels_received(
        rig: Rig, delivered: list[Message], capsys: pytest.CaptureFixture[str]) -> None:
    """`otel-ml test-alert` against this Alertmanager: the receivers it names and the integrations it
    calls delivered are the ones the stand-ins really received the drill on."""
    from otel_ml.cli import main

    code = main(["test-alert", "--alertmanager", rig.url, "--severity", "critical", "--team", "data",
                 "--wait", str(ARRIVE_S), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["integrations"]
    assert report["receivers"] == ["data-page"]
    assert sorted((i["integration"], i["status"]) for i in report["integrations"]) == [
        ("telegram", "delivered"), ("webhook", "delivered")]
    telegram = rig.wait_for("the drill on telegram",
                            lambda m: m.channel == "telegram" and "OtelMlTestAlert" in m.alertnames)
    assert {m.destination for m in telegram} == {_chat("data-page")}
    rig.wait_for("the drill on the incident webhook", lambda m: m.channel == "webhook"
                 and report["labels"]["test_id"] in m.text)


@pytest.mark.e2e
def test_collector_down_mutes_every_service_alert(rig: Rig, delivered: list[Message]) -> None:
    """With OtelMlCollectorDown firing, a new service alert is not sent; the collector page is."""
    down = {"labels": {"alertname": "OtelMlCollectorDown", "severity": "critical", "team": "ml-platform",
                       "job": "otel-collector", "instance": "127.0.0.1:8888"},
            "annotations": {"summary": "The otel_ml collector is down", "value": "0"}}
    symptom = _alert("OtelMlTelemetryDropped", "warning", "ml-platform", "ranker-api", "ranker")
    rig.post(down, symptom)
    rig.wait_for("OtelMlCollectorDown on Telegram",
                 lambda m: m.channel == "telegram" and "OtelMlCollectorDown" in m.alertnames)
    time.sleep(SETTLE_S)
    after = rig.received.snapshot()
    assert [m for m in after if "OtelMlTelemetryDropped" in m.alertnames] == []
    assert ("webhook", urlparse(rig.secrets["incident_webhook_url"]).path) in {
        (m.channel, m.destination) for m in after if "OtelMlCollectorDown" in m.alertnames}


@pytest.mark.e2e
def test_the_drill_says_when_an_inhibition_holds_it_back(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    """While OtelMlCollectorDown fires (posted by the test before), every service's alerts are muted:
    the drill reports "suppressed" with the inhibiting alert instead of waiting for nothing."""
    from otel_ml.cli import main

    code = main(["test-alert", "--alertmanager", rig.url, "--severity", "warning", "--wait", str(ARRIVE_S),
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["suppressed"].startswith("inhibited by alert(s) "), report["integrations"]
    assert [(i["integration"], i["status"]) for i in report["integrations"]] == [("slack", "suppressed")]
