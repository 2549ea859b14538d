"""``otel-ml report``: the nightly drift and quality report, as one self-contained HTML file.

From a reference profile and a data file (the batch to check)::

    otel-ml report --profile profile.json --data today.parquet [--prediction COL] -o report.html

or from Prometheus, for a model over a time range (what the running service saw)::

    otel-ml report --prometheus http://127.0.0.1:9090 --model fraud [--service S] --range 24h -o report.html

The report holds, per feature, the reference and current distributions side by side (bins or
categories), the drift scores and status by the same rule as the streaming monitor
(``ReferenceProfile.compare`` / ``ml_drift_*``), data quality (missing values, values outside the
reference range, unseen categories) and - from Prometheus - accuracy, F1 and ROC AUC over the
range per model version. Charts are inline SVG with the styles in the file: no script or font is
fetched, so it opens offline and can be mailed. Errors name the file, column or URL (exit 2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import itertools
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_ml._internal.errors import CLIError

STATUS_COLOURS = {"ok": "#2e7d32", "warning": "#ef6c00", "drift": "#c62828", "insufficient_data": "#757575",
                  "insufficient data": "#757575"}
SERIES_COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f")


@dataclass
class FeatureSection:
    name: str
    kind: str
    status: str
    scores: dict[str, float]
    labels: list[str]  # bin or category labels
    reference: list[float]  # proportions
    current: list[float]
    n: int
    quality: dict[str, float] = field(default_factory=dict)  # issue -> count (or rate)


@dataclass
class QualitySeries:
    metric: str
    version: str
    points: list[tuple[float, float]]  # (unix seconds, value)


@dataclass
class Report:
    title: str
    source: str
    generated: str
    features: list[FeatureSection] = field(default_factory=list)
    quality: list[QualitySeries] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- from a profile and a data file ---------------------------------------------------------


def from_data(profile_path: str, data_path: str, prediction: str | None = None) -> Report:
    import numpy as np

    from otel_ml._internal.drift.cli import read_table
    from otel_ml._internal.drift.features import FeatureKind, is_missing, numeric_bin_index
    from otel_ml._internal.drift.profile import ReferenceProfile
    from otel_ml._internal.errors import ProfileError

    try:
        profile = ReferenceProfile.load(profile_path)
    except FileNotFoundError:
        raise CLIError(f"{profile_path}: no such profile file") from None
    except (ProfileError, ValueError, OSError) as exc:
        raise CLIError(f"{profile_path}: not a reference profile: {exc}") from None
    table = read_table(data_path)
    missing = [n for n in profile.feature_names if n not in table]
    if len(missing) == len(profile.feature_names):
        raise CLIError(f"{data_path}: none of the profile's columns ({', '.join(profile.feature_names[:5])}, ...) "
                       "is in the data")
    preds = None
    if prediction is not None:
        if prediction not in table:
            raise CLIError(f"{data_path}: no column {prediction!r} (--prediction)")
        preds = table[prediction]
    columns = {n: table[n] for n in profile.feature_names if n in table}
    try:
        results = profile.compare(columns, predictions=preds)
    except ValueError as exc:
        raise CLIError(f"{data_path}: {exc}") from None
    report = Report(f"Drift and data quality: {Path(data_path).name} against {Path(profile_path).name}",
                    f"profile {profile_path}, data {data_path}", _now())
    if missing:
        report.notes.append(f"{len(missing)} profiled column(s) missing from the data, counted as missing values: "
                            + ", ".join(missing[:20]))
    feats = list(profile.features) + ([profile.prediction] if profile.prediction is not None and preds is not None
                                      else [])
    for fp in feats:
        name = fp.name
        values = list(preds) if fp is profile.prediction and preds is not None else list(columns.get(name, []))
        if not values and name in missing:
            values = []
        present = [v for v in values if not is_missing(v)]
        n_all = len(values) if values else len(next(iter(columns.values()), []))
        quality: dict[str, float] = {"missing": float(n_all - len(present))}
        if fp.kind is FeatureKind.NUMERIC:
            arr = np.asarray([float(v) for v in present if _is_number(v)], dtype=float)
            quality["type mismatch"] = float(len(present) - arr.size)
            counts = np.bincount(numeric_bin_index(fp.edges_array, arr), minlength=fp.n_bins)[: fp.n_bins] \
                if arr.size else np.zeros(fp.n_bins)
            quality["out of range"] = float(((arr < fp.min) | (arr > fp.max)).sum()) if arr.size else 0.0
            edges = [float(e) for e in fp.edges]
            labels = _bin_labels(edges, fp.n_bins)
        else:
            index = {str(c): i for i, c in enumerate(fp.categories)}
            counts = np.zeros(fp.n_bins)
            unseen = 0
            for v in present:
                i = index.get(str(v))
                if i is None:
                    unseen += 1
                    i = fp.n_bins - 1  # "other"
                counts[i] += 1
            quality["unseen categories"] = float(unseen)
            labels = [str(c) for c in fp.categories] + ["other"]
            labels = labels[: fp.n_bins]
        total = float(counts.sum())
        current = [float(c) / total if total else 0.0 for c in counts]
        result = results.get(name)
        status = result.status.name.lower() if result is not None else "insufficient_data"
        scores = {k: float(v) for k, v in (result.scores.items() if result is not None else {}.items())
                  if isinstance(v, (int, float)) and not math.isnan(float(v))}
        report.features.append(FeatureSection(name, fp.kind.value, status, scores, labels,
                                              [float(p) for p in fp.proportions], current,
                                              result.n if result is not None else 0, quality))
    return report


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return not isinstance(v, bool)
    except (TypeError, ValueError, OverflowError):
        return False


def _bin_labels(edges: list[float], n_bins: int) -> list[str]:
    """Human labels for the profile's numeric bins: inner edges split the line into n_bins."""
    inner = edges[1:-1] if len(edges) == n_bins + 1 else edges
    if len(inner) != n_bins - 1:
        return [str(i) for i in range(n_bins)]
    out = [f"< {inner[0]:.3g}"] if inner else []
    out += [f"{a:.3g}-{b:.3g}" for a, b in itertools.pairwise(inner)]
    out += [f">= {inner[-1]:.3g}"] if inner else ["all"]
    return out


