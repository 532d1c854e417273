"""Per-day aggregates and per-key running statistics, compiled with numba.

Why not SQL: with ~12,000 (entity, source) partitions and eleven running aggregates plus an
ASOF self-join for the trailing windows, DuckDB 2.0's window operator dominated the build (1M
score rows: ~16 s of the ~18 s query on the shared 2-core machine). Its hash aggregation of the
per-day groups was the next cost (2M score rows: ~1.5 s for ~3M groups, nearly one group per
input row), and its result still had to be sorted by (key, session) for the scans. Here the
exploded document rows are sorted once by (entity, session, source); one pass over that order
aggregates each day's documents and writes the rows straight into (entity, source, session)
order (a counting sort: keys are dense integers). Then each running feature is one pass over the
key-sorted rows (its kernel, named by its spec in :mod:`signals.feature_specs`), after the pass
of the state all features share (:func:`base_state`). A pass over a few million day rows costs
milliseconds, so one kernel per feature is about as fast as one fused loop, and a new feature is
a new kernel here, leaving the others alone. Definitions are those of :mod:`signals.features`;
the pandas reference in ``bench/features.py`` checks them.

The kernels are compiled on first use and cached on disk (``cache=True``), so only the first
build after an install pays the compile time (a few seconds).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

_DECAY_GAPS = 256  # session gaps with a precomputed exponential decay factor


@dataclass
class Daily:
    """One row per (entity, source, session) with documents, sorted by key then session.

    ``key = eid * n_sources1 + sid`` (``sid`` 0 is the all-sources row).
    """

    eid: np.ndarray
    sid: np.ndarray
    s: np.ndarray
    n_docs: np.ndarray
    n_pos: np.ndarray
    n_neg: np.ndarray
    mean_score: np.ndarray
    dispersion: np.ndarray
    max_ing: np.ndarray


def aggregate_days(eid: np.ndarray, sid: np.ndarray, s: np.ndarray, ing: np.ndarray, score: np.ndarray,
                   polarity: np.ndarray, n_entities: int, n_sources: int) -> Daily:
    """Aggregate exploded document rows (one per document and entity) per (entity, source, session).

    ``sid`` counts sources from 1; the all-sources rows get ``sid`` 0. ``polarity`` is +1 for a
    positive document, -1 for a negative one, 0 otherwise.
    """
    s_lo = int(s.min()) if len(s) else 0
    # Bit fields, not products: the kernel then splits keys with shifts, not integer divisions.
    sid_bits = max(n_sources, 1).bit_length()
    day_bits = max((int(s.max()) - s_lo) if len(s) else 0, 1).bit_length()
    packed = (((eid.astype(np.int64) << day_bits) | (s - s_lo)) << sid_bits) | sid
    keys, order = _sort_with_order(packed)
    # Gather the payload into key order first: numpy's take overlaps the cache misses of these
    # random reads far better than the aggregation loop would.
    out = _aggregate(keys, ing.take(order), score.take(order), polarity.take(order),
                     sid_bits, day_bits, s_lo, n_entities * (n_sources + 1), n_sources + 1)
    return Daily(*out)


def _sort_with_order(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``packed`` (non-negative) sorted, and the row order that sorts it.

    When the keys leave room, the row number rides in the low bits of one plain ``np.sort``
    (several times faster than ``argsort``: 2M rows, 0.05 s against 0.22 s); else ``argsort``.
    """
    bits = max(len(packed) - 1, 1).bit_length()
    if len(packed) == 0 or int(packed.max()) < (1 << (62 - bits)):
        both = np.sort((packed << bits) | np.arange(len(packed), dtype=np.int64))
        return both >> bits, both & ((1 << bits) - 1)
    order = np.argsort(packed)
    return packed[order], order


