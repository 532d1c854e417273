"""Rejects: every row a reader or job refuses is kept with the reason, never silently dropped."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from core.atomic import atomic_write_text


@dataclass(frozen=True)
class Reject:
    source: str  # file (or table) the row came from
    line: int  # 1-based line/record number in that source
    column: str  # column at fault ("" when the whole row is bad)
    reason: str  # what was wrong and what was expected
    raw: str = ""  # the offending value or row, truncated, for a human to look at


@dataclass
class Rejects:
    """Collector passed through readers and jobs."""

    items: list[Reject] = field(default_factory=list)

    def add(self, source: str, line: int, column: str, reason: str, raw: object = "") -> None:
        self.items.append(Reject(str(source), int(line), column, reason, str(raw)[:500]))

    def extend(self, other: "Rejects") -> None:
        self.items.extend(other.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_frame(self) -> pd.DataFrame:
        cols = ["source", "line", "column", "reason", "raw"]
        return pd.DataFrame([asdict(r) for r in self.items], columns=cols)

    def counts(self) -> dict[str, int]:
        """Number of rejects per reason (the reason's text before any ':' detail)."""
        out: dict[str, int] = {}
        for r in self.items:
            key = r.reason.split(":", 1)[0]
            out[key] = out.get(key, 0) + 1
        return out

    def write(self, path: str | Path) -> Path:
        """Write as JSON lines, atomically (temp file + rename)."""
        path = Path(path)
        lines = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in self.items)
        atomic_write_text(path, lines)
        return path
