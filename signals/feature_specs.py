"""The daily features as declared specs: what each one outputs, the running state it keeps, its kernel.

The full build, the incremental build and the store's tables all iterate :data:`DAILY_FEATURES`,
so a new daily feature is one :class:`FeatureSpec` appended here plus its kernel (a numba pass in
:mod:`signals.scans`, or a column formula written in the spec). Specs run in list order over the
day rows of each (entity, source) key, sorted by session; a spec sees the columns of the specs
before it in ``rows.columns``.

A spec with running state names its state columns: the store keeps them before every row and
after every key's last row, and an incremental build resumes the kernel from them (see
:mod:`signals.store.build`). ``window``: the trailing sessions the kernel reads before a row, so a
resumed key starts at least that far back.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from signals import scans
from signals.config import FeatureConfig
from signals.scans import Daily

ZERO_SPREAD = 1e-6  # a trailing tone spread below this counts as zero (rolling-variance float noise)
BASE_STATE = ("s_first", "s_prev", "seen")  # the state every key keeps (:func:`signals.scans.base_state`)


@dataclass
class DayRows(Daily):
    """The day aggregates a spec computes from (:class:`~signals.scans.Daily`), with each key's
    run of rows (run r is rows [bounds[r], bounds[r + 1])), the base state before each row
    (``s_first``; ``s_prev`` -1: no history) and the columns of the specs run so far."""

    bounds: np.ndarray | None = None
    s_first: np.ndarray | None = None
    s_prev: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)


Names = tuple[str, ...] | Callable[[FeatureConfig], tuple[str, ...]]


@dataclass(frozen=True)
class FeatureSpec:
    """One daily feature.

    ``compute(rows, fc, init)`` returns (columns, before, after): the output columns in
    ``columns`` order (one array, or a sequence or 2-D array of them) and, for a feature with
    ``state``, the state before each row (state x rows) and after each key's last row (state x
    keys), starting key r from ``init[:, r]`` (zeros: no history); None for a stateless one.
    """

    name: str
    columns: Names
    compute: Callable
    state: Names = ()
    window: Callable[[FeatureConfig], int] = lambda fc: 0
    integer: bool = False  # BIGINT columns, compared exactly between versions

    def column_names(self, fc: FeatureConfig) -> tuple[str, ...]:
        return tuple(self.columns(fc) if callable(self.columns) else self.columns)

    def state_names(self, fc: FeatureConfig) -> tuple[str, ...]:
        return tuple(self.state(fc) if callable(self.state) else self.state)


def formula(fn: Callable[[DayRows], list[np.ndarray]]) -> Callable:
    """A stateless spec's ``compute`` from a column formula over the day rows."""
    return lambda rows, fc, init: (fn(rows), None, None)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, NaN where b is 0."""
    return np.divide(a, b, out=np.full(len(a), np.nan), where=b > 0)


DAILY_FEATURES: list[FeatureSpec] = [
    FeatureSpec("counts", ("n_docs", "n_pos", "n_neg"), formula(lambda r: [r.n_docs, r.n_pos, r.n_neg]), integer=True),
    FeatureSpec("mean_score", ("mean_score",), formula(lambda r: [r.mean_score])),
    FeatureSpec("tone", ("tone",), formula(lambda r: [_ratio(r.n_pos - r.n_neg, r.n_pos + r.n_neg)])),
    FeatureSpec("shares", ("share_pos", "share_neg"), formula(lambda r: [r.n_pos / r.n_docs, r.n_neg / r.n_docs])),
    FeatureSpec("dispersion", ("dispersion",), formula(lambda r: [r.dispersion])),
    FeatureSpec(
        "abnormal_volume", ("abnormal_volume",),
        lambda r, fc, init: scans.abnormal_volume(r.bounds, r.s, r.n_docs, r.s_first, fc.volume_window, fc.min_periods, init),
        state=("v_run",), window=lambda fc: fc.volume_window),
    FeatureSpec(
        "tone_surprise", ("tone_surprise",),
        lambda r, fc, init: scans.tone_surprise(r.bounds, r.s, r.columns["tone"], fc.surprise_window, fc.min_periods,
                                                ZERO_SPREAD, init),
        state=("c_run", "t_run", "q_run"), window=lambda fc: fc.surprise_window),
    FeatureSpec(
        "ew_tone", lambda fc: tuple(f"ew_tone_{h}" for h in fc.half_lives),
        lambda r, fc, init: scans.ew_tone(r.bounds, r.s, r.columns["tone"], r.s_prev,
                                          np.asarray(fc.half_lives, dtype=np.float64), init),
        state=lambda fc: tuple(f"ew_num_{h}" for h in fc.half_lives) + tuple(f"ew_den_{h}" for h in fc.half_lives)),
]


def integer_columns(fc: FeatureConfig) -> set[str]:
    return {c for spec in DAILY_FEATURES if spec.integer for c in spec.column_names(fc)}


def state_names(fc: FeatureConfig) -> list[str]:
    """Columns of the running state kept before each row and after each key's last row."""
    return [*BASE_STATE, *(c for spec in DAILY_FEATURES for c in spec.state_names(fc))]


def state_window(fc: FeatureConfig) -> int:
    """How many sessions before its first changed row a resumed key must start."""
    return max(spec.window(fc) for spec in DAILY_FEATURES)


def fresh_state(runs: int, fc: FeatureConfig) -> dict[str, np.ndarray]:
    """The state of "no history" for ``runs`` keys, by state column."""
    base = scans.fresh_base(runs)
    return dict(zip(BASE_STATE, base)) | {c: np.zeros(runs) for c in state_names(fc)[len(BASE_STATE):]}


def run_features(rows: DayRows, cutoff: np.ndarray, fc: FeatureConfig,
                 init: dict[str, np.ndarray]) -> tuple[np.ndarray, dict, dict]:
    """Every spec over ``rows`` (the base state first): fills ``rows.columns``.

    Returns (known_at in epoch us, state before each row, state after each key's last row), both
    by state column.
    """
    known, b, a = scans.base_state(rows.bounds, rows.s, rows.max_ing, cutoff, np.stack([init[c] for c in BASE_STATE]))
    before, after = dict(zip(BASE_STATE, b)), dict(zip(BASE_STATE, a))
    rows.s_first, rows.s_prev = b[0], b[1]
    for spec in DAILY_FEATURES:
        names = spec.state_names(fc)
        cols, b, a = spec.compute(rows, fc, np.stack([init[c] for c in names]) if names else None)
        rows.columns |= dict(zip(spec.column_names(fc), [cols] if getattr(cols, "ndim", 0) == 1 else cols))
        if names:
            before |= dict(zip(names, b))
            after |= dict(zip(names, a))
    return known, before, after