@njit(cache=True)
def _aggregate(keys, ing, score, polarity, sid_bits, day_bits, s_lo, n_keys, n_src1):
    # keys = (eid, session - s_lo, sid) bit fields, sorted: a day's group for one source is a run
    # inside the run of its (entity, session); sessions come in order within each source.
    n = len(keys)
    sid_mask = (1 << sid_bits) - 1
    day_mask = (1 << day_bits) - 1
    # Pass 1: groups per output key (eid, sid), to place each key's days contiguously (a
    # counting sort by key: the output comes sorted by entity, source, session).
    count = np.zeros(n_keys, dtype=np.int64)
    for i in range(n):
        k = keys[i]
        new_day = i == 0 or (k >> sid_bits) != (keys[i - 1] >> sid_bits)
        base = (k >> sid_bits >> day_bits) * n_src1
        if new_day:
            count[base] += 1  # the all-sources row
        if new_day or k != keys[i - 1]:
            count[base + (k & sid_mask)] += 1
    pos = np.cumsum(count) - count
    m = count.sum()
    o_eid = np.empty(m, np.int32)
    o_sid = np.empty(m, np.int32)
    o_s = np.empty(m, np.int32)
    o_n = np.empty(m, np.int64)
    o_pos = np.empty(m, np.int64)
    o_neg = np.empty(m, np.int64)
    o_mean = np.empty(m, np.float64)
    o_disp = np.empty(m, np.float64)
    o_ing = np.empty(m, np.int64)
    i = 0
    while i < n:
        day_key = keys[i] >> sid_bits
        e, day = day_key >> day_bits, (day_key & day_mask) + s_lo
        j = i
        while j < n and (keys[j] >> sid_bits) == day_key:
            j += 1
        a = i
        while a < j:
            b = a
            while b < j and keys[b] == keys[a]:
                b += 1
            src = keys[a] & sid_mask
            w = pos[e * n_src1 + src]
            pos[e * n_src1 + src] += 1
            _write_group(a, b, w, e, src, day, ing, score, polarity,
                         o_eid, o_sid, o_s, o_n, o_pos, o_neg, o_mean, o_disp, o_ing)
            a = b
        w = pos[e * n_src1]
        pos[e * n_src1] += 1
        _write_group(i, j, w, e, 0, day, ing, score, polarity,
                     o_eid, o_sid, o_s, o_n, o_pos, o_neg, o_mean, o_disp, o_ing)
        i = j
    return o_eid, o_sid, o_s, o_n, o_pos, o_neg, o_mean, o_disp, o_ing


@njit(cache=True, inline="always")
def _write_group(a, b, w, e, src, day, ing, score, polarity,
                 o_eid, o_sid, o_s, o_n, o_pos, o_neg, o_mean, o_disp, o_ing):
    """Aggregate rows [a, b) into output row w."""
    total = 0.0
    npos = 0
    nneg = 0
    latest = ing[a]
    for r in range(a, b):
        total += score[r]
        npos += polarity[r] > 0
        nneg += polarity[r] < 0
        latest = max(latest, ing[r])
    cnt = b - a
    mean = total / cnt
    sq = 0.0  # second pass around the mean: exact 0 for equal scores, no cancellation
    for r in range(a, b):
        d = score[r] - mean
        sq += d * d
    o_eid[w] = e
    o_sid[w] = src
    o_s[w] = day
    o_n[w] = cnt
    o_pos[w] = npos
    o_neg[w] = nneg
    o_mean[w] = mean
    o_disp[w] = np.sqrt(sq / cnt)
    o_ing[w] = latest


def run_bounds(key: np.ndarray) -> np.ndarray:
    """Where each run of equal ``key`` values starts, and the end: run r is rows [b[r], b[r + 1])."""
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1], True]) if len(key) else np.zeros(1, np.int64)


def fresh_base(runs: int) -> np.ndarray:
    """The base state (s_first, s_prev, seen) of "no history" for ``runs`` keys (3 x runs)."""
    init = np.empty((3, runs), np.int64)
    init[0] = -1
    init[1] = -1
    init[2] = np.iinfo(np.int64).min
    return init


# Every running kernel below takes rows sorted by (key, s), the bounds of each key's run of rows
# and the state each run starts from (column r for run r), and returns its columns, the state
# before each row and the state after each run's last row. Resuming a key at its first stored
# row f with s >= s0 - window from the state stored before f gives, for every row with s >= s0,
# bit for bit what a pass over the key's whole history gives: the running sums are the same
# sequence of additions, and a trailing window's first row is a pointer that only moves forward
# from f.

@njit(cache=True)
def base_state(bounds, s, max_ing, cutoff, init):
    """``known_at`` (epoch us) and the state every feature shares: (s_first, s_prev, seen).

    ``s_prev`` = -1 means no history (``s_first`` is then the row's own session); ``seen`` is the
    running max of ``max_ing``. Returns (known_at, before (3 x n), after (3 x runs)).
    """
    n = len(s)
    known = np.empty(n, np.int64)
    before = np.empty((3, n), np.int64)
    after = np.empty_like(init)
    for r in range(len(bounds) - 1):
        s_first, s_prev, seen = init[0, r], init[1, r], init[2, r]
        if s_prev < 0:
            s_first = s[bounds[r]]
        for i in range(bounds[r], bounds[r + 1]):
            before[0, i], before[1, i], before[2, i] = s_first, s_prev, seen
            seen = max(seen, max_ing[i])
            known[i] = max(seen, cutoff[i])
            s_prev = s[i]
        after[0, r], after[1, r], after[2, r] = s_first, s_prev, seen
    return known, before, after


