"""Per-day aggregates and per-key running statistics, compiled with numba.

Why not SQL: with ~12,000 (entity, source) partitions and eleven running aggregates plus an
ASOF self-join for the trailing windows, DuckDB 2.0's window operator dominated the build (1M
score rows: ~16 s of the ~18 s query on the shared 2-core machine). Its hash aggregation of the
per-day groups was the next cost (2M score rows: ~1.5 s for ~3M groups, nearly one group per
input row), and its result still had to be sorted by (key, session) for the scans. Here the
exploded document rows are sorted once by (entity, session, source); one pass over that order
aggregates each day's documents and writes the rows straight into (entity, source, session)
order (a counting sort: keys are dense integers), and one more pass per key computes the
trailing and exponentially weighted columns. Definitions are those of :mod:`signals.features`;
the pandas reference in ``bench/features.py`` checks them.

Both kernels are compiled on first use and cached on disk (``cache=True``), so only the first
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


def running_features(key, s, n_docs, n_pos, n_neg, max_ing, cutoff, volume_window, surprise_window,
                     min_periods, zero_spread, half_lives):
    """Tone, shares, trailing and exponentially weighted columns, and ``known_at`` (epoch us).

    Rows must be sorted by (key, s); every key starts with no history. Returns (tone, share_pos,
    share_neg, abnormal_volume, tone_surprise, ew (half-lives x rows), known_at). See
    :func:`running_state` for the kernel and the state it can carry between builds.
    """
    out = running_state(key, s, n_docs, n_pos, n_neg, max_ing, cutoff, volume_window, surprise_window,
                        min_periods, zero_spread, half_lives, *fresh_state(key, len(half_lives)))
    return out[:7]


def fresh_state(key: np.ndarray, n_half_lives: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial states (``init_int``, ``init_float``, ``init_ew``) of "no history" for every run of ``key``."""
    runs = int(np.count_nonzero(key[1:] != key[:-1])) + 1 if len(key) else 0
    init_int = np.empty((3, runs), np.int64)
    init_int[0] = -1
    init_int[1] = -1
    init_int[2] = np.iinfo(np.int64).min
    return init_int, np.zeros((4, runs)), np.zeros((2 * n_half_lives, runs))


