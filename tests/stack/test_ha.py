"""Two Prometheus replicas and two clustered Alertmanagers page once (stack/README.md, "HA").

The README's Prometheus block is used as written, with loopback addresses in place of the hosts
and the replica's name in ``external_labels``. Both replicas load the shipped rules, time-compressed
(``alerts/generate.py --time-scale``). Neither replica scrapes a collector, so both fire the
shipped ``OtelMlCollectorDown`` (``absent(up{job="otel-collector"})``, a page). Both send it to
both Alertmanagers, which run ``alerts/alertmanager.yml`` in a cluster of two, on the loopback
channel stand-ins (alert_rig.py). The page must arrive once on Telegram and once on the incident
webhook, and no notification may carry the ``replica`` label.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.stack.alert_rig import ARRIVE_S, PATHS, REPO, SETTLE_S, alertmanager, channels, free_port, ready_process
from tests.stack.backends import get_json, poll
from tests.stack.built import built
from tests.stack.collectors import scrape

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
]

ALERT = "OtelMlCollectorDown"
TIME_SCALE = 0.0333  # for: 2m -> 4 s
PEER_TIMEOUT_S = 3  # the second Alertmanager waits this long for the first one's notification log


def readme_block() -> dict[str, Any]:
    """The YAML block of stack/README.md's HA section."""
    text = (REPO / "stack" / "README.md").read_text()
    section = text.split("## Two Prometheus and two Alertmanagers (HA)", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "stack/README.md's HA section has no yaml block"
    block: dict[str, Any] = yaml.safe_load(match.group(1))
    return block


def _prometheus_config(replica: str, alertmanagers: list[str], rules: Path) -> dict[str, Any]:
    config = copy.deepcopy(readme_block())
    assert config["global"]["external_labels"] == {"replica": "a"}
    config["global"]["external_labels"]["replica"] = replica
    config["global"].update(evaluation_interval="1s")
    (static,) = config["alerting"]["alertmanagers"][0]["static_configs"]
    assert len(static["targets"]) == len(alertmanagers)
    static["targets"] = alertmanagers
    config["rule_files"] = [str(rules / "*.rules.yml")]
    return config


@contextmanager
def _prometheus(replica: str, config: dict[str, Any], d: Path) -> Iterator[str]:
    d.mkdir(parents=True)
    (d / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [built(PATHS.bin / "prometheus"), f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}"]
    with ready_process(f"Prometheus {replica}", argv, d / "prometheus.log", url):
        yield url


def _metric(url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus or Alertmanager metric's samples with these labels (its own /metrics)."""
    text = scrape(f"{url}/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in " {"
               and all(f'{k}="{v}"' in line for k, v in labels.items()))


def _firing(prometheus: str) -> list[dict[str, Any]]:
    alerts = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == ALERT and a["state"] == "firing"]


def test_two_prometheus_and_two_alertmanagers_page_once(tmp_path: Path) -> None:
    am_binary = built(PATHS.bin / "alertmanager")
    built(PATHS.bin / "prometheus")
    rules = tmp_path / "rules"
    done = subprocess.run([sys.executable, str(REPO / "alerts" / "generate.py"), "--time-scale", repr(TIME_SCALE),
                           "--out", str(rules)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    cluster = [free_port(), free_port()]
    with ExitStack() as stack:
        ch = stack.enter_context(channels(tmp_path))
        managers = []
        for i, own in enumerate(cluster):
            other = cluster[1 - i]
            url, _log = stack.enter_context(alertmanager(
                am_binary, ch.config_file, tmp_path / f"alertmanager-{i}",
                f"--cluster.listen-address=127.0.0.1:{own}", f"--cluster.advertise-address=127.0.0.1:{own}",
                f"--cluster.peer=127.0.0.1:{other}", f"--cluster.peer-timeout={PEER_TIMEOUT_S}s",
                "--cluster.settle-timeout=5s", "--cluster.pushpull-interval=2s"))
            managers.append(url)
        for url in managers:
            poll(lambda url=url: _metric(url, "alertmanager_cluster_members") == 2,  # type: ignore[misc]
                 f"a cluster of two at {url}", 30.0, 0.3)
        targets = [urlparse(url).netloc for url in managers]
        replicas = {name: stack.enter_context(_prometheus(name, _prometheus_config(name, targets, rules),
                                                          tmp_path / f"prometheus-{name}"))
                    for name in ("a", "b")}

        for name, url in replicas.items():
            (firing,) = poll(lambda url=url: _firing(url), f"{ALERT} firing on replica {name}",  # type: ignore[misc]
                             ARRIVE_S, 0.5)
            assert firing["labels"]["severity"] == "critical"
        for name, prometheus in replicas.items():  # each replica sends to each Alertmanager
            for url in managers:
                api = f"{url}/api/v2/alerts"
                poll(lambda p=prometheus, api=api: _metric(p, "prometheus_notifications_sent_total",  # type: ignore[misc]
                                                           alertmanager=api) > 0,
                     f"replica {name}'s alerts sent to {url}", ARRIVE_S, 0.5)
                assert _metric(prometheus, "prometheus_notifications_errors_total", alertmanager=api) == 0
        # One alert per Alertmanager, the replicas' two copies merged: no replica label on it.
        for url in managers:
            held = [a for a in get_json(f"{url}/api/v2/alerts") if a["labels"]["alertname"] == ALERT]
            assert len(held) == 1 and "replica" not in held[0]["labels"], held

        def pages() -> list[tuple[str, Any]]:
            return [(m.channel, m) for m in ch.received.snapshot() if ALERT in m.alertnames]

        poll(lambda: {c for c, _ in pages()} == {"telegram", "webhook"}, f"{ALERT} paged", ARRIVE_S, 0.3)
        # Long enough for the second Alertmanager to have sent its own copy, were the cluster not working.
        time.sleep(2 * PEER_TIMEOUT_S + SETTLE_S)
        got = pages()
        assert sorted(c for c, _ in got) == ["telegram", "webhook"], [(c, m.destination) for c, m in got]
        (hook,) = [m for c, m in got if c == "webhook"]
        assert [a["labels"]["alertname"] for a in hook.raw["alerts"]] == [ALERT]
        assert "replica" not in hook.raw["alerts"][0]["labels"]
        # Both held it, one sent it: the other found the page in the gossiped notification log.
        assert sum(_metric(url, "alertmanager_notifications_total", integration="telegram") for url in managers) == 1