@njit(cache=True)
def abnormal_volume(bounds, s, n_docs, s_first, window, min_periods, init):
    """log1p(n_docs) minus its mean over sessions [s - window, s - 1] (no documents = 0).

    State: the running sum of log1p(n_docs) before the row. Returns (abnormal, before, after).
    """
    lv = np.log1p(n_docs.astype(np.float64))
    out = np.empty(len(s))
    before = np.empty((1, len(s)))
    after = np.empty_like(init)
    for r in range(len(bounds) - 1):
        run = lagged = init[0, r]
        lag = bounds[r]
        for i in range(bounds[r], bounds[r + 1]):
            before[0, i] = run
            while s[lag] < s[i] - window:
                lagged += lv[lag]
                lag += 1
            age = s[i] - s_first[i]
            out[i] = lv[i] - (run - lagged) / min(window, age) if age >= min_periods else np.nan
            run += lv[i]
        after[0, r] = run
    return out, before, after


@njit(cache=True)
def tone_surprise(bounds, s, tone, window, min_periods, zero_spread, init):
    """(tone - mean) / std of the key's defined tones over sessions [s - window, s - 1].

    State: the running count, sum and sum of squares of the defined tones before the row.
    Returns (surprise, before (3 x n), after (3 x runs)).
    """
    out = np.full(len(s), np.nan)
    before = np.empty((3, len(s)))
    after = np.empty_like(init)
    for r in range(len(bounds) - 1):
        c_run = c_lag = init[0, r]
        t_run = t_lag = init[1, r]
        q_run = q_lag = init[2, r]
        lag = bounds[r]
        for i in range(bounds[r], bounds[r + 1]):
            before[0, i], before[1, i], before[2, i] = c_run, t_run, q_run
            while s[lag] < s[i] - window:
                t = tone[lag]
                if t == t:
                    c_lag += 1.0
                    t_lag += t
                    q_lag += t * t
                lag += 1
            x = tone[i]
            if x != x:
                continue
            c, t1, t2 = c_run - c_lag, t_run - t_lag, q_run - q_lag
            if c >= min_periods:
                std = np.sqrt(max((t2 - t1 * t1 / c) / (c - 1.0), 0.0))
                if std > zero_spread:
                    out[i] = (x - t1 / c) / std
            c_run += 1.0
            t_run += x
            q_run += x * x
        after[0, r], after[1, r], after[2, r] = c_run, t_run, q_run
    return out, before, after


@njit(cache=True)
def ew_tone(bounds, s, tone, s_prev, half_lives, init):
    """Mean of past and current tones weighted by 0.5 ** (sessions ago / h), per half-life h.

    Applied recursively (no overflow on long histories). State: the numerators then the
    denominators (2 half-lives). Returns (ew (half-lives x n), before (2H x n), after (2H x runs)).
    """
    nh = len(half_lives)
    out = np.empty((nh, len(s)))  # one contiguous row per half-life: a frame column each
    before = np.empty((2 * nh, len(s)))
    after = np.empty_like(init)
    # 0.5 ** (gap / h) for the common short gaps, computed once instead of a power per row.
    decay = np.empty((nh, _DECAY_GAPS))
    for h in range(nh):
        for g in range(_DECAY_GAPS):
            decay[h, g] = 0.5 ** (g / half_lives[h])
    for r in range(len(bounds) - 1):
        state = init[:, r].copy()  # numerators, then denominators
        for i in range(bounds[r], bounds[r + 1]):
            before[:, i] = state
            x = tone[i]
            gap = s[i] - s_prev[i] if s_prev[i] >= 0 else 0
            for h in range(nh):
                d = decay[h, gap] if gap < _DECAY_GAPS else 0.5 ** (gap / half_lives[h])
                state[h] *= d
                state[nh + h] *= d
                if x == x:
                    state[h] += x
                    state[nh + h] += 1.0
                out[h, i] = state[h] / state[nh + h] if state[nh + h] > 0 else np.nan
        after[:, r] = state
    return out, before, after