# --- from Prometheus --------------------------------------------------------------------------


def _prom(url: str, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    full = f"{url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(full, timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise CLIError(f"Prometheus at {url} refused {params.get('query')!r}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CLIError(f"cannot reach Prometheus at {url}: {getattr(exc, 'reason', exc)}") from None
    return list(body.get("data", {}).get("result", []))


def _seconds(window: str) -> int:
    m = re.fullmatch(r"(\d+)([smhdw])", window)
    if not m:
        raise CLIError(f"--range {window!r}: expected a Prometheus duration such as 6h, 1d or 7d")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def from_prometheus(url: str, model: str, window: str, service: str | None = None,
                    version: str | None = None, at: float | None = None) -> Report:
    url = url.rstrip("/")
    end = at if at is not None else time.time()
    seconds = _seconds(window)
    parts = [f'ml_model_name="{_esc(model)}"']
    if service:
        parts.append(f'service_name="{_esc(service)}"')
    if version:
        parts.append(f'ml_model_version="{_esc(version)}"')
    sel = ",".join(parts)
    q = {"time": str(end)}
    status_rows = _prom(url, "/api/v1/query", {**q, "query": f"max by (ml_feature_name) "
                                                                 f"(max_over_time(ml_drift_status{{{sel}}}[{window}]))"})
    if not status_rows and not _prom(url, "/api/v1/query", {**q, "query": f"count(ml_inference_duration_seconds_count"
                                                                          f"{{{sel}}})"}):
        raise CLIError(f"Prometheus at {url} has no series for model {model!r}"
                       + (f" of service {service!r}" if service else "") + f" in the last {window}")
    names = {0: "ok", 1: "warning", 2: "drift", -1: "insufficient_data"}
    status = {r["metric"].get("ml_feature_name", "?"): names.get(int(float(r["value"][1])), "?") for r in status_rows}
    scores: dict[str, dict[str, float]] = {}
    for r in _prom(url, "/api/v1/query", {**q, "query": f"max by (ml_feature_name, ml_drift_method) "
                                                        f"(max_over_time(ml_drift_score_ratio{{{sel}}}[{window}]))"}):
        scores.setdefault(r["metric"].get("ml_feature_name", "?"), {})[r["metric"].get("ml_drift_method", "?")] = \
            float(r["value"][1])
    ref: dict[str, dict[str, float]] = {}
    for r in _prom(url, "/api/v1/query", {**q, "query": f"max by (ml_feature_name, ml_feature_bin) "
                                                        f"(last_over_time(ml_feature_reference_proportion{{{sel}}}"
                                                        f"[{window}]))"}):
        ref.setdefault(r["metric"].get("ml_feature_name", "?"), {})[r["metric"].get("ml_feature_bin", "?")] = \
            float(r["value"][1])
    cur: dict[str, dict[str, float]] = {}
    for r in _prom(url, "/api/v1/query", {**q, "query": f"sum by (ml_feature_name, ml_feature_bin) "
                                                        f"(increase(ml_feature_bin_count_total{{{sel}}}[{window}]))"}):
        cur.setdefault(r["metric"].get("ml_feature_name", "?"), {})[r["metric"].get("ml_feature_bin", "?")] = \
            float(r["value"][1])
    issues: dict[str, dict[str, float]] = {}
    for r in _prom(url, "/api/v1/query", {**q, "query": f"sum by (ml_feature_name, ml_data_quality_issue) "
                                                        f"(increase(ml_data_quality_issues_total{{{sel}}}"
                                                        f"[{window}]))"}):
        issues.setdefault(r["metric"].get("ml_feature_name", "?"), {})[
            r["metric"].get("ml_data_quality_issue", "?").replace("_", " ")] = float(r["value"][1])
    report = Report(f"Drift and quality of {model} over the last {window}", f"Prometheus {url}, {sel}", _now())
    for name in sorted(set(status) | set(ref)):
        bins = sorted(set(ref.get(name, {})) | set(cur.get(name, {})), key=_bin_key)
        total = sum(cur.get(name, {}).values())
        report.features.append(FeatureSection(
            name, "", status.get(name, "insufficient_data"), scores.get(name, {}), bins,
            [ref.get(name, {}).get(b, 0.0) for b in bins],
            [cur.get(name, {}).get(b, 0.0) / total if total else 0.0 for b in bins], round(total),
            issues.get(name, {})))
    step = max(15, seconds // 120)
    for r in _prom(url, "/api/v1/query_range", {
            "query": f'max by (ml_model_version, ml_quality_metric) (ml_quality_score_ratio{{{sel},'
                     f'ml_quality_metric=~"accuracy|f1|roc_auc|mae|rmse"}})',
            "start": str(end - seconds), "end": str(end), "step": str(step)}):
        report.quality.append(QualitySeries(r["metric"].get("ml_quality_metric", "?"),
                                            r["metric"].get("ml_model_version", "?"),
                                            [(float(t), float(v)) for t, v in r.get("values", [])
                                             if not math.isnan(float(v))]))
    if not report.quality:
        report.notes.append("no quality scores in the range: no delayed labels arrived, or none joined")
    return report


def _bin_key(b: str) -> tuple[int, str]:
    return (int(b), "") if b.isdigit() else (10**9, b)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --- HTML -----------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212121;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}table{border-collapse:collapse;margin:8px 0}
td,th{border-bottom:1px solid #e0e0e0;padding:4px 10px;text-align:left;font-size:13px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.feature{display:inline-block;vertical-align:top;width:370px;margin:0 12px 18px 0}
.feature h3{font-size:14px;margin:4px 0}.muted{color:#757575;font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#757575")
    return f'<span class="badge" style="background:{colour}">{html.escape(status.replace("_", " "))}</span>'


def _bars(section: FeatureSection, width: int = 360, height: int = 170) -> str:
    n = max(1, len(section.labels))
    top = max([*section.reference, *section.current, 0.01])
    plot_h, base = height - 40, height - 28
    group = (width - 20) / n
    bar = max(1.0, group * 0.38)
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{html.escape(section.name)} reference vs current">',
           f'<line x1="10" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#9e9e9e"/>']
    for i, (r, c) in enumerate(zip(section.reference, section.current, strict=False)):
        x = 10 + i * group + group * 0.1
        for j, (value, colour) in enumerate(((r, "#90a4ae"), (c, "#1565c0"))):
            h = plot_h * value / top
            out.append(f'<rect x="{x + j * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                       f'fill="{colour}"><title>{html.escape(section.labels[i])}: '
                       f'{"reference" if j == 0 else "current"} {value:.3f}</title></rect>')
        if n <= 6 or i in (0, n - 1):  # many bins: the two ends say the range
            label = html.escape(section.labels[i][:14])
            anchor = "start" if n > 6 and i == 0 else "end" if n > 6 else "middle"
            lx = 10 if anchor == "start" else width - 10 if anchor == "end" else x + bar
            out.append(f'<text x="{lx:.1f}" y="{height - 14}" font-size="9" text-anchor="{anchor}" '
                       f'fill="#616161">{label}</text>')
    out.append("</svg>")
    return "".join(out)


def _lines(series: list[QualitySeries], metric: str, width: int = 760, height: int = 220) -> str:
    points = [p for s in series for p in s.points]
    if not points:
        return ""
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    lo, hi = min(p[1] for p in points), max(p[1] for p in points)
    if metric in ("accuracy", "f1", "roc_auc"):
        lo, hi = min(lo, 0.0), max(hi, 1.0)
    elif hi <= lo:
        hi = lo + 1

    def xy(t: float, v: float) -> str:
        x = 50 + (width - 70) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.5)
        y = height - 30 - (height - 50) * ((v - lo) / (hi - lo))
        return f"{x:.1f},{y:.1f}"
    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{html.escape(metric)} over time">',
           f'<line x1="50" y1="{height - 30}" x2="{width - 20}" y2="{height - 30}" stroke="#9e9e9e"/>',
           f'<line x1="50" y1="20" x2="50" y2="{height - 30}" stroke="#9e9e9e"/>',
           f'<text x="44" y="24" font-size="10" text-anchor="end">{hi:.2f}</text>',
           f'<text x="44" y="{height - 30}" font-size="10" text-anchor="end">{lo:.2f}</text>',
           f'<text x="50" y="{height - 12}" font-size="10">{_clock(t0)}</text>',
           f'<text x="{width - 20}" y="{height - 12}" font-size="10" text-anchor="end">{_clock(t1)}</text>']
    for k, s in enumerate(series):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        pts = " ".join(xy(t, v) for t, v in s.points)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}">'
                   f'<title>{html.escape(s.version)}</title></polyline>')
    out.append("</svg>")
    legend = "".join(f'<span style="background:{SERIES_COLOURS[k % len(SERIES_COLOURS)]}"></span>'
                     f"{html.escape(s.version)}" for k, s in enumerate(series))
    return "".join(out) + f'<div class="legend muted">{legend}</div>'


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%m-%d %H:%M")


