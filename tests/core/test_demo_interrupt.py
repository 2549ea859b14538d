"""Ctrl-C stops ``otel-ml demo`` even when CPython drops the KeyboardInterrupt (raised while a
finalizer runs during garbage collection, it is printed as "Exception ignored" and lost): the
SIGINT handler remembers it and the watch loop raises it again."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from otel_ml._internal import demo


class _Running:
    """A load process that runs for 5 s (so a loop that misses the interrupt ends and the test fails)."""

    def __init__(self) -> None:
        self.until = time.monotonic() + 5

    def poll(self) -> int | None:
        return None if time.monotonic() < self.until else 0


def test_a_dropped_keyboard_interrupt_is_raised_again_by_the_watch_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "snapshot", lambda elapsed, service: demo.Snapshot(elapsed))
    monkeypatch.setattr(demo._Interrupt, "seen", False)
    args = argparse.Namespace(plain=True, interval=0.01, seconds=300)

    def ctrl_c_lost_in_a_finalizer() -> None:
        time.sleep(0.2)
        try:
            demo._Interrupt.handler(2, None)
        except KeyboardInterrupt:
            pass  # what CPython does with it inside a __del__

    threading.Thread(target=ctrl_c_lost_in_a_finalizer).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        demo._watch(_Running(), started, args, "svc")  # type: ignore[arg-type]
    assert time.monotonic() - started < 5


def test_the_handler_still_interrupts_at_once() -> None:
    with pytest.raises(KeyboardInterrupt):
        demo._Interrupt.handler(2, None)
    demo._Interrupt.seen = False


