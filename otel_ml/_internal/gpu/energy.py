"""Energy per call from NVML's total-energy counters, shared between calls that overlap.

A raw "counter at stop minus counter at start" per call counts the same joules once for every
call running at the time: two overlapping calls of 1 s on a GPU drawing 300 W would each report
300 J, 600 J in all for 300 J consumed. The rule here:

    Between two consecutive events (a call starting or stopping) the set of running calls does
    not change. The energy the devices consumed in that interval (the growth of their counters)
    is divided equally among the calls running in it; a call's energy is the sum of its shares.

So at every moment each of the ``k`` running calls is charged ``power / k``; the shares of all
calls add up to exactly the counters' growth while at least one call runs (nothing counted twice),
and energy consumed while no call runs (idle power, other processes between calls) goes to none.

It costs O(1) per call whatever the number running: one number, ``acc``, holds the joules per
running call accumulated since the meter started (the sum over intervals of energy / running
calls). At each event, under one lock, the counters are read and their growth divided by the
number of running calls is added to ``acc``; a call keeps ``acc`` from its start, and its energy is
``acc`` at its stop minus that. The counters are read inside the lock so that readings and events
stay in one order (a reading taken outside could be older than one already used).

Limits, stated in the module docstring of ``otel_ml.gpu``: the counters belong to the device, so
another process's work on the same GPU is shared among this process's running calls; the
counters advance in steps (tens of milliseconds on current GPUs), so one short call may get 0 J
and the next a whole step, while sums and rates over many calls are right.

A reading fails when no device's counter could be read: a call whose start failed gets no share
and reports None, as does a call whose stop failed (its energy up to that moment is unknown).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from otel_ml._internal import forksafe
from otel_ml._internal.gpu.nvml import INVALID_VALUE, READ_ERROR, Device, number
from otel_ml._internal.selftelemetry import SelfTelemetry

# NVML's "not available" is all ones in 64 bits; nothing real is that big.
_MAX_MJ = 2**63


def _millijoules(raw: object) -> float | None:
    f = number(raw)
    return f if f is not None and 0.0 <= f < _MAX_MJ else None


class _Call:
    """A running call: ``acc`` at its start."""

    __slots__ = ("acc", "done", "meter")

    def __init__(self, meter: NvmlEnergyMeter, acc: float) -> None:
        self.meter = meter
        self.acc = acc
        self.done = False

    def __del__(self) -> None:
        # A call dropped without stop() (a bug upstream) would keep dividing every interval by one
        # call too many. No lock here: the collector may run this while the same thread holds it.
        if not self.done:
            self.done = True
            self.meter._abandoned.append(1)


class NvmlEnergyMeter:
    """An :class:`otel_ml._internal.energy.EnergyMeter` over NVML's total-energy counters."""

    def __init__(self, read: Callable[[object], object], devices: Sequence[Device], registry: SelfTelemetry) -> None:
        self._read = read
        self._devices: tuple[tuple[int, object], ...] = tuple((d.index, d.handle) for d in devices)
        self._registry = registry
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}  # device index -> counter (mJ) at the last event
        self._acc = 0.0  # J per running call, accumulated
        self._active = 0
        self._abandoned: list[int] = []
        self.closed = False
        forksafe.call_after_fork(self._after_fork)

    @property
    def devices(self) -> tuple[int, ...]:
        """NVML indices of the devices whose energy is shared among calls."""
        return tuple(i for i, _ in self._devices)

    def use(self, devices: Sequence[Device]) -> None:
        """Read these devices from now on (those this process runs on, found at collection time)."""
        chosen = tuple((d.index, d.handle) for d in devices)
        if chosen and chosen != self._devices:
            with self._lock:
                self._devices = chosen
                # A device dropped now and taken up again later starts from a new baseline, or the
                # energy of the time it was not read would land on the calls running then.
                kept = {i for i, _ in chosen}
                self._last = {i: v for i, v in self._last.items() if i in kept}

    def start(self) -> object:
        try:
            with self._lock:
                if not self._advance():
                    return None
                self._active += 1
                return _Call(self, self._acc)
        except Exception as exc:
            self._registry.guard(exc, "metrics")
            return None

    def stop(self, token: object) -> float | None:
        if type(token) is not _Call or token.meter is not self or token.done:
            return None
        token.done = True
        try:
            with self._lock:
                ok = self._advance()
                if self._active > 0:
                    self._active -= 1
                return self._acc - token.acc if ok else None
        except Exception as exc:
            self._registry.guard(exc, "metrics")
            return None

    def _advance(self) -> bool:
        """Read the counters and share their growth since the last event (caller holds the lock)."""
        if self.closed:
            return False
        if self._abandoned:
            n = len(self._abandoned)
            del self._abandoned[:n]
            self._active = max(0, self._active - n)
        read, last = self._read, self._last
        grown: float = 0
        ok = False
        for index, handle in self._devices:
            try:
                mj = read(handle)
            except Exception as exc:
                self._registry.dropped(READ_ERROR, "metrics", detail=f"energy on device {index}: {exc!r}")
                continue
            if type(mj) is not int or not 0 <= mj < _MAX_MJ:
                raw, mj = mj, _millijoules(mj)
                if mj is None:
                    self._registry.dropped(INVALID_VALUE, "metrics", detail=f"energy on device {index}: {raw!r}"[:200])
                    continue
            ok = True
            prev = last.get(index)
            last[index] = mj
            # No previous reading: a baseline. Lower than before: the driver reloaded and the
            # counter restarted from 0; also a baseline, since the energy in between is unknown.
            if prev is not None and mj > prev:
                grown += mj - prev
        if grown and self._active:
            self._acc += grown / 1000.0 / self._active
        return ok

    def close(self) -> None:
        with self._lock:
            self.closed = True

    def _after_fork(self) -> None:
        # Calls running in the parent's other threads do not exist in the child; the counters are
        # read afresh (a baseline) at the child's first event.
        self._lock = threading.Lock()
        self._active = 0
        self._last = {}
        self._abandoned = []

