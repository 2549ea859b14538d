"""Every panel query of the committed dashboards, ready to run against a real Prometheus or Loki.

Reads ``dashboards/*.json`` (what Grafana loads), not the builders, and needs nothing beyond the
standard library::

    from dashboards.queries import all_queries

    for q in all_queries():
        expr = q.render({"service": ["classifier-service"], "model": ["breast-cancer-classifier"],
                         "version": ALL, "feature": "mean_radius"})
        # q.datasource is "prometheus" or "loki"; q.instant says which API (query / query_range)

How :meth:`Query.render` substitutes variables, the way Grafana does for these dashboards:

* ``$__rate_interval`` -> ``rate_interval`` (default ``1m``; Grafana uses max(4 x scrape interval,
  step + scrape interval)); ``$__interval`` -> ``interval`` (the step, default ``15s``);
  ``$__range`` -> ``range`` (the dashboard's time range, default ``1h``).
* A multi-value / include-All variable (``$service``, ``$model``, ``$version``, ...) always sits in
  a regex matcher (``=~"$model"``): a list of values becomes ``(a|b)`` with regex metacharacters
  escaped, one value becomes that value escaped, and :data:`ALL` becomes the variable's
  ``allValue`` from the JSON (``.*``, or ``.+`` for ``$service``).
* A single-value variable (``$feature``, ``$model`` on the A/B dashboard, ``$baseline``,
  ``$candidate``) is substituted as is. ``$baseline`` / ``$candidate`` are arms,
  ``<version>/<variant>`` with ``main`` for the unlabelled variant, e.g. ``2026.11.1/main``.
* ``$1`` (a label_replace capture reference) is not a variable and stays.

:func:`all_variables` lists each dashboard's variables (Prometheus ``label_values(...)`` /
``query_result(...)`` queries included) for tests that want real values to substitute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

HERE = Path(__file__).resolve().parent

ALL = "$__all"
"""Pass as a variable's value to select All."""

Value = str | Sequence[str]

_VAR = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_BUILTINS = {"__rate_interval": "rate_interval", "__interval": "interval", "__range": "range"}
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class Variable:
    """One templating variable of a dashboard."""

    name: str
    type: str  # datasource | query | custom | ...
    query: str  # the Prometheus variable query, or the datasource type
    multi: bool
    include_all: bool
    all_value: str | None
    regex: str

    @property
    def takes_regex(self) -> bool:
        """Whether Grafana writes this variable's value as a regex (multi-value or All)."""
        return self.multi or self.include_all


