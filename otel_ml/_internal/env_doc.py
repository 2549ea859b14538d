"""The table of every ``OTEL_ML_*`` variable in README.md, generated from :mod:`otel_ml._internal.env`.

``python -m otel_ml._internal.env_doc`` rewrites the table between the README's
``<!-- env-table -->`` markers; a test fails when the README is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ENV_PY = Path(__file__).with_name("env.py")
README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- env-table:start -->", "<!-- env-table:end -->"
_SECTION = re.compile(r"^# --- (.+?) -+$")
_CONSTANT = re.compile(r'^[A-Z_]+: Final = "(OTEL_ML_[A-Z_]+)"$')


def rows(text: str) -> list[tuple[str, str, str]]:
    """(section, variable, description) for each constant of env.py, in file order."""
    out: list[tuple[str, str, str]] = []
    section = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
        m = _CONSTANT.match(line)
        if m:
            doc = ""
            if i + 1 < len(lines) and lines[i + 1].startswith('"""'):
                chunk = [lines[i + 1][3:]]
                j = i + 1
                while not chunk[-1].rstrip().endswith('"""'):
                    j += 1
                    chunk.append(lines[j].strip())
                doc = " ".join(chunk).rstrip()[:-3].strip()
            name = m.group(1) + ("*" if m.group(1).endswith("_") else "")
            out.append((section, name, doc))
        i += 1
    return out


def table(text: str | None = None) -> str:
    body = ["| variable | for | meaning |", "| --- | --- | --- |"]
    for section, name, doc in rows(text if text is not None else ENV_PY.read_text()):
        rst = re.sub(r"``([^`]+)``", r"`\1`", doc).replace("|", "\\|")
        short = re.sub(r"\s*\(.*\)$", "", section)  # "the local stack (``otel-ml stack``)" -> "the local stack"
        body.append(f"| `{name}` | {short} | {rst} |")
    return "\n".join(body)


def render_readme(readme: str) -> str:
    start, end = readme.index(START) + len(START), readme.index(END)
    return readme[:start] + "\n" + table() + "\n" + readme[end:]


def main() -> int:
    text = README.read_text()
    new = render_readme(text)
    if new != text:
        README.write_text(new)
        print(f"wrote the OTEL_ML_* table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
