"""Fuzz the CLIs in-process (``otel_ml.cli.main(argv)``) with hostile arguments and files.

The contract: a clear one-line error and exit status 2 (argparse's usage errors are SystemExit(2)),
or a normal exit status - never a traceback. ``otel-ml profile`` and ``otel-ml report`` read and
write files (pandas, a profile, an HTML report: ~30 ms a case on a loaded 2-core machine);
``compare`` and ``explain`` get hostile URLs, ids, ranges and numbers (servers on a closed loopback
port; ~10-15 ms a case). Each runs ``FUZZ_EXAMPLES`` (10 000) cases, in the fuzz stage of scripts/test.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_ml import cli
from tests.core.fuzz import CLI_FILE_EXAMPLES, CLI_URL_EXAMPLES, fuzz_settings
from tests.core.test_fuzz_profile import REFERENCE, _hostile_file

pytestmark = pytest.mark.fuzz

DEAD = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused at once

words = st.one_of(st.text(max_size=10), st.sampled_from(["", " ", "-", "--", "-h", "--json", "\x00", "é", "a=b",
                                                         "age", "country", "__prediction__", "x" * 500, "1e999",
                                                         "nan", "-1", "0", "1h", "7d", "abc", "%s%n", "../.."]))
urls = st.one_of(words, st.sampled_from([DEAD, DEAD + "/", f"{DEAD}/x?y", "https://127.0.0.1:9", "http://",
                                         "http://[::1", "http://127.0.0.1:99999", "ftp://x", "file:///etc/passwd",
                                         "http://user:pw@127.0.0.1:9", "http://127.0.0.1:9/%zz"]))
numbers = st.one_of(words, st.integers(-5, 10**6).map(str), st.floats(allow_nan=True).map(repr))


def _run(argv: list[str]) -> tuple[int, str]:
    """Exit status and stderr of ``otel-ml argv``; any other exception fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
            code = exc.code if isinstance(exc.code, int) else 2
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert code in (0, 1, 2, 3), (code, text)
    if code == 2:
        assert text.strip(), "exit status 2 without a message"
    return code, text


def _table(data: st.DataObject) -> bytes:
    """A CSV: a profile's columns with hostile cells, or hostile bytes."""
    kind = data.draw(st.integers(0, 3))
    if kind == 3:
        return data.draw(st.binary(max_size=80))
    cells = st.one_of(st.sampled_from(["", "nan", "inf", "-inf", "1e999", "1", "0.5", "fr", '"', '""', "a,b", "\n",
                                       "9" * 400, "NULL", "True"]), st.text(max_size=4))
    header = data.draw(st.lists(st.sampled_from([*REFERENCE.feature_names, "x", "", "pred", "age"]), min_size=1,
                                max_size=5)) if kind else REFERENCE.feature_names
    rows = data.draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header) + (kind == 2)),
                              max_size=6))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return "\n".join(lines).encode()


@fuzz_settings(CLI_FILE_EXAMPLES)
@given(data=st.data(), kinds=st.lists(words, max_size=3), target=st.one_of(st.none(), words),
       prediction=st.one_of(st.none(), words, st.just("pred")),
       prediction_kind=st.one_of(st.none(), st.sampled_from(["confidence", "score", "class", "value", "bogus"])),
       bins=st.one_of(st.none(), numbers), top_k=st.one_of(st.none(), numbers), sample=st.one_of(st.none(), numbers),
       output=st.sampled_from(["ok", "dir", "missing_dir", "nul"]))
def test_profile_cli(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, kinds: list[str],
                     target: str | None, prediction: str | None, prediction_kind: str | None, bins: str | None,
                     top_k: str | None, sample: str | None, output: str) -> None:
    base = tmp_path_factory.getbasetemp()
    src = base / data.draw(st.sampled_from(["train.csv", "train.parquet", "train.txt"]))
    src.write_bytes(_table(data))
    out = {"ok": str(base / "profile.json"), "dir": str(base), "missing_dir": str(base / "no" / "such" / "p.json"),
           "nul": str(base / "p\x00.json")}[output]
    argv = ["profile", str(src), "-o", out, "--progress", "never"]
    for flag, value in (("--target", target), ("--prediction", prediction), ("--prediction-kind", prediction_kind),
                        ("--bins", bins), ("--top-k", top_k), ("--sample-size", sample)):
        if value is not None:
            argv += [flag, value]
    if kinds:
        argv += ["--kinds", *kinds]
    _run(argv)


