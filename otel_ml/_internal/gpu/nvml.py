"""The one seam between otel_ml and NVML: every call into the library goes through :class:`Nvml`.

NVML is passed in (``pynvml`` from ``nvidia-ml-py`` by default, a fake with recorded values in
tests), so nothing here imports it. Whatever the library does - raise ``NVMLError_NotSupported``,
raise anything else, return None, a string, a negative or NaN number - turns into a value or
:data:`ABSENT`, and every absence is counted in self-telemetry:

* ``gpu_not_supported``: the device does not support the read (or the driver lacks the function,
  or we lack the permission). Counted once per device and read, which is then never asked again:
  an unsupported read never becomes supported while the driver stays loaded, and asking costs a
  call per collection.
* ``gpu_read_error``: the read raised anything else (the GPU fell off the bus, a timeout, a bug in
  a wrapper). Counted each time; the next collection asks again.
* ``gpu_invalid_value``: the read returned something that is not a plausible value (a ratio above
  100 %, a negative size, ``None``, a string). Counted each time.

The error codes are NVML's (``nvml.h``); they are compared by number as well as by pynvml's
exception classes so that any wrapper that keeps ``.value`` on its exceptions works.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from otel_ml._internal import forksafe
from otel_ml._internal.selftelemetry import SelfTelemetry

NOT_SUPPORTED: Final = "gpu_not_supported"
READ_ERROR: Final = "gpu_read_error"
INVALID_VALUE: Final = "gpu_invalid_value"
UNAVAILABLE: Final = "gpu_unavailable"

# nvml.h return codes.
_ERROR_NOT_SUPPORTED = 3
_ERROR_NO_PERMISSION = 4
_ERROR_FUNCTION_NOT_FOUND = 13
_ERROR_GPU_IS_LOST = 15
_ERROR_RESET_REQUIRED = 16
_UNSUPPORTED_CODES = frozenset({_ERROR_NOT_SUPPORTED, _ERROR_NO_PERMISSION, _ERROR_FUNCTION_NOT_FOUND})
_UNSUPPORTED_CLASSES = ("NVMLError_NotSupported", "NVMLError_NoPermission", "NVMLError_FunctionNotFound")
# The device needs a reset or is gone: hw.status reports it failed.
_FATAL_CODES = frozenset({_ERROR_GPU_IS_LOST, _ERROR_RESET_REQUIRED})
_FATAL_CLASSES = ("NVMLError_GpuIsLost", "NVMLError_ResetRequired")

# NVML reports "not available" in unsigned 64-bit fields as all ones; nothing real is that big.
_MAX_COUNT = 2**63


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
"""What a read gives when it has no value: the observation is skipped, never reported as 0."""


@dataclass
class Device:
    """One monitored GPU: its NVML index and handle, and the attributes on every point about it."""

    index: int
    handle: object
    attributes: dict[str, str]
    energy: bool = False  # its total-energy counter answered when monitoring started
    fatal: bool = field(default=False)  # the last sample saw it lost or needing a reset


def number(value: object) -> float | None:
    """A finite int or float (never a bool) as float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def count(value: object) -> int | None:
    """A non-negative int NVML could mean (not its all-ones "not available"), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNT:
        return None
    return int(value)


def percent(value: object) -> float | None:
    """NVML's 0-100 percent as a 0-1 ratio, else None."""
    f = number(value)
    return f / 100.0 if f is not None and 0.0 <= f <= 100.0 else None


def text(value: object, limit: int = 128) -> str | None:
    """A printable str or UTF-8 bytes (older pynvml returns bytes) as a short str, else None."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    value = value.strip().strip("\x00")[:limit]
    # NVML's names, UUIDs and versions are plain ASCII: anything unprintable is garbage, not a name.
    return value if value and value.isprintable() else None


def _code(exc: BaseException) -> object:
    return getattr(exc, "value", None)


class Nvml:
    """Guarded access to an NVML module: calls that never raise, with absences counted."""

    def __init__(self, module: object, registry: SelfTelemetry) -> None:
        self.module: Any = module
        self.registry = registry
        self._unsupported: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        forksafe.renew_after_fork(self, "_lock")
        self._unsupported_classes = self._classes(_UNSUPPORTED_CLASSES)
        self._fatal_classes = self._classes(_FATAL_CLASSES)

    def _classes(self, names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
        found = []
        for name in names:
            cls = getattr(self.module, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
        return tuple(found)

    def constant(self, name: str, default: int) -> int:
        """An NVML constant from the module, or nvml.h's value when the module lacks it."""
        value = getattr(self.module, name, default)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def function(self, name: str) -> Callable[..., object] | None:
        fn = getattr(self.module, name, None)
        return fn if callable(fn) else None

    def unsupported(self, exc: BaseException) -> bool:
        return isinstance(exc, self._unsupported_classes) or _code(exc) in _UNSUPPORTED_CODES

    def fatal(self, exc: BaseException) -> bool:
        return isinstance(exc, self._fatal_classes) or _code(exc) in _FATAL_CODES

    def call(self, device: Device | None, read: str, name: str, *args: object) -> object:
        """``name(*args)``'s result, or ABSENT (counted). ``read`` names the read for the unsupported memory."""
        index = device.index if device is not None else -1
        key = (index, read)
        if key in self._unsupported:
            return ABSENT
        fn = self.function(name)
        if fn is None:
            self._mark_unsupported(key, f"{name} is missing from the NVML module")
            return ABSENT
        try:
            return fn(*args)
        except Exception as exc:
            if self.unsupported(exc):
                self._mark_unsupported(key, f"{read} on device {index}: {exc!r}")
            else:
                if device is not None and self.fatal(exc):
                    device.fatal = True
                self.registry.dropped(READ_ERROR, "metrics", detail=f"{name} on device {index}: {exc!r}")
            return ABSENT

    def mark_unsupported(self, device: Device | None, read: str, detail: str) -> None:
        self._mark_unsupported((device.index if device is not None else -1, read), detail)

    def _mark_unsupported(self, key: tuple[int, str], detail: str) -> None:
        with self._lock:
            if key in self._unsupported:
                return
            self._unsupported.add(key)
        self.registry.dropped(NOT_SUPPORTED, "metrics", detail=detail)

    def invalid(self, device: Device | None, read: str, value: object) -> None:
        index = device.index if device is not None else -1
        self.registry.dropped(INVALID_VALUE, "metrics", detail=f"{read} on device {index}: {value!r}"[:200])
