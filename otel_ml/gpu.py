"""GPU metrics (OpenTelemetry hardware semantic conventions) and energy per inference, from NVML.

Install and enable::

    pip install 'otel-ml[gpu]'                 # nvidia-ml-py, which provides the pynvml module

    otel_ml.configure(service_name="llm-api", gpu=True)   # or OTEL_ML_GPU=true
    # or, on a meter provider of your own:
    import otel_ml.gpu
    otel_ml.gpu.enable(meter_provider)         # True when at least one GPU is monitored

``enable(meter_provider=None, *, nvml=None, devices=None, energy=None)``: ``meter_provider``
defaults to the global one; ``nvml`` is the NVML module (``pynvml`` when None; tests pass a fake
with recorded values); ``devices`` limits monitoring to NVML indices, UUIDs (``GPU-...``) or PCI
bus ids (default: every GPU NVML sees); ``energy`` installs the energy meter below (default on;
``OTEL_ML_GPU_ENERGY=false`` turns it off). Calling it again for the same provider does nothing.
``disable(meter_provider=None)`` stops reporting (on every provider when None), removes the energy
meter and releases NVML. ``enabled(meter_provider=None)`` tells whether metrics are exported.

Nothing is read in the background: NVML is asked when a metric reader collects (one set of calls
per collection, shared by all instruments).

What is exported (scope ``otel_ml.gpu``), per device, with ``hw.id`` (the GPU's UUID, else its
PCI bus id), ``hw.name`` (``gpu0``, ``gpu1``, ... by NVML index), ``hw.type="gpu"``,
``hw.vendor="NVIDIA"``, ``hw.model`` (e.g. ``NVIDIA H100 80GB HBM3``) and ``hw.driver_version``
on every point:

===================================  ===============  =======  ==========================================
instrument (Prometheus name)         kind             unit     extra attribute / meaning
===================================  ===============  =======  ==========================================
``hw.gpu.utilization``               gauge            1        ``hw.gpu.task``: ``general`` (kernels
(hw_gpu_utilization_ratio)                                     running), ``encoder``, ``decoder``,
                                                               ``memory_controller`` (device memory
                                                               read or written); 0-1
``hw.gpu.memory.usage``              up-down counter  By       memory used
(hw_gpu_memory_usage_bytes)
``hw.gpu.memory.limit``              up-down counter  By       memory size
(hw_gpu_memory_limit_bytes)
``hw.gpu.memory.utilization``        gauge            1        usage / limit
(hw_gpu_memory_utilization_ratio)
``hw.power`` (hw_power_watts)        gauge            W        power drawn now
``hw.energy``                        counter          J        energy since the driver loaded
(hw_energy_joules_total)
``hw.temperature``                   gauge            Cel      core temperature
(hw_temperature_celsius)
``hw.errors`` (hw_errors_total)      counter          {error}  ``error.type``: ``corrected`` |
                                                               ``uncorrected`` (volatile ECC counts)
``hw.status`` (hw_status)            up-down counter  1        ``hw.state``: 1 for the current state
                                                               (ok | degraded | failed), 0 for the others
``process.gpu.memory.usage``         up-down counter  By       memory this process uses on the device
(process_gpu_memory_usage_bytes)
===================================  ===============  =======  ==========================================

``hw.gpu.memory.utilization`` is, as the semantic conventions define it, the fraction of memory
used; how busy the memory controller is (NVML's "memory utilization") is
``hw.gpu.utilization{hw.gpu.task="memory_controller"}``. ``process.gpu.memory.usage`` has no
semantic convention yet; the name mirrors ``hw.gpu.memory.usage`` in the ``process.*`` namespace,
where ``process.memory.usage`` lives. It is absent when NVML does not list this process on the
device: no CUDA context there, or a container whose PID namespace hides the host PID NVML reports.

``hw.status`` comes from what NVML tells about health: ``failed`` when the GPU is lost or needs a
reset, or row remapping failed; ``degraded`` when a row remap or page retirement is pending,
uncorrected ECC errors happened since the driver loaded, or clocks are slowed for a hardware or
thermal reason (not for the power cap, which is normal under load); ``ok`` otherwise. XID events
are not read.

Absent, never zero: without the pynvml module, when ``nvmlInit()`` fails (no driver, no GPU) or
no device matches, ``enable()`` returns False, logs one line and counts ``otel_ml.dropped`` with
``otel_ml.reason="gpu_unavailable"``; no instrument reports anything. A read a device does not
support (say, encoder utilization on an A10) is skipped for good and counted once
(``gpu_not_supported``); a read that fails is skipped that time (``gpu_read_error``); a value that
cannot be right (a ratio over 100 %, a negative size, None) is skipped (``gpu_invalid_value``).
Nothing NVML does raises into your code.

Energy per inference and per output token. With energy on, every ``monitor.inference()`` and
``monitor.generation()`` records the joules it is attributed in ``ml.inference.energy`` /
``ml.generation.energy`` (histograms, J: ``ml_inference_energy_joules_{bucket,sum,count}``,
``ml_generation_energy_joules_*``) and ``ml.generation.energy.per_token``
(``ml_generation_energy_per_token_joules_*``), per model and version. The meter reads NVML's
total-energy counters (Volta or newer) of the devices this process runs on (every monitored
device until NVML lists the process on one) when a call starts and when it ends. Calls that
overlap share: between two consecutive call starts or ends, the energy the devices consumed is
divided equally among the calls running then, so the calls' joules add up to the energy consumed
while they ran, never more (a per-call "counter at end minus counter at start" would count the
same joules once per overlapping call). A call whose reading fails records nothing. The cost is
one NVML read per device and a lock at each start and stop; otel_ml's own part measured about
1.5 µs per call (start + stop, one device, NVML faked) on a 2-core CI machine. Limits: the
counters belong to the device, so energy that another process spends on the same GPU while this
one's calls run is charged to them; the counters advance in steps of tens of milliseconds, so a
single short call may get 0 J and the next a whole step, while sums and averages over many calls
(``rate(..._sum) / rate(..._count)``) are right.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.metrics import MeterProvider

from otel_ml._internal.gpu import control

__all__ = ["disable", "enable", "enabled"]


def enable(meter_provider: MeterProvider | None = None, *, nvml: object | None = None,
           devices: Sequence[int | str] | None = None, energy: bool | None = None) -> bool:
    """Export GPU metrics on ``meter_provider`` (the global one when None); True when a GPU is monitored.

    Never raises for NVML's sake: no library, no driver or no GPU gives False, one log line and a
    ``gpu_unavailable`` count. Raises ValueError for a malformed ``devices`` or ``energy``.
    """
    return control.start(meter_provider, nvml=nvml, devices=devices, energy=energy) is not None


def disable(meter_provider: MeterProvider | None = None) -> None:
    """Stop exporting GPU metrics on ``meter_provider`` (on every provider when None) and release NVML."""
    control.stop(meter_provider)


def enabled(meter_provider: MeterProvider | None = None) -> bool:
    """Whether GPU metrics are exported on ``meter_provider`` (on any provider when None)."""
    return control.enabled(meter_provider)
