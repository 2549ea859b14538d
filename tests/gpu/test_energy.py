"""Energy per inference and per output token from NVML's energy counters: joules per call through a
real ModelMonitor, overlapping calls shared (never double-counted), failed readings recorded as nothing."""

from __future__ import annotations

import gc
import random
import threading

import pytest

import otel_ml.gpu
from otel_ml._internal import energy
from otel_ml._internal.gpu.energy import NvmlEnergyMeter
from otel_ml._internal.gpu.nvml import Device
from otel_ml._internal.monitor import ModelMonitor
from otel_ml._internal.selftelemetry import SelfTelemetry
from otel_ml.testing import TelemetryCapture
from tests.gpu.fake_nvml import FakeNvml, NVMLError_NotSupported, NVMLError_Unknown, Returns
from tests.gpu.helpers import start


def _meter() -> NvmlEnergyMeter:
    meter = energy.CURRENT.meter
    assert isinstance(meter, NvmlEnergyMeter)
    return meter


def _energy(cap: TelemetryCapture, name: str, version: str) -> tuple[float, int]:
    point = cap.histogram("ml.inference.energy", **{"ml.model.name": name, "ml.model.version": version})
    return point.sum, point.count


def test_energy_per_inference_per_model_and_version(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """One call at a time: each inference gets the counters' growth over its run, in J, per model and version."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    v1, v2 = cap.monitor("fraud", version="1"), cap.monitor("fraud", version="2")
    h100, a10 = nvml.devices
    with v1.inference() as inf:
        h100.energy_mj += 1_500  # 1.5 J on the H100
        a10.energy_mj += 250  # and 0.25 J on the A10, both in use (no collection has shown otherwise)
        inf.record(predictions="ok", confidence=0.9)
    h100.energy_mj += 10_000  # between calls: nobody's
    with v2.inference() as inf:
        h100.energy_mj += 3_000
        inf.record(predictions="ok", confidence=0.9)
    assert _energy(cap, "fraud", "1") == (pytest.approx(1.75), 1)
    assert _energy(cap, "fraud", "2") == (pytest.approx(3.0), 1)


def test_overlapping_calls_from_two_threads_share_not_double_count(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """A runs alone, then with B, then B alone: the shared interval is split, and the calls' joules add up
    to the counter's growth (a per-call delta would give 3 J each, 6 J for 4 J consumed)."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=[0])
    a, b = cap.monitor("ranker", version="1"), cap.monitor("ranker", version="2")
    h100 = nvml.devices[0]
    before = h100.energy_mj
    entered = {m: threading.Event() for m in ("a", "b")}
    release = {m: threading.Event() for m in ("a", "b")}

    def call(monitor: ModelMonitor, key: str) -> None:
        with monitor.inference() as inf:
            entered[key].set()
            assert release[key].wait(10)
            inf.record(predictions="x", confidence=0.5)

    ta = threading.Thread(target=call, args=(a, "a"))
    tb = threading.Thread(target=call, args=(b, "b"))
    ta.start()
    assert entered["a"].wait(10)
    h100.energy_mj += 1_000  # A alone: 1 J to A
    tb.start()
    assert entered["b"].wait(10)
    h100.energy_mj += 2_000  # A and B: 1 J each
    release["a"].set()
    ta.join(10)
    h100.energy_mj += 1_000  # B alone: 1 J to B
    release["b"].set()
    tb.join(10)
    (a_joules, _), (b_joules, _) = _energy(cap, "ranker", "1"), _energy(cap, "ranker", "2")
    assert (a_joules, b_joules) == (pytest.approx(2.0), pytest.approx(2.0))
    assert a_joules + b_joules == pytest.approx((h100.energy_mj - before) / 1000)


def test_many_threads_attribute_exactly_what_the_counters_grew() -> None:
    """8 threads x 200 calls overlapping at random, the counter growing at every read: the joules of all
    calls add up to the counter's growth over the time some call ran (one call spans all of it here)."""
    lock = threading.Lock()
    rng = random.Random(7)
    readings: list[int] = []

    def read(_handle: object) -> int:
        with lock:
            value = (readings[-1] if readings else 10**9) + rng.randint(0, 5_000)
            readings.append(value)
            return value

    meter = NvmlEnergyMeter(read, [Device(0, object(), {})], SelfTelemetry())
    joules: list[float] = []
    anchor = meter.start()

    def worker(seed: int) -> None:
        local = random.Random(seed)
        mine = []
        open_calls = []
        for _ in range(200):
            if open_calls and local.random() < 0.5:
                got = meter.stop(open_calls.pop(local.randrange(len(open_calls))))
                assert got is not None and got >= 0
                mine.append(got)
            else:
                open_calls.append(meter.start())
        for token in open_calls:
            got = meter.stop(token)
            assert got is not None
            mine.append(got)
        with lock:
            joules.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    last = meter.stop(anchor)
    assert last is not None
    assert sum(joules) + last == pytest.approx((readings[-1] - readings[0]) / 1000, rel=1e-9)


def test_a_failed_reading_records_nothing(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """No counter readable at stop (or at start): no ml.inference.energy point, a count, no exception."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=[0])
    monitor = cap.monitor("clf", version="1")
    with monitor.inference() as inf:
        nvml.script("nvmlDeviceGetTotalEnergyConsumption", 0, NVMLError_Unknown())
        inf.record(predictions="a")
    with monitor.inference() as inf:  # start fails too
        nvml.unscript()
        inf.record(predictions="a")
    assert not cap.points("ml.inference.energy")
    assert cap.histogram("ml.inference.duration").count == 2
    assert cap.dropped("gpu_read_error") == 2
    with monitor.inference() as inf:
        inf.record(predictions="a")
    assert _energy(cap, "clf", "1") == (0.0, 1)  # readable again; the counter did not move


@pytest.mark.parametrize("bad", [Returns(None), Returns("12"), Returns(-5), Returns(float("nan")), Returns(2**64 - 1),
                                 Returns(True), ZeroDivisionError(), KeyError("energy")])
def test_odd_energy_readings_are_counted_not_raised(cap: TelemetryCapture, nvml: FakeNvml, bad: object) -> None:
    """An energy read returning nonsense or raising anything: stop() gives None, counted, nothing raised."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=[0])
    meter = _meter()
    token = meter.start()
    nvml.script("nvmlDeviceGetTotalEnergyConsumption", 0, bad)
    assert meter.stop(token) is None
    assert meter.start() is None
    assert cap.dropped("gpu_invalid_value") + cap.dropped("gpu_read_error") == 2
    assert cap.dropped("internal_error") == 0


def test_generation_energy_and_per_output_token(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """A generation records its joules and joules per output token."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, devices=[0])
    llm = cap.monitor("llama", version="3.1-8b", task="generation")
    with llm.generation() as gen:
        nvml.devices[0].energy_mj += 40_000
        gen.token(100)
    attrs = {"ml.model.name": "llama", "ml.model.version": "3.1-8b"}
    assert cap.histogram("ml.generation.energy", **attrs).sum == pytest.approx(40.0)
    assert cap.histogram("ml.generation.energy.per_token", **attrs).sum == pytest.approx(0.4)


def test_energy_off(cap: TelemetryCapture, nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    """energy=False, or OTEL_ML_GPU_ENERGY=false, leaves the meter out: no ml.inference.energy at all."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml, energy=False)
    assert energy.CURRENT.meter is None
    otel_ml.gpu.disable()
    monkeypatch.setenv("OTEL_ML_GPU_ENERGY", "false")
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    assert energy.CURRENT.meter is None
    with cap.monitor("clf").inference() as inf:
        inf.record(predictions="a")
    assert not cap.points("ml.inference.energy")
    assert cap.points("hw.energy")  # the device counter is still exported


def test_no_device_with_an_energy_counter(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """GPUs older than Volta have no energy counter: no meter, no ml.inference.energy, hw.power still there."""
    for index in (0, 1):
        nvml.script("nvmlDeviceGetTotalEnergyConsumption", index, NVMLError_NotSupported())
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    assert energy.CURRENT.meter is None
    with cap.monitor("clf").inference() as inf:
        inf.record(predictions="a")
    assert not cap.points("ml.inference.energy") and not cap.points("hw.energy")
    assert len(cap.points("hw.power")) == 2


def test_meter_follows_the_devices_this_process_runs_on(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """Every monitored device until a collection shows where this process runs; then only those."""
    start(cap, nvml)
    meter = _meter()
    assert meter.devices == (0, 1)
    cap.metrics()
    assert meter.devices == (0,)  # NVML lists this PID on the H100 only
    with cap.monitor("clf", version="1").inference() as inf:
        nvml.devices[1].energy_mj += 99_000  # another process's work on the A10: not ours
        nvml.devices[0].energy_mj += 1_000
        inf.record(predictions="a")
    assert _energy(cap, "clf", "1") == (pytest.approx(1.0), 1)


def test_counter_restart_is_a_new_baseline() -> None:
    """A counter lower than before (the driver reloaded) attributes nothing for that interval, never < 0."""
    values = iter([5_000, 1_000, 1_000, 3_500])
    meter = NvmlEnergyMeter(lambda _h: next(values), [Device(0, object(), {})], SelfTelemetry())
    first = meter.start()
    assert meter.stop(first) == 0.0  # 5000 -> 1000: restarted
    second = meter.start()
    assert meter.stop(second) == pytest.approx(2.5)  # 1000 -> 3500


def test_a_call_dropped_without_stop_stops_counting() -> None:
    """A token lost without stop() (a bug upstream) no longer takes a share of later intervals."""
    counter = [0]
    meter = NvmlEnergyMeter(lambda _h: counter[0], [Device(0, object(), {})], SelfTelemetry())
    lost = meter.start()
    del lost
    gc.collect()
    kept = meter.start()
    counter[0] += 2_000
    assert meter.stop(kept) == pytest.approx(2.0)  # all of it: the lost call is not running


def test_stop_with_a_foreign_or_repeated_token(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """stop() of None, of an unrelated object or of a token already stopped gives None, never raises."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    meter = _meter()
    token = meter.start()
    assert meter.stop(token) == 0.0
    assert meter.stop(token) is None
    assert meter.stop(None) is None and meter.stop("x") is None and meter.stop(object()) is None


def test_disable_removes_the_meter(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """disable() takes the meter away: calls afterwards record no energy."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)
    assert energy.CURRENT.meter is not None
    otel_ml.gpu.disable(cap.meter_provider)
    assert energy.CURRENT.meter is None


def test_disable_keeps_a_meter_installed_by_someone_else(cap: TelemetryCapture, nvml: FakeNvml) -> None:
    """A meter set after enable() (the user's own) survives disable()."""
    assert otel_ml.gpu.enable(cap.meter_provider, nvml=nvml)

    class Mine:
        def start(self) -> object:
            return None

        def stop(self, token: object) -> float | None:
            return None

    mine = Mine()
    energy.set_meter(mine)
    otel_ml.gpu.disable()
    assert energy.CURRENT.meter is mine


def test_a_device_taken_up_again_starts_from_a_new_baseline() -> None:
    """Energy a device spent while the meter did not read it is not charged to the calls running later."""
    counters = {0: 0, 1: 0}
    devices = [Device(0, 0, {}), Device(1, 1, {})]
    meter = NvmlEnergyMeter(lambda h: counters[h], devices, SelfTelemetry())  # type: ignore[index]
    assert meter.stop(meter.start()) == 0.0
    meter.use(devices[:1])
    counters[1] += 50_000
    meter.use(devices)
    token = meter.start()
    counters[0] += 1_000
    assert meter.stop(token) == pytest.approx(1.0)
