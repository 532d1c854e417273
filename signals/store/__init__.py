"""The feature store: one DuckDB file with documents, scores and versioned daily features.

Tables (every row carries ``ingested_at``, the instant the store learned it):

* ``documents`` — Document contract rows plus ``feed``; a corrected document is the same
  identity added again later (both versions are kept).
* ``scores`` — Score contract rows plus ``feed``; a re-scored/corrected document is its
  identity with a later ``ingested_at``.
* ``daily_features`` — *versioned* feature rows: each :meth:`FeatureStore.build` at instant T
  computes features from the scores ingested by T and appends only the rows that are new or
  changed (floats beyond 1e-12 relative: parallel sums differ in the last bits between runs),
  stamped ``ingested_at = T``; keys that disappeared get a tombstone (``deleted = true``).
  Reading ``as_of=T`` takes, per (date, entity, source), the latest version stamped at or
  before T, so it returns what the build at T returned — later, late or corrected documents
  cannot leak into it.
* ``builds`` — one row per build (instant, rows written, feature rows current after it).

**Incremental builds** (:meth:`FeatureStore.build`, ``incremental=True``, the default) give the
versions a full build would write while reading a small part of the store. State, kept in the
same transaction as the build (so a failed or killed build leaves it as it was):

* ``scores.batch`` — the number of the ``add_scores`` call that stored a row (old rows: 0).
* ``build_state`` — the previous build's ``as_of``, ``model_id``, highest batch, and config
  (feature and session settings, and the feature columns).
* ``day_aggregates`` — one row per current feature row (entity, source, session number ``s``):
  the feature values as last stored, the day's ``max_ing``, and the *running state before the
  row* (``s_first``, ``s_prev``, ``seen`` = running max of ``ingested_at``, running sums of
  log1p(n_docs) and of the count/sum/sum of squares of tones, EW numerators/denominators per
  half-life: the state columns the specs of :mod:`signals.feature_specs` name). Written in
  session order, so reads of recent sessions skip older row groups.
* ``key_tail`` — per (entity, source), the running state after its last row.
* ``doc_latest`` — identities with several versions, and their current version's ``ingested_at``.

A build at T after one at P: (1) the documents with a row visible at T that was not at P
(a later batch — a backfill stamped in the past included — or stamped after P: future-stamped
rows, late arrivals) and all their versions give the sessions S to re-aggregate (a correction's
old version leaves its session, the new one enters its own); (2) every current document of S is
aggregated again (the same kernels as a full build) and compared with the stored cells; the
(entity, source) keys with a changed, new or vanished cell — ``__MARKET__`` and the all-sources
rows included — are rerun from their first changed session s0, resuming from the state stored
before their first row in [s0 - window, s0) (or their tail state): the running sums are the same
additions in the same order as a full pass, so trailing windows, EW tones (infinite memory) and
``known_at`` come out bit for bit; (3) those rows are compared with the current rows kept in
``day_aggregates`` (not with a scan of ``daily_features``), changed ones appended as versions,
vanished ones tombstoned. Why running state rather than reading each touched key's whole
history: a day's documents touch nearly every key, so rereading histories costs about a full
build. Day means and dispersions are sums whose order may differ between runs: equal within
the change tolerance below, as for two full builds. A store without the state (the first build,
or one written before this change: the tables are created on open, ``batch`` added as 0), a
build with another model or config, or ``incremental=False`` does a full build and resets it.

**Document identity** (DESIGN.md) is ``(feed, source, doc_id)``. ``feed`` names the feed or
input a document was read from: the rows' own ``feed`` column when they have one, else the
``feed`` given to :meth:`FeatureStore.add_scores` (``altsignal features build --feed``), else
the document's source. So an id reused by another source or feed is another document and never
replaces one; a corrected document from the same feed (same identity, later ``ingested_at``)
replaces its earlier version as of its ``ingested_at``. Two vendors of one source whose ids may
collide need a ``--feed`` each; successive deliveries of one vendor share one feed, or their
corrections would not replace anything.

**Ingestion is idempotent.** A document version (all rows of one identity and model with one
``ingested_at``) that the store already holds, unit for unit, as its version current at that
``ingested_at`` is skipped: re-adding the same score files (after an interruption, or on every
re-run) changes nothing, even when the rows are stamped "now". Rows that cannot be used
(no id, source or model, no or out-of-calendar ``published_at``, probabilities that are not a
distribution) are not stored: the whole document version goes to the returned rejects with the
reason, so one bad row can never make later builds fail.

Every write runs in one transaction (a failed write leaves the file as it was), and
:meth:`FeatureStore.transaction` groups several (``features build`` adds and builds in one).
Parquet exports are written to a temporary file and renamed. DuckDB lets one process write a
store file at a time: another process gets :class:`~core.errors.StoreBusyError` (exit 3), and a
file that is not a readable DuckDB store gives :class:`StoreDamagedError` (exit 3).
"""
from __future__ import annotations

from typing import Self

from signals.store.base import TABLES, StoreDamagedError, StoreError, check_range, new_store, store_errors
from signals.store.build import BuildEngine
from signals.store.ingest import IngestResult, StoreIngest
from signals.store.reader import DECAYED_EVENT_COLUMNS, StoreReader

__all__ = ["DECAYED_EVENT_COLUMNS", "TABLES", "FeatureStore", "IngestResult", "StoreDamagedError", "StoreError",
           "check_range", "new_store", "store_errors"]


class FeatureStore(StoreIngest, BuildEngine, StoreReader):
    """Point-in-time feature store in one DuckDB file (``cfg.db_path`` by default).

    Its parts share the open file (:class:`~signals.store.base.StoreBase`): ingest
    (:class:`~signals.store.ingest.StoreIngest`), the build engine
    (:class:`~signals.store.build.BuildEngine`) and the reader
    (:class:`~signals.store.reader.StoreReader`). ``sessions``: the session calendar documents
    are placed in (default: the one of ``cfg.sessions``).
    """

    def __enter__(self) -> Self:
        return self