def render(report: Report) -> str:
    esc = html.escape
    counts: dict[str, int] = {}
    for f in report.features:
        counts[f.status] = counts.get(f.status, 0) + 1
    summary = " ".join(f"{_badge(k)} {v}" for k, v in sorted(counts.items()))
    rows = []
    order = {"drift": 0, "warning": 1, "insufficient_data": 2, "ok": 3}
    for f in sorted(report.features, key=lambda f: (order.get(f.status, 4), f.name)):
        main = ", ".join(f"{k} {v:.3f}" for k, v in sorted(f.scores.items()) if k in ("psi", "jensen_shannon",
                                                                                       "wasserstein", "ks_p_value",
                                                                                       "chi2_p_value"))
        dq = ", ".join(f"{k} {v:.0f}" for k, v in sorted(f.quality.items()) if v) or "none"
        rows.append(f"<tr><td>{esc(f.name)}</td><td>{_badge(f.status)}</td><td>{esc(main)}</td>"
                    f"<td>{f.n}</td><td>{esc(dq)}</td></tr>")
    cards = []
    for f in sorted(report.features, key=lambda f: (order.get(f.status, 4), f.name)):
        cards.append(f'<div class="feature"><h3>{esc(f.name)} {_badge(f.status)}</h3>{_bars(f)}'
                     f'<div class="legend muted"><span style="background:#90a4ae"></span>reference'
                     f'<span style="background:#1565c0"></span>current (n={f.n})</div></div>')
    quality_html = []
    for metric in sorted({s.metric for s in report.quality}):
        chart = _lines([s for s in report.quality if s.metric == metric], metric)
        if chart:
            quality_html.append(f"<h3>{esc(metric)}</h3>{chart}")
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    # The check below only reads the page: it counts the charts the browser laid out, for the
    # headless-browser test and anyone who wants to know the page drew.
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(report.title)}</title>
<meta name="generator" content="otel-ml report"><style>{CSS}</style></head>
<body data-charts="{len(cards) + len(quality_html)}">
<h1>{esc(report.title)}</h1>
<p class="muted">Generated {esc(report.generated)} from {esc(report.source)}.</p>
<p>Features: {summary}</p>
{f'<ul class="muted">{notes}</ul>' if notes else ''}
<h2>Drift by feature</h2>
<table><tr><th>feature</th><th>status</th><th>scores</th><th>values</th><th>data quality issues</th></tr>
{''.join(rows)}</table>
<h2>Distributions: reference vs current</h2>
{''.join(cards)}
<h2>Quality over time (delayed labels)</h2>
{''.join(quality_html) or '<p class="muted">No quality scores in this report.</p>'}
<script>
document.body.dataset.drawn = String(Array.from(document.querySelectorAll("svg.chart"))
  .filter(function (s) {{ var b = s.getBBox(); return b.width > 0 && b.height > 0; }}).length);
