"""``otel-ml profile DATA -o OUT.json``: build a reference profile from training data.

DATA is CSV (read with pandas when installed, else the stdlib ``csv`` module; numeric-looking
columns become numbers) or Parquet (pyarrow). ``--kinds col=categorical`` overrides inferred
kinds, ``--target COL`` is left out of the features, ``--prediction COL`` is profiled as the
prediction distribution (``__prediction__``) instead of as a feature, and ``--prediction-kind``
says what that column holds (``confidence``, ``score``, ``class`` or ``value``; default: a float
column is ``confidence``, any other ``class``). Errors name the file and the column.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from typing import Any

from otel_ml._internal.drift.features import PREDICTION_KINDS, FeatureKind
from otel_ml._internal.errors import CLIError

PROGRESS_MIN_VALUES = 100_000


class _Bar:
    """A rich progress bar on stderr, one step per profiled feature."""

    def __init__(self, total: int, what: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True, force_terminal=True)
        console.print(what, highlight=False, markup=False, soft_wrap=True)
        self.progress = Progress(BarColumn(bar_width=30), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[feature]}"), console=console)
        self.task = self.progress.add_task("profiling", total=total, feature="")
        self.progress.start()

    def advance(self, feature: str) -> None:
        self.progress.update(self.task, advance=1, feature=feature)
        if self.progress.finished:
            self.progress.stop()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("profile", help="build a reference profile (JSON) from CSV or Parquet data")
    p.add_argument("data", help="training data: .csv or .parquet")
    p.add_argument("-o", "--output", required=True, help="where to write the profile JSON")
    p.add_argument("--kinds", nargs="*", default=[], metavar="COL=KIND",
                   help="override inferred kinds (numeric, categorical, boolean)")
    p.add_argument("--target", help="label column, excluded from the features")
    p.add_argument("--prediction", help="prediction/score column, profiled as __prediction__")
    p.add_argument("--prediction-kind", choices=list(PREDICTION_KINDS), default=None,
                   help="what --prediction holds: top-class confidence, positive-class score, class "
                        "labels or regression values (default: floats are confidence, else class)")
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--sample-size", type=int, default=2000)
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="a progress bar while profiling (auto: on a terminal, for 100 000+ values)")
    p.set_defaults(handler=run)


def _read_csv_stdlib(path: str) -> dict[str, list[Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise CLIError(f"{path}: empty CSV (no header)")
        cols: dict[str, list[str]] = {h: [] for h in header}
        for row in reader:
            if len(row) != len(header):
                raise CLIError(f"{path}: line {reader.line_num} has {len(row)} fields, header has {len(header)}")
            for h, v in zip(header, row, strict=True):
                cols[h].append(v)
    out: dict[str, list[Any]] = {}
    for h, vals in cols.items():
        try:
            out[h] = [math.nan if v == "" else float(v) for v in vals]
        except ValueError:
            out[h] = [None if v == "" else v for v in vals]
    return out


def read_table(path: str) -> Any:
    """Columns of a CSV or Parquet file (a DataFrame when pandas is installed, else a dict)."""
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".parquet", ".pq"):
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise CLIError("reading Parquet needs pyarrow: pip install 'otel-ml[data]'") from None
            table = pq.read_table(path)
            try:
                return table.to_pandas()
            except ImportError:
                return {n: table.column(n).to_pylist() for n in table.column_names}
        try:
            import pandas as pd
        except ImportError:
            return _read_csv_stdlib(path)
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise CLIError(f"{path}: empty CSV") from None
    except CLIError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CLIError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # parser-specific errors (pyarrow.ArrowInvalid, csv.Error, ...)
        raise CLIError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None


def run(args: argparse.Namespace) -> int:
    from otel_ml._internal.drift.profile import ReferenceProfile

    data = read_table(args.data)
    cols: dict[str, Any] = (
        {str(c): data[c].to_numpy() if data[c].dtype.kind in "fiub"
         else data[c].astype(object).where(data[c].notna(), None).to_numpy() for c in data.columns}
        if hasattr(data, "columns") else dict(data)
    )
    if not cols or all(len(v) == 0 for v in cols.values()):
        raise CLIError(f"{args.data}: no rows")
    path = args.data
    for col, what in ((args.target, "--target"), (args.prediction, "--prediction")):
        if col is not None and col not in cols:
            raise CLIError(f"{what}: column {col!r} is not in {path} (columns: {sorted(cols)})")
    if args.target is not None and args.target == args.prediction:
        raise CLIError(f"--target and --prediction both name column {args.target!r} of {path}")
    if args.prediction_kind is not None and args.prediction is None:
        raise CLIError("--prediction-kind needs --prediction COL (the column it describes)")
    kinds: dict[str, str] = {}
    for spec in args.kinds:
        name, sep, kind = spec.partition("=")
        if not sep:
            raise CLIError(f"--kinds expects COL=KIND, got {spec!r}")
        if name not in cols or name in (args.target, args.prediction):
            raise CLIError(f"--kinds {spec}: column {name!r} is not a feature column of {path} "
                           f"(features: {sorted(set(cols) - {args.target, args.prediction})})")
        if kind not in [k.value for k in FeatureKind]:
            raise CLIError(f"--kinds {spec}: unknown kind {kind!r} for column {name!r} of {path}; use one of "
                           f"{[k.value for k in FeatureKind]}")
        kinds[name] = kind
    predictions = None
    if args.target is not None:
        cols.pop(args.target)
    if args.prediction is not None:
        predictions = cols.pop(args.prediction)
    if not cols:
        raise CLIError(f"{path}: no feature columns left")
    n_rows = max((len(v) for v in cols.values()), default=0)
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty()
                                         and n_rows * len(cols) >= PROGRESS_MIN_VALUES)
    bar = _Bar(len(cols), f"profiling {len(cols)} features x {n_rows} rows of {path}") if show else None
    try:
        profile = ReferenceProfile.from_data(cols, feature_kinds=kinds, bins=args.bins, top_k=args.top_k,
                                             sample_size=args.sample_size, predictions=predictions,
                                             prediction_kind=args.prediction_kind,
                                             on_feature=bar.advance if bar is not None else None)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if msg.startswith("predictions"):
            raise CLIError(f"--prediction: column {args.prediction!r} of {path}: {msg}") from None
        raise CLIError(f"{path}: {msg}") from None
    try:
        profile.save(args.output)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise CLIError(f"{args.output}: cannot write ({exc})") from None
    print(f"wrote {args.output}: {len(profile.features)} features"
          + (", with prediction distribution" if profile.prediction else ""))
    return 0