@fuzz_settings(CLI_FILE_EXAMPLES)
@given(data=st.data(), prediction=st.one_of(st.none(), words, st.just("age")),
       missing=st.sampled_from(["none", "profile", "data", "nul_profile", "nul_data"]),
       output=st.sampled_from(["ok", "dir", "missing_dir", "nul"]))
def test_report_cli(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, prediction: str | None,
                    missing: str, output: str) -> None:
    base: Path = tmp_path_factory.getbasetemp()
    profile, table = base / "ref.json", base / "live.csv"
    profile.write_bytes(_hostile_file(data) if data.draw(st.booleans()) else _valid_profile())
    table.write_bytes(_table(data))
    out = {"ok": str(base / "report.html"), "dir": str(base), "missing_dir": str(base / "no" / "such" / "r.html"),
           "nul": str(base / "r\x00.html")}[output]
    argv = ["report", "-o", out,
            "--profile", {"profile": str(base / "absent.json"), "nul_profile": str(base / "r\x00.json")}.get(
                missing, str(profile)),
            "--data", {"data": str(base / "absent.csv"), "nul_data": str(base / "l\x00.csv")}.get(missing, str(table))]
    if prediction is not None:
        argv += ["--prediction", prediction]
    _run(argv)


def _valid_profile() -> bytes:
    import json

    return json.dumps(REFERENCE.to_json(), allow_nan=True).encode()


@fuzz_settings(CLI_URL_EXAMPLES)
@given(model=words, by=st.one_of(st.sampled_from(["version", "variant"]), words), baseline=words, candidate=words,
       service=st.one_of(st.none(), words), window=st.one_of(st.sampled_from(["1h", "30m", "0s", "99999999d"]), words),
       at=st.one_of(st.none(), numbers), alpha=st.one_of(st.none(), numbers), min_count=st.one_of(st.none(), numbers),
       prometheus=urls, flags=st.lists(st.sampled_from(["--json", "--fail-without-evidence"]), max_size=2))
def test_compare_cli(model: str, by: str, baseline: str, candidate: str, service: str | None, window: str,
                     at: str | None, alpha: str | None, min_count: str | None, prometheus: str,
                     flags: list[str]) -> None:
    argv = ["compare", "--model", model, "--by", by, "--baseline", baseline, "--candidate", candidate,
            "--range", window, "--prometheus", prometheus, *flags]
    for flag, value in (("--service", service), ("--at", at), ("--alpha", alpha), ("--min-count", min_count)):
        if value is not None:
            argv += [flag, value]
    _run(argv)


@fuzz_settings(CLI_URL_EXAMPLES)
@given(pred_id=st.one_of(words, st.sampled_from(["0" * 32, "f" * 32, "g" * 32, "0" * 31, "0" * 33])),
       jaeger=urls, loki=urls, prometheus=urls, lookback=st.one_of(st.sampled_from(["24h", "0m", "99999d"]), words),
       json_out=st.booleans())
def test_explain_cli(pred_id: str, jaeger: str, loki: str, prometheus: str, lookback: str, json_out: bool) -> None:
    argv = ["explain", pred_id, "--jaeger", jaeger, "--loki", loki, "--prometheus", prometheus,
            "--lookback", lookback] + (["--json"] if json_out else [])
    _run(argv)


def test_cli_contract_is_checked(tmp_path: Path) -> None:
    """The check above fails on a traceback: a hostile profile must be a clear error, exit 2."""
    bad = tmp_path / "p.json"
    bad.write_text("[" * 100_000 + "]" * 100_000)
    code, text = _run(["report", "-o", str(tmp_path / "r.html"), "--profile", str(bad),
                       "--data", os.devnull])
    assert code == 2 and str(bad) in text, text