</script>
</body></html>
"""


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if args.prometheus:
        if args.profile or args.data:
            raise CLIError("give either --profile and --data, or --prometheus with --model")
        if not args.model:
            raise CLIError("--prometheus needs --model")
        try:
            parsed = urllib.parse.urlparse(args.prometheus)
        except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
            parsed = urllib.parse.urlparse("")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CLIError(f"--prometheus {args.prometheus!r}: expected an http(s) URL")
        report = from_prometheus(args.prometheus, args.model, args.range, args.service, args.version)
    else:
        if not (args.profile and args.data):
            raise CLIError("give --profile and --data (a reference profile and the data to check), "
                           "or --prometheus with --model")
        report = from_data(args.profile, args.data, args.prediction)
    try:
        out.write_text(render(report), encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise CLIError(f"{out}: cannot write the report: {exc}") from None
    drifted = [f.name for f in report.features if f.status == "drift"]
    print(f"wrote {out}: {len(report.features)} features, {len(drifted)} drifting"
          + (f" ({', '.join(drifted[:8])}{', ...' if len(drifted) > 8 else ''})" if drifted else "")
          + (f", {len({s.version for s in report.quality})} version(s) with quality scores" if report.quality else ""))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="self-contained HTML drift and quality report (profile + data, or "
                                             "Prometheus)")
    p.add_argument("-o", "--output", required=True, help="the HTML file to write")
    p.add_argument("--profile", help="reference profile JSON (otel-ml profile)")
    p.add_argument("--data", help="the data to check: .csv or .parquet")
    p.add_argument("--prediction", help="prediction column of --data (profiled as __prediction__)")
    p.add_argument("--prometheus", help="read from Prometheus instead (URL)")
    p.add_argument("--model", help="ml.model.name (with --prometheus)")
    p.add_argument("--service", help="service.name (with --prometheus)")
    p.add_argument("--version", help="only this ml.model.version (with --prometheus; default: all)")
    p.add_argument("--range", default="24h", help="time range ending now (with --prometheus; default 24h)")
    p.set_defaults(handler=run)