@dataclass(frozen=True)
class Query:
    """One target of one panel, with the variables of its dashboard."""

    dashboard_uid: str
    dashboard_title: str
    panel_title: str
    ref_id: str
    datasource: Literal["prometheus", "loki"]
    expr: str
    instant: bool
    legend: str
    variables: Mapping[str, Variable] = field(repr=False)

    @property
    def metrics(self) -> frozenset[str]:
        """Prometheus metric (or recording rule) names the expression reads; empty for Loki."""
        return frozenset(metric_names(self.expr)) if self.datasource == "prometheus" else frozenset()

    def render(self, values: Mapping[str, Value], *, rate_interval: str = "1m", interval: str = "15s",
               range: str = "1h") -> str:
        """The expression with every variable substituted (see the module docstring).

        Raises KeyError naming a dashboard variable the expression uses but ``values`` lacks.
        """
        builtins = {"rate_interval": rate_interval, "interval": interval, "range": range}

        def sub(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            if name in _BUILTINS:
                return builtins[_BUILTINS[name]]
            var = self.variables.get(name)
            if var is None:
                return m.group(0)  # not a variable: label_replace's $1, or text
            if name not in values:
                raise KeyError(f"{self.dashboard_uid} / {self.panel_title}: no value for ${name}")
            return _format(var, values[name])

        return _VAR.sub(sub, self.expr)


def _format(var: Variable, value: Value) -> str:
    if value == ALL:
        if not var.include_all:
            raise ValueError(f"${var.name} has no All option")
        return var.all_value or ".*"
    values = [value] if isinstance(value, str) else list(value)
    if not var.takes_regex:
        if len(values) != 1:
            raise ValueError(f"${var.name} takes one value, got {values!r}")
        return values[0]
    escaped = [_REGEX_META.sub(r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def dashboard_files() -> list[Path]:
    return sorted(HERE.glob("*.json"))


# Dashboard JSON is loosely typed by nature; Any stays inside these loaders.
Json = dict[str, Any]


def _variables(board: Json) -> dict[str, Variable]:
    out = {}
    for v in board.get("templating", {}).get("list", []):
        query = v.get("query", "")
        if isinstance(query, dict):
            query = query.get("query", "")
        out[v["name"]] = Variable(name=v["name"], type=v["type"], query=str(query), multi=bool(v.get("multi")),
                                  include_all=bool(v.get("includeAll")), all_value=v.get("allValue"),
                                  regex=v.get("regex", ""))
    return out


def _panels(panels: list[Json]) -> list[Json]:
    out: list[Json] = []
    for p in panels:
        out.append(p)
        nested = p.get("panels")  # collapsed rows hold their panels
        if isinstance(nested, list):
            out.extend(_panels(nested))
    return out


def _load(path: Path) -> Json:
    return cast(Json, json.loads(path.read_text()))


def all_variables() -> dict[str, dict[str, Variable]]:
    """Dashboard UID -> its variables by name."""
    return {str(b["uid"]): _variables(b) for b in map(_load, dashboard_files())}


def all_queries() -> list[Query]:
    """Every query of every panel of every committed dashboard, in layout order."""
    out = []
    for path in dashboard_files():
        board = _load(path)
        variables = _variables(board)
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets") or []:
                ds = (target.get("datasource") or panel.get("datasource") or {}).get("type")
                if ds not in ("prometheus", "loki"):
                    raise ValueError(f"{path.name} / {panel.get('title')}: datasource type {ds!r}")
                out.append(Query(
                    dashboard_uid=str(board["uid"]), dashboard_title=str(board["title"]),
                    panel_title=str(panel.get("title", "")), ref_id=str(target.get("refId", "")),
                    datasource=ds, expr=str(target["expr"]), instant=bool(target.get("instant")),
                    legend=str(target.get("legendFormat", "")), variables=variables))
    return out


# --- PromQL names ------------------------------------------------------------------------

AGGREGATIONS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
})
FUNCTIONS = frozenset({
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "double_exponential_smoothing",
    "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
    "max_over_time", "min_over_time", "minute", "month", "predict_linear", "present_over_time",
    "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort",
    "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
    # Grafana's variable-query functions
    "label_values", "label_names", "metrics", "query_result",
})
KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "atan2", "start", "end", "inf", "nan",
})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(\s*\()?")


def _strip(expr: str) -> str:
    """The expression without strings, matchers, range selectors and grouping label lists."""
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    return _GROUPING.sub(r" \1 ", expr)


def metric_names(expr: str) -> list[str]:
    """Metric and recording-rule names a PromQL expression reads, in order of appearance.

    A small tokenizer, enough for dashboards: an identifier followed by ``(`` must be a known
    function or aggregation (ValueError otherwise, which catches typos), any other identifier that
    is not a keyword is a metric name.
    """
    names = []
    for m in _IDENT.finditer(_strip(expr)):
        word, call = m.group(1), m.group(2)
        if word.lower() in KEYWORDS:
            continue
        if call:
            if word not in FUNCTIONS and word not in AGGREGATIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
        elif word not in AGGREGATIONS:
            names.append(word)
    return names


def label_names(expr: str) -> set[str]:
    """Label names used in matchers and grouping clauses (not those label_replace writes)."""
    no_strings = _STRING.sub('""', expr)
    labels = set()
    for body in re.findall(r"\{([^}]*)\}", no_strings):
        labels.update(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", body))
    for _, group in _GROUPING.findall(no_strings):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    return labels


def selectors(expr: str) -> list[tuple[str, list[str]]]:
    """``(metric, [matchers...])`` for every ``metric{...}`` selector, matchers as written."""
    out = []
    for m in re.finditer(r"([a-zA-Z_:][\w:]*)\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}", expr):
        matchers = re.findall(r'[a-zA-Z_]\w*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"', m.group(2))
        out.append((m.group(1), [re.sub(r"\s+", "", x) for x in matchers]))
    return out
