"""Who a model is, without code changes: ``ml.model.name``, version, variant, classes, task.

In order, the first that says something wins, per field:

1. a rule of the mapping file (``OTEL_ML_MODEL_MAP``, YAML or JSON) matching the model by the
   path it was loaded from (glob), its class (name or ``module.Class``) and/or framework::

       models:
         - match: {path: "*/fraud-*.joblib"}
           name: fraud
           version: "3"              # default: the content hash below
           variant: canary
           classes: {"0": ok, "1": fraud}
           positive_class: fraud
           reference: profiles/fraud.json   # drift and data quality, still without code

2. ``OTEL_ML_MODEL_NAME`` / ``_VERSION`` / ``_VARIANT`` / ``OTEL_ML_CLASS_NAMES`` /
   ``OTEL_ML_REFERENCE_PROFILE``: the process's model (with several, every one takes them: use
   the mapping file);
3. what the object tells: the stem of the file it was loaded from (``joblib.load``,
   ``pickle.load``, ``torch.load``, ``InferenceSession(path)``), else its class name (a
   Pipeline's or a search's final estimator); as version a content hash - of the file, or of the
   object's pickle - and never a library version.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_ml._internal import env, selftelemetry

UNVERSIONED = "unversioned"
_MAX_PICKLE_BYTES = 256 * 2**20  # beyond this, hashing at the first call costs more than it tells
_HASH_CHARS = 12


@dataclass(frozen=True)
class Identity:
    name: str
    version: str
    variant: str | None = None
    classes: Mapping[str, str] = field(default_factory=dict)  # raw class (as str) -> label
    positive_class: str | None = None
    reference: str | None = None  # path of a ReferenceProfile JSON

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.name, self.version, self.variant


@dataclass(frozen=True)
class Rule:
    match: Mapping[str, str]
    values: Mapping[str, Any]

    def matches(self, path: str | None, cls: type, framework: str) -> bool:
        for key, pattern in self.match.items():
            if key == "path":
                if path is None or not fnmatch.fnmatch(path, pattern):
                    return False
            elif key == "class":
                if pattern not in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}"):
                    return False
            elif key == "framework":
                if pattern != framework:
                    return False
            else:
                return False  # an unknown key matches nothing, rather than everything
        return True


def load_rules(path: str | os.PathLike[str]) -> list[Rule]:
    """The rules of a mapping file; ValueError naming the file and the problem."""
    text = Path(path).read_text()
    try:
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as exc:
        raise ValueError(f"{path}: not valid YAML/JSON: {exc}") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, list):
        raise ValueError(f"{path}: expected a top-level 'models:' list")
    rules = []
    for i, item in enumerate(models):
        if not isinstance(item, dict) or not isinstance(item.get("match", {}), dict):
            raise ValueError(f"{path}: models[{i}] must be a mapping with an optional 'match' mapping")
        unknown = set(item.get("match", {})) - {"path", "class", "framework"}
        if unknown:
            raise ValueError(f"{path}: models[{i}].match has unknown keys {sorted(unknown)}")
        rules.append(Rule({k: str(v) for k, v in item.get("match", {}).items()},
                          {k: v for k, v in item.items() if k != "match"}))
    return rules


def parse_classes(text: str) -> dict[str, str]:
    """``0=ok,1=fraud`` or a JSON object -> {"0": "ok", "1": "fraud"}."""
    text = text.strip()
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    out = {}
    for part in text.split(","):
        raw, sep, label = part.partition("=")
        if not sep:
            raise ValueError(f"{env.CLASS_NAMES}: expected raw=label pairs, got {part!r}")
        out[raw.strip()] = label.strip()
    return out


def file_hash(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()[:_HASH_CHARS]


def pickle_hash(obj: object) -> str | None:
    """Hash of the object's pickle (what a saved file would hold); None when it cannot be pickled."""
    try:
        data = pickle.dumps(obj, protocol=5)
    except Exception:
        return None
    if len(data) > _MAX_PICKLE_BYTES:
        return None
    return hashlib.sha256(data).hexdigest()[:_HASH_CHARS]


class Resolver:
    """Resolves identities from the environment and the mapping file, read once."""

    def __init__(self, environ: Mapping[str, str] | None = None,
                 registry: selftelemetry.SelfTelemetry | None = None) -> None:
        e = os.environ if environ is None else environ
        self._registry = registry or selftelemetry.DEFAULT
        self.name = e.get(env.MODEL_NAME) or None
        self.version = e.get(env.MODEL_VERSION) or None
        self.variant = e.get(env.MODEL_VARIANT) or None
        self.reference = e.get(env.REFERENCE_PROFILE) or None
        self.classes: dict[str, str] = {}
        if e.get(env.CLASS_NAMES):
            try:
                self.classes = parse_classes(e[env.CLASS_NAMES])
            except (ValueError, json.JSONDecodeError) as exc:
                self._registry.log_once("auto_class_names", "otel_ml: ignoring %s: %s", env.CLASS_NAMES, exc)
        self.rules: list[Rule] = []
        if e.get(env.MODEL_MAP):
            try:
                self.rules = load_rules(e[env.MODEL_MAP])
            except (OSError, ValueError) as exc:
                self._registry.log_once("auto_model_map", "otel_ml: ignoring %s=%s: %s", env.MODEL_MAP,
                                        e[env.MODEL_MAP], exc)

    def resolve(self, obj: object, *, framework: str, default_name: str, path: str | None,
                content_hash: Callable[[], str | None]) -> Identity:
        rule = next((r.values for r in self.rules if r.matches(path, type(obj), framework)), {})
        name = str(rule.get("name") or self.name or (Path(path).stem if path else default_name))[:128]
        version = rule.get("version") or self.version
        if version is None:
            version = (file_hash(path) if path else None) or content_hash() or UNVERSIONED
        classes = rule.get("classes")
        mapping = {str(k): str(v) for k, v in classes.items()} if isinstance(classes, dict) else self.classes
        positive = rule.get("positive_class")
        return Identity(name=name, version=str(version)[:128], variant=rule.get("variant") or self.variant,
                        classes=mapping, positive_class=None if positive is None else str(positive),
                        reference=rule.get("reference") or self.reference)
