"""Locks that survive ``fork()``: pre-fork servers (gunicorn ``--preload``, uvicorn ``--workers``).

A lock that another thread holds when the process forks - the SDK's metric reader thread
collecting otel_ml's series every export interval, say - stays locked forever in the child, whose
first inference then waits on it for good. :func:`renew_after_fork` registers an object's lock
attributes (held weakly) and :func:`renew_module_lock_after_fork` a module's; in each child they
are replaced by fresh locks before any code of the child runs. State the lock guarded may be
half-updated in the child; every structure guarded here tolerates that (counters, caches, weak
sets), and a lost update of the parent is the parent's.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any

_objects: dict[int, tuple[weakref.ref[Any], tuple[str, ...]]] = {}
_modules: list[tuple[str, str]] = []
_guard = threading.Lock()


def renew_after_fork(obj: Any, *attributes: str) -> None:
    """Give ``obj`` fresh ``threading.Lock`` objects in these attributes in every forked child."""
    key = id(obj)

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        _objects.pop(key, None)

    with _guard:
        _objects[key] = (weakref.ref(obj, forget), attributes)


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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
