"""The tables of a markdown report, read back: for W&B tables and for a paper (tables/*.csv and booktabs LaTeX).

A table is (key, columns, rows): key is `<n>_<heading above it, slugged>`, e.g. `3_ablation_scheduler`, so that
the CSV, the .tex file and the W&B table of one report table share one name.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from pathlib import Path
from typing import Any

from seg.files import atomic_write_text, csv_text

Table = tuple[str, list[str], list[list[Any]]]


def mean_std(values: list[float], digits: int = 4) -> str:
    """A report cell: `mean ± std` over seeds ('' for none, the mean alone for one)."""
    if not values:
        return ""
    text = f"{statistics.mean(values):.{digits}f}"
    return text + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def ci_text(ci: tuple[float, float] | None) -> str:
    """A report cell: a CI as `[-0.0123, +0.0456]` ('' for none or NaN)."""
    return "" if ci is None or math.isnan(ci[0]) else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def markdown_tables(text: str) -> list[Table]:
    """(key, columns, rows) of each GitHub-flavoured table in `text`; key: the heading above it, slugged."""
    tables, heading, block = [], "table", []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([_cell(c) for c in line.strip().strip("|").split("|")])
            continue
        if len(block) >= 2:
            key = f"{len(tables) + 1}_{heading}"
            rows = uniform([r for r in block[2:] if len(r) == len(block[0])])
            tables.append((key, [str(c) for c in block[0]], rows))
        block = []
        if line.startswith("#"):
            heading = re.sub(r"\W+", "_", line.lstrip("#").strip().lower()).strip("_")[:40] or "table"
    return tables


def _cell(text: str) -> Any:
    text = text.strip().strip("`*")
    try:
        return float(text)
    except ValueError:
        return text


def uniform(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows whose columns each hold one type (W&B tables refuse a column of numbers and text): a column with any
    text cell becomes all text."""
    text = {i for r in rows for i, c in enumerate(r) if isinstance(c, str)}
    return [[str(c) if i in text else c for i, c in enumerate(r)] for r in rows]


def read_csv(path: Path) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of a CSV file, numbers as floats (uniform columns)."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], uniform([[_cell(c) for c in r] for r in rows[1:]])) if rows else ([], [])


def write_tables(report_md: Path, out_dir: Path) -> list[Path]:
    """Every table of `report_md` as `<out_dir>/<key>.csv` and `<out_dir>/<key>.tex` (booktabs); returns the paths.

    The cells are written as the report shows them (rounded, `mean ± std`), so the paper and the report agree."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, columns, rows in _raw_tables(report_md.read_text()):
        atomic_write_text(out_dir / f"{key}.csv", csv_text(columns, rows))
        atomic_write_text(out_dir / f"{key}.tex", booktabs(columns, rows))
        written += [out_dir / f"{key}.csv", out_dir / f"{key}.tex"]
    return written


def _raw_tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """As markdown_tables, with every cell the text the report shows (markdown emphasis and code marks removed)."""
    keys = [key for key, _, _ in markdown_tables(text)]
    found, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip().strip("`*").strip() for c in line.strip().strip("|").split("|")])
        else:
            if len(block) >= 2:
                found.append((block[0], [r for r in block[2:] if len(r) == len(block[0])]))
            block = []
    return [(key, columns, rows) for key, (columns, rows) in zip(keys, found)]


_NUMBER = re.compile(r"[-+−]?\d+(\.\d+)?%?|[-+]?\d*\.?\d+(e[-+]?\d+)?")
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def latex_cell(text: str) -> str:
    """A cell as LaTeX: special characters escaped, `±` as `$\\pm$`, `[a, b]` intervals kept."""
    escaped = "".join(_LATEX.get(c, c) for c in str(text))
    for text, latex in (("±", r"$\pm$"), ("≤", r"$\le$"), ("≥", r"$\ge$"), ("−", "-"), ("Δ", r"$\Delta$")):
        escaped = escaped.replace(text, latex)
    return escaped


def booktabs(columns: list[str], rows: list[list[str]]) -> str:
    """A booktabs `tabular` (\\toprule, \\midrule, \\bottomrule): numeric columns right-aligned, others left."""
    numeric = [all(not r[i] or _NUMBER.fullmatch(str(r[i]).split(" ")[0]) for r in rows) and any(r[i] for r in rows)
               for i in range(len(columns))]  # fmt: skip
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(latex_cell(c) for c in columns) + r" \\",
             r"\midrule", *(" & ".join(latex_cell(c) for c in r) + r" \\" for r in rows), r"\bottomrule",
             r"\end{tabular}", ""]  # fmt: skip
    return "\n".join(lines)
