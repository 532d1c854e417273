"""Compare two run folders column by column: documents, scores, feature stores, timing outputs, reports.

    python bench/compare_runs.py runs/before/default runs/after/default

Prints a line per table (``ok``, ``noise`` or what differs) and, last, one JSON line with the
count of differences. Used to show that a restructuring leaves the default run's outputs
unchanged. Decisions:
- run-time stamps are not compared: the reader's and the job's ``ingested_at`` / ``scored_at``,
  build instants, and the report's seconds;
- row order is not compared (tables are sorted by their columns first);
- floats within 1e-6 of each other are noise, not a difference: two runs of the same code differ
  by up to 2e-7 in the float32 novelty scores and by 1e-16 in DuckDB's parallel sums.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

STAMPS = {"ingested_at", "scored_at", "job_id", "built_at", "as_of", "created_at"}
KEYS = {"doc_id", "source", "entity", "feed", "model_id", "factor", "strategy", "model", "part", "group"}
NOISE = 1e-6


def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if c not in STAMPS and (frame[c].dtype != object or c in KEYS)]
    return frame.sort_values(keys).reset_index(drop=True) if len(frame) else frame


def compare(name: str, before: pd.DataFrame, after: pd.DataFrame, stamps: set[str]) -> list[str]:
    """What differs between two tables, in words (empty: the same up to noise)."""
    before, after = (sorted_rows(f.drop(columns=[c for c in stamps if c in f.columns])) for f in (before, after))
    if list(before.columns) != list(after.columns) or len(before) != len(after):
        return [f"{name}: columns {list(before.columns)} vs {list(after.columns)}, rows {len(before)} vs {len(after)}"]
    out = []
    for c in before.columns:
        x, y = before[c], after[c]
        same = (x.isna() & y.isna()) | (x.astype(str) == y.astype(str))
        if same.all():
            continue
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            gap = np.abs(x.to_numpy() - y.to_numpy())
            if (same | (gap < NOISE)).all():
                print(f"noise {name}.{c}: {np.nanmax(gap):.1e}")
                continue
        out.append(f"{name}.{c}: {x[~same].head(2).tolist()} vs {y[~same].head(2).tolist()}")
    return out


def tables_of(store: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(store), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        return {n: con.sql(f'SELECT * FROM "{n}"').df() for n in names}


def report_rows(path: Path) -> list[str]:
    """The table rows of a Markdown report, without those of a section about run time."""
    rows, heading = [], ""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lower()
        elif line.startswith("|") and not re.search(r"seconds|timings|stages", heading):
            rows.append(line)
    return rows


def main(before: Path, after: Path) -> int:
    differences = []
    for f in sorted(before.rglob("*.parquet")):
        rel = f.relative_to(before)
        if not (after / rel).exists():
            differences.append(f"{rel}: missing")
            continue
        differences += compare(str(rel), pd.read_parquet(f), pd.read_parquet(after / rel), STAMPS)
    for f in sorted(before.rglob("*.duckdb")):
        rel = f.relative_to(before)
        b, a = tables_of(f), tables_of(after / rel)
        for name in sorted(b.keys() | a.keys()):
            if name in b and name in a:
                differences += compare(f"{rel}:{name}", b[name], a[name], STAMPS)
            else:
                differences.append(f"{rel}:{name}: in one store only")
    for f in sorted(before.rglob("*.md")):
        rel = f.relative_to(before)
        rows = report_rows(f), report_rows(after / rel)
        differences += [f"{rel}: {x} vs {y}" for x, y in zip(*rows) if x != y]
        if len(rows[0]) != len(rows[1]):
            differences.append(f"{rel}: {len(rows[0])} vs {len(rows[1])} table rows")
    for line in differences:
        print("DIFF", line[:400])
    print(json.dumps({"bench": "compare_runs", "before": str(before), "after": str(after), "differences": len(differences)}))
    return int(bool(differences))


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
