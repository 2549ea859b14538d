"""``otel-ml test-alert``: the alert drill - send a synthetic alert through Alertmanager, wait, and
say which receivers got it.

The alert (``alertname=OtelMlTestAlert`` plus ``severity``, ``team`` and any ``--label``) goes in
through ``POST /api/v2/alerts`` like Prometheus's; Alertmanager's own answer for it
(``GET /api/v2/alerts``) names the receivers its routing tree chose. Delivery is read from
Alertmanager's counters of notification requests (``alertmanager_notification_requests_total``
and ``..._failed_total``, per integration; each attempt is counted when its answer comes) before
and after: each integration of each chosen receiver is ``delivered`` (a request succeeded),
``failed`` (every request so far failed; Alertmanager keeps retrying, and the reason is in its log
and, once it gives up, in ``alertmanager_notifications_failed_total``) or ``pending`` (nothing
tried yet: the route's ``group_wait`` is longer than ``--wait``) - or ``suppressed`` when an
inhibiting alert (say ``OtelMlCollectorDown``) or a silence holds it back. The
counters are per integration type, not per receiver, so notifications of other alerts sent at
the same moment would be counted too; run the drill on a quiet minute. The alert is resolved when
the drill ends, so it does not linger.

Exit status: 0 every integration delivered, 1 one failed, is pending or suppressed, 2 Alertmanager
unreachable or bad arguments (the URL is named).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from otel_ml._internal.errors import CLIError

DEFAULT_URL = "http://127.0.0.1:9093"
ALERTNAME = "OtelMlTestAlert"
_METRIC = re.compile(r'^(alertmanager_notification_requests(?:_failed)?_total)\{([^}]*)\}\s+([0-9.eE+-]+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Integration:
    receiver: str
    kind: str  # slack, telegram, email, webhook, ...
    status: str = "pending"  # delivered | failed | pending
    detail: str = ""


@dataclass
class Drill:
    url: str
    labels: dict[str, str]
    receivers: list[str] = field(default_factory=list)
    integrations: list[Integration] = field(default_factory=list)
    seconds: float = 0.0
    suppressed: str = ""  # "inhibited by ..." / "silenced by ...": Alertmanager will not send it

    @property
    def ok(self) -> bool:
        return bool(self.integrations) and all(i.status == "delivered" for i in self.integrations)

    def as_dict(self) -> dict[str, Any]:
        return {"alertmanager": self.url, "labels": self.labels, "receivers": self.receivers, "ok": self.ok,
                "seconds": round(self.seconds, 1), "suppressed": self.suppressed,
                "integrations": [{"receiver": i.receiver, "integration": i.kind, "status": i.status,
                                  "detail": i.detail} for i in self.integrations]}


def _request(url: str, data: bytes | None = None, timeout: float = 10) -> bytes:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:300]
        raise CLIError(f"Alertmanager at {url} answered HTTP {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CLIError(f"cannot reach Alertmanager at {url}: {reason}") from None


def receiver_integrations(config_yaml: str) -> dict[str, list[str]]:
    """Receiver name -> its integration types (``slack_configs`` -> ``slack``), one per config entry."""
    config = yaml.safe_load(config_yaml) or {}
    out: dict[str, list[str]] = {}
    for receiver in config.get("receivers") or []:
        kinds: list[str] = []
        for key, entries in receiver.items():
            if key.endswith("_configs") and isinstance(entries, list):
                kinds.extend([key.removesuffix("_configs")] * len(entries))
        out[str(receiver.get("name"))] = kinds
    return out


def notification_counters(metrics_text: str) -> tuple[Counter[str], Counter[str]]:
    """(notification requests, failed requests) per integration from Alertmanager's /metrics."""
    sent: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for line in metrics_text.splitlines():
        m = _METRIC.match(line.strip())
        if not m:
            continue
        integration = dict(_LABEL.findall(m.group(2))).get("integration", "")
        target = sent if m.group(1) == "alertmanager_notification_requests_total" else failed
        target[integration] += int(float(m.group(3)))
    return sent, failed


def _alert(labels: dict[str, str], starts: dt.datetime, ends: dt.datetime) -> bytes:
    return json.dumps([{
        "labels": labels,
        "annotations": {"summary": "otel-ml test-alert: a drill, not a real problem",
                        "description": "Sent by `otel-ml test-alert` to check routing and delivery."},
        "startsAt": starts.isoformat(), "endsAt": ends.isoformat(), "generatorURL": "otel-ml://test-alert",
    }]).encode()


