"""Loopback stand-ins for Alertmanager's channels, and Alertmanagers running the committed config on them.

An HTTP server speaks the Telegram Bot API, Slack incoming webhooks and a generic webhook; an SMTP
server (aiosmtpd) requires the password from the secret file. :func:`channels` starts both and
writes alerts/alertmanager.yml with its secrets in a temporary directory and its endpoints on the
stand-ins (fast group timers); :func:`alertmanager` runs the built Alertmanager on it. Used by
test_alert_routing.py (one Alertmanager) and test_ha.py (a cluster of two behind two Prometheus).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from otel_ml._internal.stack import alerting
from otel_ml._internal.stack.logtail import tail
from otel_ml._internal.stack.paths import StackPaths
from tests.stack.backends import poll
from tests.stack.collectors import healthy

REPO = Path(__file__).resolve().parents[2]
PATHS = StackPaths(REPO)
CONFIG: dict[str, Any] = yaml.safe_load(alerting.source(PATHS).read_text())

GROUP_WAIT_S = 1
GROUP_INTERVAL_S = 2
ARRIVE_S = 30.0  # bound on every wait for a delivery
# After the expected messages arrived, how long an inhibited alert would have had to show up.
SETTLE_S = GROUP_WAIT_S + 3 * GROUP_INTERVAL_S


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Message:
    """One notification as a channel received it."""

    channel: str  # telegram | slack | email | webhook
    destination: str  # chat id, webhook URL path, e-mail recipient
    text: str  # everything a reader would see (for e-mail: text and HTML parts)
    raw: Any = None

    @property
    def alertnames(self) -> set[str]:
        return set(re.findall(r"\bOtelMl[A-Za-z0-9]+", self.text))


@dataclass
class Received:
    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[Message] = field(default_factory=list)
    http_paths: list[str] = field(default_factory=list)
    smtp_logins: list[tuple[str, str]] = field(default_factory=list)

    def add(self, message: Message) -> None:
        with self.lock:
            self.messages.append(message)

    def snapshot(self) -> list[Message]:
        with self.lock:
            return list(self.messages)


class _HTTPStandIn(BaseHTTPRequestHandler):
    """Telegram Bot API (POST /bot<token>/sendMessage), Slack incoming webhooks and a webhook sink."""

    server: _HTTPServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = self.server.received
        with received.lock:
            received.http_paths.append(self.path)
        payload = json.loads(body)
        reply: Any = "ok"
        if self.path.endswith("/sendMessage"):
            chat = int(payload["chat_id"])
            received.add(Message("telegram", str(chat), payload["text"], payload))
            reply = {"ok": True, "result": {"message_id": len(received.messages), "date": int(time.time()),
                                            "chat": {"id": chat, "type": "supergroup"}, "text": payload["text"]}}
        elif self.path.startswith("/slack/"):
            (att,) = payload["attachments"]
            fields = "\n".join(f"{f['title']}: {f['value']}" for f in att.get("fields") or [])
            received.add(Message("slack", self.path, f"{att['title']}\n{att['title_link']}\n{att['text']}\n{fields}",
                                 payload))
        else:
            text = "\n".join(f"{a['labels'].get('alertname')} {json.dumps(a)}" for a in payload["alerts"])
            received.add(Message("webhook", self.path, text, payload))
        data = json.dumps(reply).encode() if isinstance(reply, dict) else reply.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if isinstance(reply, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, received: Received) -> None:
        super().__init__(("127.0.0.1", 0), _HTTPStandIn)
        self.received = received


class _SMTPSink:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""  # bytes as sent (content may be decoded to str)
        msg = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        parts = [str(msg["Subject"])]
        for kind in ("plain", "html"):
            part = msg.get_body(preferencelist=(kind,))
            parts.append(part.get_content() if part is not None else "")
        for rcpt in envelope.rcpt_tos:
            self.received.add(Message("email", rcpt, "\n".join(parts), msg))
        return "250 OK"


@dataclass
class Rig:
    url: str
    received: Received
    secrets: dict[str, str]
    log: Path

    def post(self, *alerts: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts", data=json.dumps(list(alerts)).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200

    def wait_for(self, what: str, predicate: Callable[[Message], bool]) -> list[Message]:
        try:
            return poll(lambda: [m for m in self.received.snapshot() if predicate(m)], what, ARRIVE_S, 0.2)
        except AssertionError as exc:
            seen = [(m.channel, m.destination, sorted(m.alertnames)) for m in self.received.snapshot()]
            raise AssertionError(f"{exc}\nreceived: {seen}\nAlertmanager log:\n{tail(self.log, 40)}") from None


def test_config(http_url: str, smtp_port: int, secrets_dir: Path) -> dict[str, Any]:
    """The committed config, secrets moved to ``secrets_dir``, endpoints on the stand-ins, fast timers."""
    config: dict[str, Any] = yaml.safe_load(alerting.localize(alerting.source(PATHS).read_text(), secrets_dir))
    config["global"].update(telegram_api_url=http_url, smtp_smarthost=f"127.0.0.1:{smtp_port}",
                            smtp_require_tls=False)

    def fast(route: dict[str, Any]) -> None:
        route.update(group_wait=f"{GROUP_WAIT_S}s", group_interval=f"{GROUP_INTERVAL_S}s", repeat_interval="1h")
        for child in route.get("routes") or []:
            fast(child)

    fast(config["route"])
    return config


@dataclass
class Channels:
    """The running stand-ins: what they received, the secrets' values and the config file written for them."""

    received: Received
    secrets: dict[str, str]
    config_file: Path


