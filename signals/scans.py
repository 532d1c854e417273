"""Per-key running statistics over sessions, as segmented numpy scans.

Why not SQL window functions: with ~12,000 (entity, source) partitions and eleven running
aggregates plus an ASOF self-join for the trailing windows, DuckDB 2.0's window operator
dominated the build (1M score rows: ~16 s of the ~18 s query on the shared 2-core machine).
The rows arrive from DuckDB already sorted by (key, session); running sums are then cumulative
sums along the rows of dense (keys x rows per key) matrices, so each key's sums start at zero and
carry no rounding from other keys, and the trailing windows are differences of running sums
located with ``searchsorted``. Same definitions as the SQL version had (see
:mod:`signals.features`); the pandas reference in ``bench/features.py`` checks them.
"""
from __future__ import annotations

import numpy as np


class Segments:
    """Rows sorted by (key, s); gives per-key running sums and lagged positions."""

    def __init__(self, key: np.ndarray, s: np.ndarray):
        self.n = len(key)
        start = np.ones(self.n, dtype=bool)
        start[1:] = key[1:] != key[:-1]
        self.group = np.cumsum(start) - 1
        self.first = np.flatnonzero(start)[self.group]
        self.offset = np.arange(self.n) - self.first
        self.s = s
        self.s0 = s[self.first]
        # One sortable number per row: key rank, then session.
        self._ks = self.group.astype(np.int64) * (int(s.max()) + 2 if self.n else 1) + s
        # Keys bucketed by length (powers of two), one dense matrix per bucket: at most ~2 cells
        # per row, instead of (keys x longest key) cells.
        lengths = np.bincount(self.group) if self.n else np.zeros(0, dtype=int)
        bucket = np.ceil(np.log2(np.maximum(lengths, 1))).astype(int)
        row_bucket = bucket[self.group]
        self._plans = []
        for b in np.unique(bucket):
            groups = np.flatnonzero(bucket == b)
            rows = np.flatnonzero(row_bucket == b)
            local = np.searchsorted(groups, self.group[rows])
            self._plans.append((rows, local, self.offset[rows], (len(groups), 1 << int(b))))

    def _scan(self, x: np.ndarray, fill: float, accumulate) -> np.ndarray:
        out = np.empty(self.n, dtype=np.float64)
        for rows, local, offset, shape in self._plans:
            m = np.full(shape, fill, dtype=np.float64)
            m[local, offset] = x[rows]
            out[rows] = accumulate(m, axis=1)[local, offset]
        return out

    def cumsum(self, x: np.ndarray) -> np.ndarray:
        """Running sum within each key (NaN counts as 0)."""
        return self._scan(np.nan_to_num(x, nan=0.0), 0.0, np.cumsum)

    def cummax(self, x: np.ndarray) -> np.ndarray:
        return self._scan(x, -np.inf, np.maximum.accumulate)

    def last_at_or_before(self, lag: int) -> np.ndarray:
        """Index of the key's last row with session <= s - lag, or -1."""
        pos = np.searchsorted(self._ks, self._ks - lag, side="right") - 1
        return np.where((pos >= self.first) & (pos >= 0), pos, -1)


def trailing_sum(seg: Segments, running: np.ndarray, x: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``x`` over the key's rows in sessions [s - window, s - 1] (current row excluded)."""
    before = running - np.nan_to_num(x, nan=0.0)
    lag = seg.last_at_or_before(window + 1)
    return before - np.where(lag >= 0, running[np.maximum(lag, 0)], 0.0)