@njit(cache=True)
def running_state(key, s, n_docs, n_pos, n_neg, max_ing, cutoff, volume_window, surprise_window,
                  min_periods, zero_spread, half_lives, init_int, init_float, init_ew):
    """:func:`running_features` resumable: each run of ``key`` starts from a given state.

    Rows must be sorted by (key, s). A trailing sum is the key's running sum before the row
    minus its running sum before the window's first row (both accumulated one row at a time
    from the key's first row); each window's first row is a pointer that only moves forward.

    The *state before a row* is (s_first, s_prev, seen) as int64 (``s_prev`` = -1: no history),
    and the running sums (log1p(n_docs); count, sum, sum of squares of the defined tones) and
    the EW numerators and denominators. Run ``r`` starts from column ``r`` of ``init_int`` (3 x
    runs), ``init_float`` (4 x runs) and ``init_ew`` (2 half-lives x runs). Resuming a key at
    its first stored row f with s >= s0 - max(window) from the state stored before f gives, for
    every row with s >= s0, bit for bit what a pass over the key's whole history gives: the
    running sums are the same sequence of additions, and the window pointers only need rows
    from f on.

    Returns (tone, share_pos, share_neg, abnormal, surprise, ew (half-lives x rows), known_at,
    state before each row (int 3 x n, float 4 x n, ew 2H x n), state after each run's last row
    (int 3 x runs, float 4 x runs, ew 2H x runs)).
    """
    n = len(key)
    nh = len(half_lives)
    nan = np.nan
    tone = np.empty(n)
    share_pos = np.empty(n)
    share_neg = np.empty(n)
    lv = np.log1p(n_docs.astype(np.float64))
    abnormal = np.empty(n)
    surprise = np.empty(n)
    ew = np.empty((nh, n))  # one contiguous row per half-life: a frame column each
    known = np.empty(n, np.int64)
    runs = init_int.shape[1]
    b_int = np.empty((3, n), np.int64)
    b_float = np.empty((4, n))
    b_ew = np.empty((2 * nh, n))
    a_int = np.empty((3, runs), np.int64)
    a_float = np.empty((4, runs))
    a_ew = np.empty((2 * nh, runs))
    num = np.zeros(nh)
    den = np.zeros(nh)
    # 0.5 ** (gap / h) for the common short gaps, computed once instead of a power per row.
    decay = np.empty((nh, _DECAY_GAPS))
    for h in range(nh):
        for g in range(_DECAY_GAPS):
            decay[h, g] = 0.5 ** (g / half_lives[h])
    lag_v = lag_t = 0
    v_run = v_lag = c_run = c_lag = t_run = t_lag = q_run = q_lag = 0.0
    seen = 0
    s_first = s_prev = -1
    r = -1
    for i in range(n):
        if i == 0 or key[i] != key[i - 1]:
            if r >= 0:
                _save(a_int, a_float, a_ew, r, s_first, s_prev, seen, v_run, c_run, t_run, q_run, num, den, nh)
            r += 1
            lag_v = lag_t = i
            s_first, s_prev, seen = init_int[0, r], init_int[1, r], init_int[2, r]
            if s_prev < 0:
                s_first = s[i]
            # Running sums through row i-1 (_run) and through the row before the window (_lag):
            # log1p(n_docs); count, sum and sum of squares of the defined tones.
            v_run = v_lag = init_float[0, r]
            c_run = c_lag = init_float[1, r]
            t_run = t_lag = init_float[2, r]
            q_run = q_lag = init_float[3, r]
            for h in range(nh):
                num[h] = init_ew[h, r]
                den[h] = init_ew[nh + h, r]
        _save(b_int, b_float, b_ew, i, s_first, s_prev, seen, v_run, c_run, t_run, q_run, num, den, nh)
        polar = n_pos[i] + n_neg[i]
        x = (n_pos[i] - n_neg[i]) / polar if polar > 0 else nan
        tone[i] = x
        share_pos[i] = n_pos[i] / n_docs[i]
        share_neg[i] = n_neg[i] / n_docs[i]

        # Trailing windows: sessions [s - window, s - 1].
        while s[lag_v] < s[i] - volume_window:
            v_lag += lv[lag_v]
            lag_v += 1
        while s[lag_t] < s[i] - surprise_window:
            t = tone[lag_t]
            if t == t:
                c_lag += 1.0
                t_lag += t
                q_lag += t * t
            lag_t += 1
        age = s[i] - s_first
        abnormal[i] = lv[i] - (v_run - v_lag) / min(volume_window, age) if age >= min_periods else nan
        c, t1, t2 = c_run - c_lag, t_run - t_lag, q_run - q_lag
        surprise[i] = nan
        if c >= min_periods and x == x:
            std = np.sqrt(max((t2 - t1 * t1 / c) / (c - 1.0), 0.0))
            if std > zero_spread:
                surprise[i] = (x - t1 / c) / std

        # Weights 0.5 ** (sessions ago / h), applied recursively: no overflow on long histories.
        gap = s[i] - s_prev if s_prev >= 0 else 0
        for h in range(nh):
            d = decay[h, gap] if gap < _DECAY_GAPS else 0.5 ** (gap / half_lives[h])
            num[h] *= d
            den[h] *= d
            if x == x:
                num[h] += x
                den[h] += 1.0
            ew[h, i] = num[h] / den[h] if den[h] > 0 else nan

        seen = max(seen, max_ing[i])
        known[i] = max(seen, cutoff[i])
        v_run += lv[i]
        if x == x:
            c_run += 1.0
            t_run += x
            q_run += x * x
        s_prev = s[i]
    if r >= 0:
        _save(a_int, a_float, a_ew, r, s_first, s_prev, seen, v_run, c_run, t_run, q_run, num, den, nh)
    return (tone, share_pos, share_neg, abnormal, surprise, ew, known, b_int, b_float, b_ew, a_int, a_float, a_ew)


@njit(cache=True, inline="always")
def _save(o_int, o_float, o_ew, j, s_first, s_prev, seen, v_run, c_run, t_run, q_run, num, den, nh):
    o_int[0, j] = s_first
    o_int[1, j] = s_prev
    o_int[2, j] = seen
    o_float[0, j] = v_run
    o_float[1, j] = c_run
    o_float[2, j] = t_run
    o_float[3, j] = q_run
    for h in range(nh):
        o_ew[h, j] = num[h]
        o_ew[nh + h, j] = den[h]
