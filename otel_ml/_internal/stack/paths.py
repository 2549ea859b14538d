"""Where the stack's files live: the checkout's root and its git-ignored ``.stack`` directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from otel_ml._internal import env
from otel_ml._internal.errors import CLIError

HOME_ENV = env.HOME
# The file that marks a checkout's root: the stack is driven by the configs committed there.
MARKER = Path("collector") / "manifest.yaml"


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @property
    def stack(self) -> Path:
        return self.root / ".stack"

    @property
    def bin(self) -> Path:
        return self.stack / "bin"

    @property
    def build(self) -> Path:
        return self.stack / "build"

    @property
    def run(self) -> Path:
        return self.stack / "run"

    @property
    def logs(self) -> Path:
        return self.stack / "logs"

    @property
    def data(self) -> Path:
        return self.stack / "data"

    @property
    def promtool(self) -> Path:
        return self.bin / "promtool"

    @property
    def amtool(self) -> Path:
        return self.bin / "amtool"

    @property
    def alertmanager(self) -> Path:
        """The local stack's copy of alerts/alertmanager.yml and its links (see :mod:`.alerting`)."""
        return self.stack / "alertmanager"

    def ensure(self) -> None:
        for d in (self.bin, self.build, self.run, self.logs, self.data):
            d.mkdir(parents=True, exist_ok=True)


def find_root(start: Path | None = None) -> StackPaths:
    """``$OTEL_ML_HOME`` if set, else the nearest directory above ``start`` holding the marker."""
    env = os.environ.get(HOME_ENV)
    if env:
        root = Path(env).resolve()
        if not (root / MARKER).is_file():
            raise CLIError(f"{HOME_ENV}={env} has no {MARKER}: point it at an otel_ml checkout")
        return StackPaths(root)
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MARKER).is_file():
            return StackPaths(candidate)
    raise CLIError(f"no {MARKER} in {here} or above: run inside an otel_ml checkout or set {HOME_ENV}")
