"""Locks that survive ``fork()``: pre-fork servers (gunicorn ``--preload``, uvicorn ``--workers``).

A lock that another thread holds when the process forks - the SDK's metric reader thread
collecting otel_ml's series every export interval, say - stays locked forever in the child, whose
first inference then waits on it for good. :func:`renew_after_fork` registers an object's lock
attributes (held weakly) and :func:`renew_module_lock_after_fork` a module's; in each child they
are replaced by fresh locks before any code of the child runs. :func:`call_after_fork` runs an
object's own reset in the child, for state beyond its locks: the one place otel_ml renews state in
a forked child (``sdk_seam.guard_fork`` keeps forks out of collections). State a lock guarded may be
half-updated in the child; every structure guarded here tolerates that (counters, caches, weak
sets), and a lost update of the parent is the parent's.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

_objects: dict[int, tuple[weakref.ref[Any], tuple[str, ...]]] = {}
_methods: dict[int, weakref.WeakMethod[Callable[[], None]]] = {}
_modules: list[tuple[str, str]] = []
_guard = threading.Lock()


def renew_after_fork(obj: Any, *attributes: str) -> None:
    """Give ``obj`` fresh ``threading.Lock`` objects in these attributes in every forked child."""
    key = id(obj)

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        _objects.pop(key, None)

    with _guard:
        _objects[key] = (weakref.ref(obj, forget), attributes)


def call_after_fork(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in every forked child (after the locks are renewed), while its
    object lives: for state beyond locks that the child must reset (calls in flight in the
    parent's other threads, readings to take afresh)."""
    key = id(method.__self__)  # type: ignore[attr-defined]

    def forget(_ref: Any, key: int = key) -> None:
        _methods.pop(key, None)

    with _guard:
        _methods[key] = weakref.WeakMethod(method, forget)


def renew_module_lock_after_fork(module: str, attribute: str) -> None:
    """The same for a module-level lock (``_LOCK = threading.Lock()``)."""
    with _guard:
        _modules.append((module, attribute))


def _after_fork_in_child() -> None:
    global _guard
    _guard = threading.Lock()
    for ref, attributes in list(_objects.values()):
        obj = ref()
        if obj is None:
            continue
        for name in attributes:
            try:
                setattr(obj, name, threading.Lock())
            except (AttributeError, TypeError):
                pass
    for module, name in _modules:
        found = sys.modules.get(module)
        if found is not None:
            setattr(found, name, threading.Lock())
    for ref in list(_methods.values()):
        method = ref()
        if method is not None:
            method()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