@contextmanager
def channels(tmp: Path) -> Iterator[Channels]:
    """Start the stand-ins; write the committed Alertmanager config for them into ``tmp``."""
    received = Received()
    http = _HTTPServer(received)
    http_url = f"http://127.0.0.1:{http.server_address[1]}"
    # Unguessable values: finding them in requests proves they were read from the files.
    token = f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(16)}"
    values = {
        "telegram_bot_token": token,
        "slack_ml_platform_webhook_url": f"{http_url}/slack/{secrets.token_hex(8)}/ml-platform",
        "slack_data_webhook_url": f"{http_url}/slack/{secrets.token_hex(8)}/data",
        "smtp_password": secrets.token_urlsafe(12),
        "incident_webhook_url": f"{http_url}/incident/{secrets.token_hex(8)}",
    }
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir()
    for name, value in values.items():
        (secrets_dir / name).write_text(value + "\n")
    username = CONFIG["global"]["smtp_auth_username"]

    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == username
              and data.password.decode() == values["smtp_password"])
        if ok:
            with received.lock:
                received.smtp_logins.append((mechanism, data.login.decode()))
        return AuthResult(success=ok)

    smtp_port = free_port()
    # PLAIN only: aiosmtpd's LOGIN prompts "User Name" where Alertmanager (like most servers)
    # expects "Username:". Plain text is fine on loopback, which Go's PlainAuth allows.
    smtp = Controller(_SMTPSink(received), hostname="127.0.0.1", port=smtp_port, authenticator=authenticate,
                      auth_required=True, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    config_file = tmp / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(test_config(http_url, smtp_port, secrets_dir)))
    (tmp / "templates").symlink_to(REPO / "alerts" / "templates")
    threading.Thread(target=http.serve_forever, daemon=True).start()
    smtp.start()
    try:
        yield Channels(received, values, config_file)
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()


@contextmanager
def ready_process(name: str, argv: list[str], log: Path, url: str) -> Iterator[None]:
    """Run ``argv`` (output to ``log``) until ``url``/-/ready answers (Prometheus, Alertmanager); stop it after."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail(log, 40)}")
            return healthy(f"{url}/-/ready")

        poll(ready, f"{name} ready at {url}", 60.0, 0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def alertmanager(binary: str, config_file: Path, data: Path, *flags: str) -> Iterator[tuple[str, Path]]:
    """Run Alertmanager on ``config_file`` (storage in ``data``) until ready; yield its URL and log."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data / "alertmanager.log"
    url = f"http://127.0.0.1:{port}"
    argv = [binary, f"--config.file={config_file}", f"--storage.path={data}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=debug", f"--web.external-url={url}", *flags]
    with ready_process("Alertmanager", argv, log, url):
        yield url, log
