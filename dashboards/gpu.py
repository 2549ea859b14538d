"""GPUs: utilisation per device and task, memory, power, temperature, energy, errors, status, and
energy per inference per model (hardware semantic conventions, ``hw.*``)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, table
from grafana_foundation_sdk.builders import common as gc
from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.models import common as mc
from grafana_foundation_sdk.models import dashboard as md

from dashboards.common import (
    BY_MODEL,
    MODEL,
    MODEL_LEGEND,
    PROMETHEUS,
    SERVICE,
    VERSION,
    by,
    dashboard,
    datasource_variable,
    hide_time_and_rename,
    names_matcher,
    prom,
    query_variable,
    rate,
    refs,
    scope_variables,
    section,
    selector,
    single_stat,
    sum_by,
    threshold_steps,
    ts,
)

UID = "otel-ml-gpu"
TITLE = "otel_ml / GPU"

# hw.* metrics describe devices, not models: they follow $service and $gpu only. Device-level
# values (utilisation, memory, power) are reported by every process that watches the device, so
# panels take the max per device rather than summing duplicates.
GPU = 'hw_id=~"$gpu"'
DEVICE = (SERVICE, GPU)
# hw.power, hw.energy, hw.temperature, hw.errors and hw.status are shared with other hardware
# (hw.type = cpu, fan, ...); hw.gpu.* are GPU-only.
HW_GPU = (SERVICE, GPU, 'hw_type="gpu"')
BY_DEVICE = ("hw_id", "hw_name")
DEVICE_LEGEND = "{{hw_name}} {{hw_id}}"
PERCENT = threshold_steps((None, "green"), (0.8, "orange"), (0.95, "red"))


def per_device(expr: str, extra: tuple[str, ...] = ()) -> str:
    return f"max by ({by((*BY_DEVICE, *extra))}) ({expr})"


def _memory_utilisation() -> bargauge.Panel:
    return (bargauge.Panel().title("Memory utilisation by device")
            .description("hw.gpu.memory.utilization: the fraction of memory in use (usage / limit).")
            .datasource(PROMETHEUS).span(12).height(8)
            .targets(refs([prom(per_device(selector("hw_gpu_memory_utilization_ratio", *DEVICE)), DEVICE_LEGEND)]))
            .unit("percentunit").min(0).max(1).thresholds(PERCENT)
            .display_mode(mc.BarGaugeDisplayMode.GRADIENT).orientation(mc.VizOrientation.HORIZONTAL)
            .reduce_options(gc.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def _status() -> table.Panel:
    state_colours = md.ValueMap(options={
        "ok": md.ValueMappingResult(color="green", index=0),
        "degraded": md.ValueMappingResult(color="orange", index=1),
        "failed": md.ValueMappingResult(color="red", index=2)})
    return (table.Panel().title("Status by device")
            .description("hw.status: the device's current state (ok, degraded, failed) and where it is reported.")
            .datasource(PROMETHEUS).span(12).height(8)
            # hw.status is 1 for the state the device is in and 0 for the others.
            .targets(refs([prom(f"{per_device(selector('hw_status', *HW_GPU), ('hw_state', 'service_name'))} == 1",
                                instant=True, table=True)]))
            .with_transformation(hide_time_and_rename({"Value": "current", "hw_state": "state", "hw_name": "device",
                                                       "hw_id": "id", "service_name": "service"}))
            .override_by_name("state", [
                md.DynamicConfigValue(id_val="mappings", value=[state_colours.to_json()]),
                md.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})])
            .override_by_name("current", [md.DynamicConfigValue(id_val="custom.hidden", value=True)]))


def build() -> gd.Dashboard:
    device_source = names_matcher("hw_gpu_utilization_ratio", "hw_gpu_memory_limit_bytes")
    board = dashboard(
        UID, TITLE,
        "GPU devices behind the model services (hw.gpu.* and hw.* semantic conventions) and the energy "
        "each model's inferences cost.", ["gpu"],
        [datasource_variable(),
         *scope_variables(names_matcher("hw_gpu_memory_limit_bytes", "ml_inference_duration_seconds_count")),
         query_variable("gpu", "GPU", f"label_values({{{device_source}, {SERVICE}}}, hw_id)",
                        description="hw.id of the devices to show.")])

    util = selector("hw_gpu_utilization_ratio", *DEVICE)
    used = selector("hw_gpu_memory_usage_bytes", *DEVICE)
    limit = selector("hw_gpu_memory_limit_bytes", *DEVICE)
    power = selector("hw_power_watts", *HW_GPU)
    energy = selector("ml_inference_energy_joules_sum", SERVICE, MODEL, VERSION)
    inferences = selector("ml_inference_energy_joules_count", SERVICE, MODEL, VERSION)
    board = section(board, "Now", [
        single_stat("GPUs", "Devices reporting a memory limit.", "short", f"count({per_device(limit)})"),
        single_stat("Mean utilisation", "Mean of the devices' utilisation (all tasks).", "percentunit",
                    f"avg({per_device(util)})", thresholds=PERCENT),
        single_stat("Memory used", "Memory used over memory available, all devices.", "percentunit",
                    f"sum({per_device(used)}) / sum({per_device(limit)})", thresholds=PERCENT),
        single_stat("Power", "Power drawn by all devices now.", "watt", f"sum({per_device(power)})"),
    ])
    board = section(board, "Utilisation and memory", [
        ts("Utilisation by device and task",
           "hw.gpu.utilization (0-1) by `hw.gpu.task` (general, encoder, decoder, ...).", "percentunit",
           [prom(per_device(util, ("hw_gpu_task",)), DEVICE_LEGEND + " {{hw_gpu_task}}")],
           min_val=0, max_val=1, thresholds=PERCENT),
        ts("Memory used and limit", "hw.gpu.memory.usage and hw.gpu.memory.limit per device.", "bytes",
           [prom(per_device(used), "used " + DEVICE_LEGEND), prom(per_device(limit), "limit " + DEVICE_LEGEND)],
           min_val=0).override_by_regexp("^limit .*", [
               md.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
               md.DynamicConfigValue(id_val="custom.fillOpacity", value=0)]),
        _memory_utilisation(),
        _status(),
    ])
    return section(board, "Power, heat, errors and energy", [
        ts("Power by device", "hw.power per device.", "watt", [prom(per_device(power), DEVICE_LEGEND)],
           w=8, min_val=0),
        ts("Energy rate", "Rate of the hw.energy counter: the average power over each interval, which includes "
           "what instant power readings miss between scrapes.", "watt",
           [prom(per_device(rate(selector("hw_energy_joules_total", *HW_GPU))), DEVICE_LEGEND)], w=8, min_val=0),
        ts("Temperature", "hw.temperature per device.", "celsius",
           [prom(per_device(selector("hw_temperature_celsius", *HW_GPU)), DEVICE_LEGEND)], w=8,
           thresholds=threshold_steps((None, "green"), (80, "orange"), (90, "red"))),
        ts("Errors", "hw.errors per interval by device and `error.type` (e.g. ECC errors).", "short",
           [prom(per_device(rate(selector("hw_errors_total", *HW_GPU), "increase"), ("error_type",)),
                 DEVICE_LEGEND + " {{error_type}}")], min_val=0),
        ts("Energy per inference by model",
           "Mean energy (J) of one inference call, per model and version (ml.inference.energy).", "joule",
           [prom(f"{sum_by(BY_MODEL, rate(energy))} / {sum_by(BY_MODEL, rate(inferences))}", MODEL_LEGEND)],
           min_val=0),
    ])
