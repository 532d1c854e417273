"""Rejects: every row a reader or job refuses is kept with the reason, never silently dropped."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd


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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text so readers see either the old file or the whole new one."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto it only if the block finishes."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _temp_beside(path: Path) -> tuple[int, str]:
    """mkstemp in the target's folder, with the permissions a plain open() would have given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp
