"""Fuzz drift: hostile reference-profile files and hostile features; nothing escapes, no bug is caught.

Entry points: ``ReferenceProfile.load(path)`` on a hostile file (a valid profile with one field
replaced by junk, garbage bytes, truncated or deeply nested JSON, NaN/Infinity literals) - it must
return a profile or raise ``ProfileError``, and a profile it returns must then work in a monitor
and in ``compare()`` - and ``monitor.inference(features=...)`` on a monitor with a reference
profile (features that are NaN/inf/None/strings/nested/ragged/huge, unseen categories, wrong
column sets). ``FUZZ_EXAMPLES`` (10 000) cases each (a profile-file case writes, loads and uses a
file). Default (non-strict) mode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_ml import ModelMonitor, ProfileError, ReferenceProfile
from otel_ml._internal import env
from otel_ml.testing import TelemetryCapture, capture_telemetry
from tests.core.fuzz import HOSTILE, PROFILE_FILE_EXAMPLES, fuzz_settings, junk, no_bug

pytestmark = pytest.mark.fuzz

_rng = np.random.default_rng(0)
_N = 300
REFERENCE = ReferenceProfile.from_data(
    {"age": _rng.normal(40, 10, _N), "country": _rng.choice(["fr", "de", "us"], _N).tolist(),
     "clicks": _rng.integers(0, 5, _N), "flag": _rng.random(_N) > 0.5},
    predictions=_rng.random(_N), prediction_kind="confidence", sample_size=50, bins=5, top_k=4)
DOC = REFERENCE.to_json()


@pytest.fixture(scope="module")
def fcap() -> Iterator[TelemetryCapture]:
    with capture_telemetry(strict=False) as cap:
        yield cap


@pytest.fixture(scope="module")
def drift_monitor(fcap: TelemetryCapture) -> ModelMonitor:
    return fcap.monitor("fuzz-drift", version="1", reference=REFERENCE)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
                         st.sampled_from([10**400, -1, 0, 1, 2, 1e308, "numeric", "categorical", "confidence",
                                          "class", float("nan"), float("inf")]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=6)


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """``doc`` with one field (at a random depth) replaced, deleted or given a junk sibling."""
    if isinstance(doc, dict) and doc:
        key = data.draw(st.sampled_from(sorted(doc)))
        child = dict(doc)
        op = data.draw(st.integers(0, 5))
        if op == 0:
            del child[key]
        elif op == 1:
            child[key] = data.draw(json_values)
        elif op == 2:
            child[data.draw(st.text(max_size=6))] = data.draw(json_values)
        else:
            child[key] = _mutate(doc[key], data)
        return child
    if isinstance(doc, list) and doc:
        i = data.draw(st.integers(0, len(doc) - 1))
        child_list = list(doc)
        op = data.draw(st.integers(0, 5))
        if op == 0:
            del child_list[i]
        elif op == 1:
            child_list[i] = data.draw(json_values)
        elif op == 2:
            child_list.append(data.draw(json_values))
        else:
            child_list[i] = _mutate(doc[i], data)
        return child_list
    return data.draw(json_values)


def _hostile_file(data: st.DataObject) -> bytes:
    kind = data.draw(st.integers(0, 9))
    if kind <= 5:
        doc = DOC
        for _ in range(data.draw(st.integers(1, 3))):
            doc = _mutate(doc, data)
        return json.dumps(doc, allow_nan=True).encode()
    if kind == 6:
        text = json.dumps(DOC)
        return text[: data.draw(st.integers(0, len(text)))].encode()
    if kind == 7:
        depth = data.draw(st.sampled_from([10, 1000, 100_000]))
        return ("[" * depth + "]" * depth).encode() if data.draw(st.booleans()) else \
            ('{"a":' * depth + "1" + "}" * depth).encode()
    if kind == 8:
        return data.draw(st.binary(max_size=64))
    return data.draw(st.sampled_from([b"", b"null", b"\xff\xfe{}", "\ufeff{}".encode(), b"NaN", b"[]", b"{}",
                                      json.dumps(DOC).encode("utf-16"), b'{"bins": ' + b"9" * 5000 + b"}"]))


@fuzz_settings(PROFILE_FILE_EXAMPLES)
@given(data=st.data())
def test_load_hostile_profile(fcap: TelemetryCapture, tmp_path_factory: pytest.TempPathFactory,
                              data: st.DataObject) -> None:
    path: Path = tmp_path_factory.getbasetemp() / "hostile_profile.json"
    path.write_bytes(_hostile_file(data))
    with no_bug(fcap.selftelemetry):
        try:
            profile = ReferenceProfile.load(path)
        except ProfileError as exc:
            assert str(exc), "a ProfileError must say what is wrong"
            return
        # Accepted: it must then work wherever a profile is used.
        row = {f: data.draw(st.sampled_from(HOSTILE[:40])) for f in profile.feature_names[:4]}
        monitor = ModelMonitor("fuzz-loaded", version="1", reference=profile, tracer_provider=fcap.tracer_provider,
                               meter_provider=fcap.meter_provider)
        try:
            with monitor.inference(features=row) as inf:
                inf.record(predictions="a", confidence=0.5)
            monitor.drift()
        finally:
            monitor.close()
        # compare() counts into a registry of its own: strict mode (the env var) makes its guards raise here.
        os.environ[env.STRICT] = "1"
        try:
            batch = {f: [1.0, "a", None] for f in profile.feature_names}
            profile.compare(batch, predictions=[0.1, 0.2, 0.3] if batch and profile.prediction else None)
        finally:
            del os.environ[env.STRICT]
        profile.to_json()


column = st.one_of(junk, st.lists(st.sampled_from(HOSTILE), min_size=0, max_size=4))
features = st.one_of(
    junk,
    st.dictionaries(st.sampled_from(["age", "country", "clicks", "flag", "unknown", ""]), column, max_size=5),
    st.lists(st.dictionaries(st.sampled_from(["age", "country", "clicks", "flag", "x"]), st.sampled_from(HOSTILE),
                             max_size=5), max_size=3),
    st.lists(st.lists(st.sampled_from(HOSTILE), max_size=5), max_size=3),
)


@fuzz_settings()
@given(features=features, predictions=junk, confidence=junk, evaluate=st.integers(0, 19))
def test_drift_features(fcap: TelemetryCapture, drift_monitor: ModelMonitor, features: Any, predictions: Any,
                        confidence: Any, evaluate: int) -> None:
    with no_bug(fcap.selftelemetry):
        with drift_monitor.inference(features=features) as inf:
            inf.record(predictions=predictions, confidence=confidence)
        tracker = drift_monitor.drift_tracker
        assert tracker is not None
        tracker.update_predictions(confidence)
        if evaluate == 0:  # one case in twenty: the drift verdict over everything fed so far
            drift_monitor.drift()
