"""What every otel_ml dashboard shares: datasource variables, selectors, panel and query helpers.

Conventions (kubernetes-mixin style): every panel and every query reads its datasource from a
variable (``$datasource`` for Prometheus, ``$loki`` for Loki), so one JSON works against any
Prometheus/Loki a user provisions; every selector filters by ``$service`` and, where the metric
carries model attributes, ``$model`` and ``$version``; rates use ``$__rate_interval`` so a panel
never asks for a window shorter than four scrapes. Multi-value variables send "All" as a regex
(``allValue``) rather than every value listed: ``.*`` for model and version, so All also keeps
log lines outside an inference (no model metadata); ``.+`` for the service, because Loki refuses a
stream selector that could match the empty string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from grafana_foundation_sdk.builders import common as gc
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import heatmap as gh
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as mc
from grafana_foundation_sdk.models import dashboard as md
from grafana_foundation_sdk.models import heatmap as mh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

TAG = "otel-ml"

PROMETHEUS = md.DataSourceRef(type_val="prometheus", uid="${datasource}")
LOKI = md.DataSourceRef(type_val="loki", uid="${loki}")

SERVICE = 'service_name=~"$service"'
MODEL = 'ml_model_name=~"$model"'
VERSION = 'ml_model_version=~"$version"'
RATE = "$__rate_interval"

# The model attributes every otel_ml metric carries; panels aggregate "per model and version".
BY_MODEL = ("ml_model_name", "ml_model_version")
MODEL_LEGEND = "{{ml_model_name}} {{ml_model_version}}"

# Drift status gauge values (ml.drift.status) and their colours.
DRIFT_STATUS_MAPPINGS: list[md.ValueMapping] = [
    md.ValueMap(options={
        "-1": md.ValueMappingResult(text="insufficient data", color="text", index=0),
        "0": md.ValueMappingResult(text="ok", color="green", index=1),
        "1": md.ValueMappingResult(text="warning", color="orange", index=2),
        "2": md.ValueMappingResult(text="drift", color="red", index=3),
    }),
]


def drift_status_cells() -> list[md.DynamicConfigValue]:
    """Field overrides that show a drift-status column as coloured words.

    Applied to that column only: a table-wide mapping would also turn a model version "2" into "drift".
    """
    return [md.DynamicConfigValue(id_val="mappings", value=[m.to_json() for m in DRIFT_STATUS_MAPPINGS]),
            md.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})]


def selector(metric: str, *matchers: str) -> str:
    """``metric{matchers}``; the matchers come first as given, so callers put the scope first."""
    return f"{metric}{{{', '.join(matchers)}}}"


def by(labels: Iterable[str]) -> str:
    return ", ".join(labels)


def rate(sel: str, fn: str = "rate", window: str = RATE) -> str:
    return f"{fn}({sel}[{window}])"


def sum_by(labels: Sequence[str], expr: str) -> str:
    return f"sum by ({by(labels)}) ({expr})" if labels else f"sum({expr})"


def quantile(q: float, bucket_sel: str, labels: Sequence[str] = ()) -> str:
    """``q``-quantile of a histogram from its ``_bucket`` series, per ``labels``."""
    return f"histogram_quantile({q}, {sum_by(('le', *labels), rate(bucket_sel))})"


def ratio_or_zero(num: str, den: str) -> str:
    """``num / den`` that reads 0 rather than "no data" while ``num`` has no series yet.

    Errors and matched outcomes are counted only once they happen; without the fallback an error
    ratio panel is empty exactly when things are fine. ``den * 0`` keeps ``den``'s labels.
    """
    return f"({num} or {den} * 0) / {den}"


def matched(labels: tuple[str, ...], outcomes: str) -> str:
    """Outcomes whose predicted class equals the actual one, summed by ``labels``.

    PromQL cannot compare two labels of one series, so each side copies one of them into a new
    label ``ml_class``; ``and`` matches on every label, so a series {predicted=p, actual=a} finds
    itself on the other side only when p == a. Two classes, counts (p, a): (x, x)=3 (x, y)=1
    (y, x)=2 (y, y)=4 -> kept (x, x) and (y, y) -> 7 of 10 correct. The same expression as the
    accuracy recording rules in alerts/model.rules.yml.
    """
    predicted = f'label_replace({outcomes}, "ml_class", "$1", "ml_prediction_class", "(.*)")'
    actual = f'label_replace({outcomes}, "ml_class", "$1", "ml_outcome_class", "(.*)")'
    return sum_by(labels, f"{predicted} and {actual}")


def threshold_steps(*steps: tuple[float | None, str]) -> gd.ThresholdsConfig:
    return (gd.ThresholdsConfig().mode(md.ThresholdsMode.ABSOLUTE)
            .steps([md.Threshold(value=v, color=c) for v, c in steps]))


# --- variables --------------------------------------------------------------------------

def datasource_variable() -> gd.DatasourceVariable:
    return gd.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def loki_variable() -> gd.DatasourceVariable:
    return gd.DatasourceVariable("loki").label("Loki").type("loki")


def query_variable(name: str, label: str, query: str, *, multi: bool = True, all_value: str = ".*",
                   regex: str = "", description: str = "") -> gd.QueryVariable:
    """A Prometheus query variable; multi-value ones include All, sent as ``all_value``."""
    var = (gd.QueryVariable(name).label(label).datasource(PROMETHEUS).query(query)
           .refresh(md.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(md.VariableSort.ALPHABETICAL_ASC)
           .multi(multi).include_all(multi))
    if multi:
        var = var.all_value(all_value)
    if regex:
        var = var.regex(regex)
    if description:
        var = var.description(description)
    return var


def scope_variables(source: str) -> list[gd.QueryVariable]:
    """``$service``, ``$model``, ``$version``, each narrowed by the ones before it.

    ``source`` is a series selector body (``__name__=~"..."``) naming the metrics whose presence
    makes a service, model or version show up in the dropdowns.
    """
    return [
        query_variable("service", "Service", f"label_values({{{source}}}, service_name)", all_value=".+"),
        query_variable("model", "Model", f"label_values({{{source}, {SERVICE}}}, ml_model_name)"),
        query_variable("version", "Version",
                       f"label_values({{{source}, {SERVICE}, {MODEL}}}, ml_model_version)"),
    ]


def names_matcher(*metrics: str) -> str:
    return f'__name__=~"{"|".join(metrics)}"'


def dashboard(uid: str, title: str, description: str, tags: Sequence[str],
              variables: Sequence[Builder[md.VariableModel]]) -> gd.Dashboard:
    """A dashboard with the fixed UID and the links that jump to its siblings with the same scope.

    The link lists every dashboard tagged ``otel-ml`` and carries the time range and every variable
    (``includeVars``): ``$service``, ``$model`` and ``$version`` mean the same on all five.
    """
    board = (gd.Dashboard(title).uid(uid).description(description).tags([TAG, *tags])
             .editable().tooltip(md.DashboardCursorSync.CROSSHAIR)
             .time("now-1h", "now").refresh("30s").timezone("browser")
             .link(gd.DashboardLink("otel_ml dashboards").type(md.DashboardLinkType.DASHBOARDS)
                   .tags([TAG]).as_dropdown(False).include_vars(True).keep_time(True)
                   .icon("external link").tooltip("").target_blank(False)))
    for var in variables:
        board = board.with_variable(var)
    return board


def section(board: gd.Dashboard, title: str, panels: Sequence[Builder[md.Panel]]) -> gd.Dashboard:
    """A row and its panels, laid out left to right; each line of panels should fill 24 columns."""
    board = board.with_row(gd.Row(title))
    for panel in panels:
        board = board.with_panel(panel)
    return board


# --- queries and panels -----------------------------------------------------------------

def prom(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False,
         heatmap: bool = False, exemplar: bool = False) -> prometheus.Dataquery:
    """A Prometheus target. ``exemplar`` on one target per panel: Grafana fetches exemplars for
    every selector of every target that asks, so quantiles of one histogram would repeat each dot."""
    q = (prometheus.Dataquery().expr(expr).ref_id(ref).datasource(PROMETHEUS)
         .legend_format(legend or "__auto").editor_mode(QueryEditorMode.CODE))
    q = q.instant() if instant else q.range()
    if table:
        q = q.format(PromQueryFormat.TABLE)
    elif heatmap:
        q = q.format(PromQueryFormat.HEATMAP)
    if exemplar:
        q = q.exemplar(True)
    return q


def refs(targets: Sequence[prometheus.Dataquery]) -> list[Builder[Dataquery]]:
    """Give each target its own refId (A, B, ...), the order they were listed in."""
    return [t.ref_id(chr(ord("A") + i)) for i, t in enumerate(targets)]


def ts(title: str, description: str, unit: str, targets: Sequence[prometheus.Dataquery], *,
       w: int = 12, h: int = 8, min_val: float | None = None, max_val: float | None = None,
       stack_percent: bool = False, thresholds: gd.ThresholdsConfig | None = None) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(PROMETHEUS)
             .targets(refs(targets)).unit(unit).span(w).height(h)
             .line_width(1).fill_opacity(10).show_points(mc.VisibilityMode.NEVER)
             .legend(gc.VizLegendOptions().display_mode(mc.LegendDisplayMode.LIST)
                     .placement(mc.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(gc.VizTooltipOptions().mode(mc.TooltipDisplayMode.MULTI).sort(mc.SortOrder.DESCENDING)))
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    if stack_percent:
        panel = panel.stacking(gc.StackingConfig().mode(mc.StackingMode.NORMAL)).fill_opacity(60)
    if thresholds is not None:
        panel = (panel.thresholds(thresholds)
                 .thresholds_style(gc.GraphThresholdsStyleConfig().mode(mc.GraphThresholdsStyleMode.DASHED)))
    return panel


def single_stat(title: str, description: str, unit: str, expr: str, *, w: int = 6, h: int = 4,
                thresholds: gd.ThresholdsConfig | None = None, decimals: int | None = None,
                instant: bool = False) -> stat.Panel:
    """A big number; ``instant`` for values over the whole time range (``[$__range]``)."""
    panel = (stat.Panel().title(title).description(description).datasource(PROMETHEUS)
             .targets(refs([prom(expr, instant=instant)])).unit(unit).span(w).height(h)
             .graph_mode(mc.BigValueGraphMode.NONE if instant else mc.BigValueGraphMode.AREA)
             .color_mode(mc.BigValueColorMode.VALUE)
             .reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    panel = panel.thresholds(thresholds or threshold_steps((None, "green")))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def bucket_heatmap(title: str, description: str, bucket_sel: str, unit: str, scheme: str, *,
                   w: int = 12, h: int = 8) -> heatmap.Panel:
    """Observations per histogram bucket over time, straight from the ``_bucket`` series."""
    return (heatmap.Panel().title(title).description(description).datasource(PROMETHEUS).span(w).height(h)
            .targets(refs([prom(sum_by(("le",), rate(bucket_sel, "increase")), "{{le}}", heatmap=True)]))
            .calculate(False).cell_gap(1).show_legend()
            .color(gh.HeatmapColorOptions().mode(mh.HeatmapColorMode.SCHEME).scheme(scheme)
                   .scale(mh.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64))
            .y_axis(gh.YAxisConfig().unit(unit)).mode(mc.TooltipDisplayMode.SINGLE).show_y_histogram())


def transformation(kind: str, options: dict[str, object] | None = None) -> md.DataTransformerConfig:
    return md.DataTransformerConfig(id_val=kind, options=options or {})


def hide_time_and_rename(renames: dict[str, str]) -> md.DataTransformerConfig:
    """Tables of instant queries: drop the Time column, name the value columns."""
    return transformation("organize", {"excludeByName": {"Time": True}, "renameByName": renames})


# --- output -----------------------------------------------------------------------------

def render(board: gd.Dashboard) -> str:
    """The dashboard's JSON as committed: stable panel ids (1, 2, ... in layout order), sorted keys.

    Grafana would number panels itself, but links to one panel (``viewPanel=``) need ids that do
    not change when the file is regenerated. The JSON goes once through the SDK's typed models
    (which fill in the defaults of each panel's field config), so the committed file is a fixed
    point of that round trip - which is what tests/dashboards checks of every file.
    """
    model = board.build()
    for i, panel in enumerate(model.panels or [], start=1):
        panel.id_val = i
    register_default_plugins()
    typed = md.Dashboard.from_json(json.loads(JSONEncoder().encode(model)))
    return JSONEncoder(sort_keys=True, indent=2).encode(typed) + "\n"
