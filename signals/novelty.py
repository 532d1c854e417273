"""Point-in-time novelty of documents per entity, from document embeddings (``score --embed``).

For a document d of entity e known at t::

    max_sim(d)  = max cosine(d, d')  over documents d' of e known strictly before t and within
                  the trailing ``window_sessions`` sessions
    novelty(d)  = 1 - max_sim(d)          (1 when there is no such d'; max_sim is then NaN)
    stale(d)    = novelty(d) < threshold  (near-duplicates: reprints, retweets, list headlines)

**Known time.** ``time_col`` names the instant the engine may use the document (DESIGN.md). A
frame with a ``known_at`` column uses it; otherwise ``published_at`` (the Score rows' column).
For a live feed pass ``known_at = max(published_at, ingested_at)``; for a historical backfill
``ingested_at`` is the scoring job's own time, the same for every row, so it must not be used.

**Window.** Sessions of the exchange calendar (``signals.sessions``, the same cutoff rule as the
features: a document counts for the first session whose 16:00 New York cutoff it precedes).
An earlier document d' is in d's window when ``session(d) - session(d') < window_sessions``:
the ``window_sessions`` sessions ending with d's own (default 5 = about one trading week).

**Ties.** Documents with the same known instant do not see each other (neither is "before"
the other); among earlier documents with equal similarity the nearest is the first in
(known time, doc_id) order. Nothing at or after a document's own known time is used, so adding
or changing later documents never changes an earlier row.

**Entities.** A frame with an ``entity`` column is used as is (one row per document and entity);
one with an ``entities`` list column is exploded, and a document with no entities is scored
under ``MARKET_ENTITY`` (against other market-wide documents). Each (document, entity) gets its
own novelty.

**Algorithm.** Rows are sorted by (entity, known time, doc_id); for each row the valid earlier
rows are one contiguous index range ``[lo, tie_start)`` (same entity, in the window, strictly
earlier). Query blocks of consecutive rows (height ~ the window's length,
between ``MIN_BLOCK_ROWS`` and ``block_rows``) are multiplied (float32 BLAS) with the union of
their ranges, masked to each row's range, and reduced with a max: work is
O(n * (block + window)) and memory O(block * columns), never all pairs. The normalized vectors are
copied once in sorted order (n x dim float32: 1.5 GB at 1M x 384) so that blocks are slices.

**Stale threshold** (``STALE_THRESHOLD = 0.15``, i.e. stale when max_sim > 0.85), measured with
``bench/novelty.py --corpora --stocknet-max 8000`` on MiniLM embeddings (numbers in
``THRESHOLD_MEASURED``):

- StockNet, ticker GOOG (7,595 tweets, whole ticker so its windows are complete): the 38 retweets
  whose original (an original tweet starting with the retweet's body) is in the data have a
  cosine to it of 0.87 at the 1st percentile, 0.91 at the 5th, 0.97 median: 0.15 catches all of
  them (0.10 catches 95%, 0.05 84%). Originals flagged stale: 8.0% (mostly bots reposting one
  text: their max_sim is 0.999 at the 99th percentile); retweets flagged: 65%.
- Dated analyst-ratings headlines (7,858): random pairs of headlines have cosine 0.59 at the 99th
  and 0.86 at the 99.9th percentile, so 0.85 sits at about one false pair in a thousand. Benzinga's
  templated "N Stocks Moving In <day>'s <session> Session" headlines are 0.81 median to each other
  (0.87 at the 75th percentile): about a third of such pairs are stale at 0.15; per ticker within
  5 sessions they rarely repeat (5.8% of them stale against 5.1% of other headlines).

A lower threshold (0.10) misses ~5% of retweets; a higher one (0.20-0.30) starts flagging
distinct stories on one theme (20% of StockNet originals at 0.30).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nlp.contracts import MARKET_ENTITY

if TYPE_CHECKING:
    from signals.sessions import Sessions

DEFAULT_WINDOW_SESSIONS = 5
STALE_THRESHOLD = 0.15
BLOCK_ROWS = 512  # tallest query block
MIN_BLOCK_ROWS = 64  # shortest (sparse entities: several of them share one block)
MAX_COLUMNS = 8192  # columns per matrix product (bounds memory for entities with very long windows)
THRESHOLD_MEASURED = {  # bench/novelty.py --corpora --stocknet-max 8000 (see the module docstring)
    "stocknet_goog_retweet_vs_original_cos": {"n": 38, "p01": 0.872, "p05": 0.908, "p50": 0.966},
    "stocknet_goog_stale_share_at_0.15": {"originals": 0.080, "retweets": 0.653, "retweet_pairs_caught": 1.0},
    "news_random_pair_cos": {"p99": 0.585, "p999": 0.863},
    "news_stocks_moving_in_pair_cos": {"p25": 0.751, "p50": 0.805, "p75": 0.865},
}

OUTPUT_COLUMNS = ["doc_id", "entity", "novelty", "max_sim", "nearest_doc_id", "stale"]


def _known_times(frame: pd.DataFrame, time_col: str | None) -> pd.Series:
    col = time_col or ("known_at" if "known_at" in frame.columns else "published_at")
    if col not in frame.columns:
        raise ValueError(f"novelty needs a {col!r} column (the instant each document is known)")
    t = pd.to_datetime(frame[col])
    if not isinstance(t.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"{col} must be timezone-aware, got dtype {t.dtype}")
    if t.isna().any():
        raise ValueError(f"{col} has {int(t.isna().sum())} missing values")
    return t.dt.tz_convert("UTC")


def _session_ordinals(t: pd.Series, sessions) -> np.ndarray:
    return sessions.index(sessions.assign(t)).astype(np.int64)


def novelty(
    frame: pd.DataFrame,
    *,
    window_sessions: int = DEFAULT_WINDOW_SESSIONS,
    threshold: float = STALE_THRESHOLD,
    time_col: str | None = None,
    sessions: Sessions | None = None,
    block_rows: int = BLOCK_ROWS,
) -> pd.DataFrame:
    """Novelty of each (document, entity); a pure function of ``frame`` (see the module docstring).

    ``frame``: ``doc_id``, ``entity`` (or an ``entities`` list column), a known-time column and
    ``embedding`` (Arrow fixed-size lists, lists or arrays of floats; normalized or not).
    Returns ``doc_id, entity, novelty, max_sim, nearest_doc_id, stale`` in the frame's row order
    (exploded entities in list order). ``sessions``: the :class:`~signals.sessions.Sessions`
    calendar the window counts in (default: the engine's).
    """
    from nlp.embeddings import embedding_matrix
    from signals.sessions import DEFAULT_SESSIONS

    if window_sessions < 1:
        raise ValueError("window_sessions must be >= 1")
    emb = embedding_matrix(frame["embedding"])
    if emb.ndim != 2 or len(emb) != len(frame):
        raise ValueError("embedding must hold one vector per row")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1)
    inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-30), 0.0).astype(np.float32)

    times = _known_times(frame, time_col)
    times_ns = pd.DatetimeIndex(times).asi8
    keys = pd.DataFrame({"doc_id": frame["doc_id"].astype(str).to_numpy(), "src": np.arange(len(frame))})
    if "entity" in frame.columns:
        keys["entity"] = frame["entity"].astype(str).to_numpy()
    elif "entities" in frame.columns:
        keys["entity"] = [list(e) if e is not None and len(e) else [MARKET_ENTITY] for e in frame["entities"]]
        keys = keys.explode("entity", ignore_index=True)
    else:
        raise ValueError("novelty needs an 'entity' or an 'entities' column")
    if keys.duplicated(["doc_id", "entity"]).any():
        raise ValueError("duplicate (doc_id, entity) rows")
    n = len(keys)
    out = pd.DataFrame({"doc_id": keys["doc_id"].to_numpy(), "entity": keys["entity"].to_numpy(),
                        "novelty": np.ones(n), "max_sim": np.full(n, np.nan), "nearest_doc_id": None,
                        "stale": np.zeros(n, bool)})
    if n == 0:
        return out[OUTPUT_COLUMNS]

    ent, _ = pd.factorize(keys["entity"], sort=True)
    src = keys["src"].to_numpy()
    t_ns = times_ns[src]
    sess = _session_ordinals(times.reset_index(drop=True), sessions or DEFAULT_SESSIONS)[src]
    doc_rank = pd.factorize(keys["doc_id"], sort=True)[0]
    order = np.lexsort((doc_rank, t_ns, ent))
    ent_s, t_s, sess_s = ent[order], t_ns[order], sess[order]
    src_s = src[order]

    # lo: first row of the same entity whose session is within the window.
    span = int(sess_s.max()) + window_sessions + 2
    key = ent_s.astype(np.int64) * span + (sess_s + window_sessions)
    lo = np.searchsorted(key, ent_s.astype(np.int64) * span + (sess_s + 1), side="left")
    # tie: first row of the same entity with the same known instant (rows before it are strictly earlier).
    idx = np.arange(n)
    change = np.ones(n, bool)
    change[1:] = (ent_s[1:] != ent_s[:-1]) | (t_s[1:] != t_s[:-1])
    tie = np.maximum.accumulate(np.where(change, idx, 0))

    # Normalized vectors in sorted order: every block's queries and columns are contiguous slices.
    unit = np.empty((n, emb.shape[1]), np.float32)
    for k in range(0, n, 65536):  # gathered and normalized in chunks: no second full temporary
        rows = src_s[k:k + 65536]
        unit[k:k + 65536] = emb[rows] * inv[rows, None]
    best = np.full(n, -np.inf, np.float32)
    arg = np.full(n, -1, np.int64)
    a = 0
    while a < n:
        # Block height ~ the window's length at its first row: a block costs rows x (rows + window),
        # so blocks much taller than the window waste the masked upper triangle.
        b = min(a + int(np.clip(tie[a] - lo[a], MIN_BLOCK_ROWS, block_rows)), n)
        q_lo, q_hi = lo[a:b], tie[a:b]
        c0, c1 = int(q_lo.min()), int(q_hi.max())
        if c1 > c0:
            q = unit[a:b]
            for k0 in range(c0, c1, MAX_COLUMNS):
                k1 = min(k0 + MAX_COLUMNS, c1)
                s = q @ unit[k0:k1].T
                g = np.arange(k0, k1)
                s[(g[None, :] < q_lo[:, None]) | (g[None, :] >= q_hi[:, None])] = -np.inf
                j = s.argmax(axis=1)
                m = s[np.arange(b - a), j]
                better = m > best[a:b]  # strict: an equal later column never replaces the first
                best[a:b] = np.where(better, m, best[a:b])
                arg[a:b] = np.where(better, k0 + j, arg[a:b])
        a = b

    found = arg >= 0
    max_sim = np.where(found, np.minimum(best, 1.0).astype(np.float64), np.nan)
    nov = np.where(found, 1.0 - max_sim, 1.0)
    nearest = np.full(n, None, dtype=object)
    nearest[found] = keys["doc_id"].to_numpy()[order[arg[found]]]
    inv_order = np.empty(n, np.int64)
    inv_order[order] = idx
    out["max_sim"] = max_sim[inv_order]
    out["novelty"] = nov[inv_order]
    out["nearest_doc_id"] = nearest[inv_order]
    out["stale"] = out["novelty"].to_numpy() < threshold
    return out[OUTPUT_COLUMNS]
