"""``otel-ml compare``: A/B or canary comparison of two versions (or variants) of a model, from
Prometheus, with a significance test per figure and a verdict a deploy pipeline can act on.

Over ``--range`` (default 1h) ending now (or ``--at``), for the baseline and the candidate:

=================  =========================================================  ===========================
figure             from                                                       test
=================  =========================================================  ===========================
error ratio        ``ml_inference_duration_seconds_count`` with / without     Fisher's exact test
                   ``error_type``
latency            ``ml_inference_duration_seconds_bucket`` (p50, p95, p99    chi-square test of the two
                   interpolated as ``histogram_quantile`` does; mean)         bucket distributions
accuracy           ``ml_outcomes_total`` (predicted == actual), delayed       Fisher's exact test
                   labels joined to either side
drift              ``ml_drift_status`` (worst feature) and mean               reported, not tested
                   ``ml_drift_score_ratio``
=================  =========================================================  ===========================

A figure is **worse** or **better** when its test's p-value is below ``--alpha`` divided by the
number of figures tested (Bonferroni: several figures do not multiply false alarms) and the
candidate's value moved that way; otherwise there is **no evidence** either way - including when
a side has too little data (fewer than ``--min-count`` inferences or labels), which is said.
Verdict: **worse** if any figure is worse, **better** if at least one is better and none worse,
else **no evidence**. Exit status: 0 not worse, 1 worse (stop the rollout), 2 Prometheus
unreachable or bad arguments; ``--fail-without-evidence`` makes "no evidence" exit 3.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from otel_ml._internal.errors import CLIError

DURATION = "ml_inference_duration_seconds"


@dataclass
class Figure:
    name: str
    baseline: str
    candidate: str
    p_value: float | None = None
    verdict: str = "no evidence"  # better | worse | no evidence | not tested
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"figure": self.name, "baseline": self.baseline, "candidate": self.candidate,
                "p_value": self.p_value, "verdict": self.verdict, "note": self.note}


@dataclass
class Comparison:
    model: str
    by: str
    baseline: str
    candidate: str
    range: str
    alpha: float
    figures: list[Figure] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        verdicts = {f.verdict for f in self.figures}
        if "worse" in verdicts:
            return "worse"
        if "better" in verdicts:
            return "better"
        return "no evidence"


class Prometheus:
    def __init__(self, url: str, at: float) -> None:
        self.url = url.rstrip("/")
        self.at = at

    def query(self, expr: str) -> list[dict[str, Any]]:
        full = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": str(self.at)})
        try:
            with urllib.request.urlopen(full, timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise CLIError(f"Prometheus at {self.url} refused {expr!r}: HTTP {exc.code} "
                           f"{exc.read().decode(errors='replace')[:200]}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CLIError(f"cannot reach Prometheus at {self.url}: {getattr(exc, 'reason', exc)}") from None
        return list(body.get("data", {}).get("result", []))

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile(q, ...)`` over cumulative (upper bound, count) pairs, as Prometheus does:
    linear interpolation inside the bucket, the highest finite bound for the +Inf bucket."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return buckets[-1][0]


def _fmt_seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.1f} ms"


def compare(prom: Prometheus, model: str, by: str, baseline: str, candidate: str, window: str, *,
            service: str | None = None, alpha: float = 0.05, min_count: int = 30) -> Comparison:
    from scipy import stats

    result = Comparison(model, by, baseline, candidate, window, alpha)

    def sel(value: str, extra: str = "") -> str:
        parts = [f'ml_model_name="{_esc(model)}"', f'ml_model_{by}="{_esc(value)}"']
        if service:
            parts.append(f'service_name="{_esc(service)}"')
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}"

    def inc(metric: str, value: str, extra: str = "", by_labels: str = "") -> str:
        grouping = f" by ({by_labels})" if by_labels else ""
        return f"sum{grouping} (increase({metric}{sel(value, extra)}[{window}]))"

    # --- error ratio
    counts = {}
    for side, value in (("baseline", baseline), ("candidate", candidate)):
        total = prom.scalar(inc(f"{DURATION}_count", value))
        errors = prom.scalar(inc(f"{DURATION}_count", value, 'error_type!=""'))
        counts[side] = (round(errors), round(total))
    (be, bt), (ce, ct) = counts["baseline"], counts["candidate"]
    fig = Figure("error ratio", _ratio(be, bt), _ratio(ce, ct))
    if min(bt, ct) < min_count:
        fig.note = f"too few inferences (baseline {bt}, candidate {ct}; need {min_count} each)"
    else:
        fig.p_value = float(stats.fisher_exact([[be, bt - be], [ce, ct - ce]])[1])
        fig.note = f"{be}/{bt} vs {ce}/{ct}"
        _direction(fig, ce / ct - be / bt, higher_is_worse=True)
    result.figures.append(fig)

    # --- latency
    hist: dict[str, list[tuple[float, float]]] = {}
    means: dict[str, float | None] = {}
    for side, value in (("baseline", baseline), ("candidate", candidate)):
        rows = prom.query(inc(f"{DURATION}_bucket", value, by_labels="le"))
        hist[side] = [(float(r["metric"]["le"]), float(r["value"][1])) for r in rows]
        n = prom.scalar(inc(f"{DURATION}_count", value))
        means[side] = prom.scalar(inc(f"{DURATION}_sum", value)) / n if n else None
    qs = {side: {q: quantile(q, hist[side]) for q in (0.5, 0.95, 0.99)} for side in hist}

    def describe(side: str) -> str:
        return (f"p50 {_fmt_seconds(qs[side][0.5])}, p95 {_fmt_seconds(qs[side][0.95])}, "
                f"p99 {_fmt_seconds(qs[side][0.99])}, mean {_fmt_seconds(means[side])}")

    fig = Figure("latency", describe("baseline"), describe("candidate"))
    table = _bucket_table(hist["baseline"], hist["candidate"])
    if min(bt, ct) < min_count or table is None:
        fig.note = f"too few inferences (baseline {bt}, candidate {ct}; need {min_count} each)"
    else:
        chi = stats.chi2_contingency(table)
        fig.p_value = float(chi[1])
        b95, c95 = qs["baseline"][0.95], qs["candidate"][0.95]
        bm, cm = means["baseline"] or 0.0, means["candidate"] or 0.0
        # The distributions differ; which way: the mean and p95 must agree, else it is a shape change.
        delta = (cm - bm) if (b95 is None or c95 is None or (cm - bm) * (c95 - b95) > 0) else 0.0
        _direction(fig, delta, higher_is_worse=True)
        if delta == 0.0 and fig.p_value < alpha:
            fig.note = "the distributions differ but mean and p95 move apart: no direction"
    result.figures.append(fig)

    # --- accuracy (delayed labels)
    acc = {}
    for side, value in (("baseline", baseline), ("candidate", candidate)):
        rows = prom.query(inc("ml_outcomes_total", value, by_labels="ml_prediction_class, ml_outcome_class"))
        total = sum(float(r["value"][1]) for r in rows)
        correct = sum(float(r["value"][1]) for r in rows
                      if r["metric"].get("ml_prediction_class") == r["metric"].get("ml_outcome_class"))
        acc[side] = (round(correct), round(total))
    (bc, bn), (cc, cn) = acc["baseline"], acc["candidate"]
    fig = Figure("accuracy", _ratio(bc, bn), _ratio(cc, cn))
    if min(bn, cn) < min_count:
        fig.note = f"too few labels (baseline {bn}, candidate {cn}; need {min_count} each)"
    else:
        fig.p_value = float(stats.fisher_exact([[bc, bn - bc], [cc, cn - cc]])[1])
        fig.note = f"{bc}/{bn} vs {cc}/{cn} correct"
        _direction(fig, cc / cn - bc / bn, higher_is_worse=False)
    result.figures.append(fig)

    # --- drift (reported)
    status_names = {0: "ok", 1: "warning", 2: "drift", -1: "insufficient data"}
    drift = {}
    for side, value in (("baseline", baseline), ("candidate", candidate)):
        rows = prom.query(f"max(max_over_time(ml_drift_status{sel(value)}[{window}]))")
        score = prom.query(f"avg(avg_over_time(ml_drift_score_ratio{sel(value)}[{window}]))")
        status = status_names.get(int(float(rows[0]["value"][1])), "?") if rows else "no data"
        mean = f", mean score {float(score[0]['value'][1]):.3f}" if score else ""
        drift[side] = f"worst {status}{mean}"
    result.figures.append(Figure("drift", drift["baseline"], drift["candidate"], verdict="not tested",
                                 note="drift compares inputs to the reference, not the two versions"))

    tested = [f for f in result.figures if f.p_value is not None]
    threshold = alpha / max(1, len(tested))
    for f in tested:
        if f.p_value is not None and f.p_value >= threshold and f.verdict != "no evidence":
            f.verdict = "no evidence"
    return result


def _direction(fig: Figure, delta: float, *, higher_is_worse: bool) -> None:
    if delta == 0:
        fig.verdict = "no evidence"
    else:
        fig.verdict = "worse" if (delta > 0) == higher_is_worse else "better"


def _bucket_table(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[list[float]] | None:
    """Per-bucket (not cumulative) counts of both sides on their common bounds, empty columns dropped."""
    da, db = dict(a), dict(b)
    bounds = sorted(set(da) & set(db))
    if len(bounds) < 2:
        return None
    rows: list[list[float]] = [[], []]
    prev = [0.0, 0.0]
    for bound in bounds:
        cur = [da[bound], db[bound]]
        cells = [max(0.0, cur[i] - prev[i]) for i in range(2)]
        prev = cur
        if cells[0] + cells[1] > 0:
            rows[0].append(cells[0])
            rows[1].append(cells[1])
    if len(rows[0]) < 2 or min(sum(rows[0]), sum(rows[1])) <= 0:
        return None
    return rows


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else "n/a"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def run(args: argparse.Namespace) -> int:
    try:
        parsed = urllib.parse.urlparse(args.prometheus)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        parsed = urllib.parse.urlparse("")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise CLIError(f"--prometheus {args.prometheus!r}: expected an http(s) URL")
    if not (0 < args.alpha < 1):
        raise CLIError(f"--alpha {args.alpha}: expected a probability between 0 and 1")
    if not args.range or not args.range[:-1].isdigit() or args.range[-1] not in "smhdw":
        raise CLIError(f"--range {args.range!r}: expected a Prometheus duration such as 30m, 1h or 1d")
    prom = Prometheus(args.prometheus, args.at if args.at is not None else time.time())
    result = compare(prom, args.model, args.by, args.baseline, args.candidate, args.range, service=args.service,
                     alpha=args.alpha, min_count=args.min_count)
    code = 1 if result.verdict == "worse" else 3 if (
        result.verdict == "no evidence" and args.fail_without_evidence) else 0
    if args.json:
        print(json.dumps({"model": result.model, "by": result.by, "baseline": result.baseline,
                          "candidate": result.candidate, "range": result.range, "alpha": result.alpha,
                          "verdict": result.verdict, "figures": [f.as_dict() for f in result.figures]}))
        return code
    print(f"{result.model}: {result.by} {result.candidate!r} (candidate) vs {result.baseline!r} (baseline), "
          f"last {result.range}, alpha {result.alpha} (Bonferroni over the tested figures)")
    for f in result.figures:
        p = "" if f.p_value is None else f"  p={f.p_value:.3g}"
        print(f"  {f.name:<12} {f.verdict.upper():<12}{p}")
        print(f"      baseline:  {f.baseline}")
        print(f"      candidate: {f.candidate}")
        if f.note:
            print(f"      {f.note}")
    print(f"verdict: {result.verdict.upper()}")
    return code


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("compare", help="A/B or canary: two versions or variants of a model from "
                                                   "Prometheus, tested figure by figure, with a verdict")
    parser.add_argument("--model", required=True, help="ml.model.name")
    parser.add_argument("--by", choices=("version", "variant"), default="version",
                        help="what differs between the two (default version)")
    parser.add_argument("--baseline", required=True, help="the version (or variant; '' for none) running now")
    parser.add_argument("--candidate", required=True, help="the new version (or variant, e.g. canary)")
    parser.add_argument("--service", help="service.name, when several services serve the model")
    parser.add_argument("--range", default="1h", help="window ending now (Prometheus duration; default 1h)")
    parser.add_argument("--at", type=float, help="end of the window, Unix seconds (default now)")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise significance level (default 0.05)")
    parser.add_argument("--min-count", type=int, default=30, help="inferences / labels each side needs (default 30)")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--fail-without-evidence", action="store_true", help='exit 3 when the verdict is "no evidence"')
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)