def drill(url: str, labels: dict[str, str], wait_s: float, *, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> Drill:
    base = url.rstrip("/")
    started = clock()
    status = json.loads(_request(f"{base}/api/v2/status"))
    integrations_of = receiver_integrations(status.get("config", {}).get("original", ""))
    sent0, failed0 = notification_counters(_request(f"{base}/metrics").decode())
    result = Drill(base, labels)
    starts = dt.datetime.now(dt.timezone.utc)
    _request(f"{base}/api/v2/alerts", _alert(labels, starts, starts + dt.timedelta(minutes=10)))
    query = urllib.parse.urlencode({"filter": f'test_id="{labels["test_id"]}"'})
    try:
        while True:
            alerts = json.loads(_request(f"{base}/api/v2/alerts?{query}"))
            if alerts:
                result.receivers = sorted({r["name"] for a in alerts for r in a.get("receivers", [])})
                break
            if clock() - started > wait_s:
                raise CLIError(f"Alertmanager at {base} did not list the test alert within {wait_s:.0f} s")
            sleep(0.5)
        result.integrations = [Integration(r, kind) for r in result.receivers for kind in integrations_of.get(r, [])]
        wanted = Counter(i.kind for i in result.integrations)
        while True:
            result.suppressed = _suppression(json.loads(_request(f"{base}/api/v2/alerts?{query}")))
            if result.suppressed:
                for i in result.integrations:
                    i.status, i.detail = "suppressed", result.suppressed
                break
            sent, failed = notification_counters(_request(f"{base}/metrics").decode())
            _judge(result, wanted, sent - sent0, failed - failed0)
            # Failed ones are retried with backoff: give them until the deadline too.
            if all(i.status == "delivered" for i in result.integrations) or clock() - started > wait_s:
                break
            sleep(1.0)
    finally:
        # Resolve it: a drill must not stay firing (best effort; the drill's outcome is already known).
        try:
            ends = max(dt.datetime.now(dt.timezone.utc), starts + dt.timedelta(milliseconds=1))
            _request(f"{base}/api/v2/alerts", _alert(labels, starts, ends))
        except CLIError:
            pass
        result.seconds = clock() - started
    return result


def _suppression(alerts: list[dict[str, Any]]) -> str:
    """Why Alertmanager holds the drill back (an inhibiting alert, a silence), or ""."""
    for alert in alerts:
        status = alert.get("status") or {}
        if status.get("state") == "suppressed":
            if status.get("inhibitedBy"):
                return f"inhibited by alert(s) {', '.join(status['inhibitedBy'])}"
            if status.get("silencedBy"):
                return f"silenced by {', '.join(status['silencedBy'])}"
    return ""


def _judge(result: Drill, wanted: Counter[str], sent: Counter[str], failed: Counter[str]) -> None:
    for kind, count in wanted.items():
        attempts, failures = sent.get(kind, 0), failed.get(kind, 0)
        succeeded = attempts - failures
        members = [i for i in result.integrations if i.kind == kind]
        if succeeded >= count:
            status, detail = "delivered", f"{succeeded} request(s) accepted" + (
                f", {failures} failed before" if failures else "")
        elif failures:
            status, detail = "failed", (f"{failures} request(s) failed, {succeeded} of {count} accepted; "
                                        "Alertmanager's log says why")
        else:
            status, detail = "pending", f"{attempts} of {count} request(s) made so far"
        for i in members:
            i.status, i.detail = status, detail


def _labels(args: argparse.Namespace) -> dict[str, str]:
    labels = {"alertname": ALERTNAME, "severity": args.severity, "team": args.team,
              "service_name": "otel-ml-test-alert", "ml_model_name": "test-alert",
              "test_id": uuid.uuid4().hex[:12]}
    for item in args.label or []:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise CLIError(f"--label {item!r}: expected NAME=VALUE with a Prometheus label name")
        labels[key] = value
    return labels


def run(args: argparse.Namespace) -> int:
    url = args.alertmanager
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CLIError(f"--alertmanager {url!r}: expected an http(s) URL such as {DEFAULT_URL}")
    result = drill(url, _labels(args), args.wait)
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0 if result.ok else 1
    print(f"test alert {result.labels['alertname']} (severity={result.labels['severity']}, "
          f"team={result.labels['team']}, test_id={result.labels['test_id']}) via {result.url}")
    print(f"  routed to: {', '.join(result.receivers) or '(no receiver)'}")
    if result.suppressed:
        print(f"  SUPPRESSED: {result.suppressed} - nobody is notified while that lasts")
    if not result.integrations:
        print("  the chosen receivers have no integrations: nobody is notified")
    for i in result.integrations:
        print(f"  {i.receiver:<28} {i.kind:<10} {i.status:<10} {i.detail}")
    verdict = "every integration delivered" if result.ok else "NOT delivered everywhere"
    print(f"  {verdict} ({result.seconds:.0f} s); the alert is resolved again")
    return 0 if result.ok else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("test-alert", help="send a synthetic alert through Alertmanager and say which "
                                                      "receivers got it")
    parser.add_argument("--alertmanager", default=DEFAULT_URL, help=f"Alertmanager URL (default {DEFAULT_URL})")
    parser.add_argument("--severity", default="warning", choices=("critical", "warning", "info"))
    parser.add_argument("--team", default="ml-platform", help="team label (routes: ml-platform, data)")
    parser.add_argument("--label", action="append", metavar="NAME=VALUE", help="extra label (repeatable)")
    parser.add_argument("--wait", type=float, default=90.0,
                        help="seconds to wait for delivery (default 90: group_wait is up to 30 s, plus retries)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)
