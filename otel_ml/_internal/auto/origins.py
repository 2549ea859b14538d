"""The file a model object was loaded from, remembered by patching the loaders.

``joblib.load(path)`` and ``pickle.load(file)`` (and, from their instrumentors, ``torch.load`` and
``onnxruntime.InferenceSession(path)``) record ``object -> path`` here, weakly, so the model's name
can be the file's stem and its version the file's content hash. Loading never fails because of
this: recording is best effort.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from otel_ml._internal import forksafe

_lock = threading.Lock()
forksafe.renew_module_lock_after_fork(__name__, "_lock")
_paths: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_by_id: dict[int, str] = {}  # objects that cannot be weakly referenced (bounded)
_MAX_BY_ID = 1024
_patched: list[tuple[Any, str, Any]] = []


def record(obj: object, path: object) -> None:
    try:
        text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", None)
        if not isinstance(text, str):
            return
        text = os.path.abspath(text)
        with _lock:
            try:
                _paths[obj] = text
            except TypeError:
                if len(_by_id) < _MAX_BY_ID:
                    _by_id[id(obj)] = text
    except Exception:
        pass


def path_of(obj: object) -> str | None:
    with _lock:
        try:
            found = _paths.get(obj)
        except TypeError:
            found = None
        return found if found is not None else _by_id.get(id(obj))


def _wrap_loader(owner: Any, attr: str, path_arg: Callable[[tuple[Any, ...], dict[str, Any]], object]) -> None:
    original = getattr(owner, attr, None)
    if original is None or getattr(original, "_otel_ml_loader", False):
        return

    def load(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        try:
            record(result, path_arg(args, kwargs))
        except Exception:
            pass
        return result

    load._otel_ml_loader = True  # type: ignore[attr-defined]
    load.__wrapped__ = original  # type: ignore[attr-defined]
    load.__doc__ = original.__doc__
    setattr(owner, attr, load)
    _patched.append((owner, attr, original))


def _first(args: tuple[Any, ...], kwargs: dict[str, Any], *names: str) -> object:
    if args:
        return args[0]
    return next((kwargs[n] for n in names if n in kwargs), None)


def install_pickle_and_joblib() -> None:
    """Patch ``pickle.load`` and ``joblib.load`` (idempotent)."""
    import pickle

    _wrap_loader(pickle, "load", lambda a, k: _first(a, k, "file"))
    try:
        import joblib  # type: ignore[import-untyped]
    except ImportError:
        return
    _wrap_loader(joblib, "load", lambda a, k: _first(a, k, "filename"))


def install(owner: Any, attr: str, *names: str) -> None:
    """Patch another loader ``owner.attr`` whose first argument (or keyword ``names``) is the path."""
    _wrap_loader(owner, attr, lambda a, k: _first(a, k, *names))


def uninstall() -> None:
    while _patched:
        owner, attr, original = _patched.pop()
        setattr(owner, attr, original)
