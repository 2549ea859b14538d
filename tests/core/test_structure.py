"""The package's structure: no import cycles (function-local and TYPE_CHECKING imports included),
every OpenTelemetry SDK internal in the seam, every OTEL_ML_* variable in the constants module."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "otel_ml"


def _modules(package_dir: Path) -> dict[str, Path]:
    base = package_dir.parent
    out = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every otel_ml module ``module`` imports, anywhere in its body (functions and TYPE_CHECKING included)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    yield sub
                elif target in known:
                    yield target


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    modules = _modules(package_dir)
    known = set(modules)
    return {m: {t for t in _imports(m, p, known) if t != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_function_local_and_type_checking_cycles(tmp_path: Path) -> None:
    """The checker itself can fail: a cycle hidden in a function or under TYPE_CHECKING is reported."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import d\n")
    (pkg / "sub" / "d.py").write_text("from .c import y\n")
    (pkg / "e.py").write_text("import pkg.sub.d\n")
    found = cycles(import_graph(pkg))
    assert sorted(found) == [["pkg.a", "pkg.b"], ["pkg.sub.c", "pkg.sub.d"]]


def test_no_import_cycles() -> None:
    """otel_ml has no import cycle, counting imports inside functions and under TYPE_CHECKING."""
    assert cycles(import_graph(PACKAGE)) == []


_SDK_INTERNAL = re.compile(r"opentelemetry\.sdk\.[\w.]*_internal|_measurement_consumer|_sdk_config|"
                           r"_set_collect_callback|_instrument_class_temporality|_reader_storages|"
                           r"_(remote|local)_parent_|\b_root\b|\._end_time|_attributes\._dict|\"_attributes\"")


def test_sdk_internals_only_in_the_seam() -> None:
    """Private OpenTelemetry SDK names appear in sdk_seam.py and nowhere else in the package."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "sdk_seam.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _SDK_INTERNAL.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_otel_ml_variables_are_named_in_the_constants_module() -> None:
    """Every OTEL_ML_* name used anywhere in the project is defined in otel_ml/_internal/env.py."""
    env_text = (PACKAGE / "_internal" / "env.py").read_text()
    defined = set(re.findall(r'"(OTEL_ML_[A-Z_]+)"', env_text))
    used: set[str] = set()
    for pattern in ("otel_ml/**/*.py", "tests/**/*.py", "scripts/*", "collector/*.yaml", "compose.yaml",
                    "examples/**/*.py", "README.md"):
        for path in ROOT.glob(pattern):
            if path.is_file() and path.name != "env.py":
                used |= set(re.findall(r"OTEL_ML_[A-Z_]*[A-Z]", path.read_text(errors="replace")))
    prefixes = {d for d in defined if d.endswith("_")} | {"OTEL_ML_TEST_"}
    unknown = sorted(u for u in used if u not in defined and not any((u + "_").startswith(p) for p in prefixes))
    assert unknown == []


def test_readme_env_table_is_generated_from_env_py() -> None:
    """README's OTEL_ML_* table is what otel_ml._internal.env_doc renders from env.py (run it to refresh),
    and lists every variable env.py defines."""
    from otel_ml._internal import env_doc

    readme = env_doc.README.read_text()
    assert env_doc.render_readme(readme) == readme, "stale: python -m otel_ml._internal.env_doc"
    defined = set(re.findall(r'"(OTEL_ML_[A-Z_]+)"', env_doc.ENV_PY.read_text()))
    listed = {name.rstrip("*") for _, name, _ in env_doc.rows(env_doc.ENV_PY.read_text())}
    assert defined == listed
    assert all(doc for _, _, doc in env_doc.rows(env_doc.ENV_PY.read_text())), "every variable needs a docstring"
