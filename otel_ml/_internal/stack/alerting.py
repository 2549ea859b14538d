"""The local stack's Alertmanager config: alerts/alertmanager.yml with its secret files made local.

alerts/alertmanager.yml reads every secret from ``/etc/alertmanager/secrets/<name>``, where a
production deployment mounts them; Alertmanager does not expand environment variables in its
config, so there is no other way to point it elsewhere than a copy. ``otel-ml stack up`` writes a
loopback stand-in for each secret file that does not exist yet into ``stack/secrets/`` (or
``$OTEL_ML_ALERTMANAGER_SECRETS_DIR``; files already there are kept, so real tokens work too) and
runs a copy of the config, in ``.stack/alertmanager/``, with that folder in place of the
production one. A link to alerts/templates sits beside the copy, so its relative ``templates:``
glob still resolves and template edits need only a reload.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from otel_ml._internal import env
from otel_ml._internal.errors import CLIError
from otel_ml._internal.stack.paths import StackPaths

PRODUCTION_SECRETS = "/etc/alertmanager/secrets/"
# Values that let Alertmanager load and try every channel without reaching anyone: nothing
# listens on 127.0.0.1:5001 in the stack, so deliveries fail and are only logged.
STAND_INS = {
    "telegram_bot_token": "0000000000:local-stand-in",
    "slack_ml_platform_webhook_url": "http://127.0.0.1:5001/slack/ml-platform",
    "slack_data_webhook_url": "http://127.0.0.1:5001/slack/data",
    "smtp_password": "local-stand-in",
    "incident_webhook_url": "http://127.0.0.1:5001/incident",
}
_SECRET_FILE = re.compile(re.escape(PRODUCTION_SECRETS) + r"([A-Za-z0-9_.-]+)")


def source(paths: StackPaths) -> Path:
    return paths.root / "alerts" / "alertmanager.yml"


def config_file(paths: StackPaths) -> Path:
    """What the stack's Alertmanager runs (written by :func:`prepare`)."""
    return paths.alertmanager / "alertmanager.yml"


def secrets_dir(paths: StackPaths) -> Path:
    configured = os.environ.get(env.ALERTMANAGER_SECRETS_DIR)
    return Path(configured).resolve() if configured else paths.root / "stack" / "secrets"


def secret_names(config: str) -> list[str]:
    """The secret files a config reads from the production folder, in order of appearance."""
    return list(dict.fromkeys(_SECRET_FILE.findall(config)))


def localize(config: str, secrets: Path) -> str:
    """``config`` with every production secret path moved into ``secrets``."""
    return config.replace(PRODUCTION_SECRETS, f"{secrets}/")


def write_stand_ins(secrets: Path, names: list[str]) -> list[str]:
    """Create the missing secret files with loopback stand-ins; returns the names written."""
    secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name in names:
        target = secrets / name
        if target.exists():
            continue
        # Created 0600 from the start: the same files may later hold real tokens.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(STAND_INS.get(name, "local-stand-in") + "\n")
        written.append(name)
    return written


def prepare(paths: StackPaths) -> bool:
    """Write the stand-ins and the stack's config copy; True when the copy changed."""
    try:
        text = source(paths).read_text()
    except OSError as exc:
        raise CLIError(f"cannot read the Alertmanager config: {exc}") from exc
    secrets = secrets_dir(paths)
    write_stand_ins(secrets, secret_names(text))
    paths.alertmanager.mkdir(parents=True, exist_ok=True)
    link, templates = paths.alertmanager / "templates", paths.root / "alerts" / "templates"
    if link.is_symlink() and link.readlink() != templates:
        link.unlink()  # the checkout moved
    if not link.is_symlink():
        link.symlink_to(templates, target_is_directory=True)
    rendered = localize(text, secrets)
    target = config_file(paths)
    if target.is_file() and target.read_text() == rendered:
        return False
    target.write_text(rendered)
    return True
