"""``altsignal run --as-of T``: one day of operation on a store that persists; ``altsignal replay``.

The backtest run (``altsignal.orchestrator``) recomputes what its inputs determine. Daily operation
instead keeps one store and adds to it: each run at ``as_of`` takes the documents that became
known since the last run, scores only those (texts any earlier job scored come from the
cross-job score cache), adds them to the store and builds the new features incrementally
(``FeatureStore.build``: earlier ``as_of`` reads still reproduce exactly), asks the saved
network for the allocation (refitted on ``walkforward.refit_every``, ``altsignal.operate``) and
checks the day's health (``signals.health``). Layout of ``<output_dir>/daily/``::

    state.json                      the last as_of that completed, and a record per run
    batches/<as_of>/<input>.parquet the documents that became known in (last as_of, as_of]
    batches/<as_of>/documents.json  their counts, written last: the batch is then fixed
    batches/<as_of>/scores/<input>/ their scoring job (resumable)
    features.duckdb                 the store
    timing/                         model/ (safetensors + JSON) and allocations.parquet
    health/                         health.md, health.png, health.parquet (one block per session)

Which documents are new: with ``documents.arrival = "published"`` (historical corpora) those
published in (last as_of, as_of], stamped as ingested when published; with ``"now"`` (a live
feed) those whose identity the store does not hold yet, stamped ``as_of``.

Every step is idempotent, so a run killed at any point (kill -9) finishes correctly when re-run
with the same ``as_of``: the batch file is rewritten whole (same content), the scoring job
resumes from its finished chunks, the store skips rows it already holds and a build is one
transaction, the allocation history replaces the block of its ``as_of``, and ``state.json`` moves
on only after everything else. A re-run of a completed ``as_of`` finds no new document and
changes nothing.

Refusals and rollback: an ``as_of`` more than a day after the clock or more than 7 days after the
latest input document is refused before anything is written (``core.instants``; ``--allow-future-as-of``
lets it through). The store, the model, the allocations and the health history change on a staged
copy (``altsignal.stage_cache.staged``) moved into place only when the day completes: a failed day
leaves them as they were. :func:`rollback` (``altsignal rollback --to``) takes the folder back to
an earlier completed run.

Replay (:func:`replay`) runs one day per session over a historical corpus, each at the session's
cutoff; ``tests/test_daily.py`` proves that its final store and allocation history equal one run
at the last ``as_of`` that decides every session itself (``decide_from``).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pandas as pd

from altsignal.run_config import RunConfig, stage_timing_config
from core.atomic import atomic_write_text
from core.errors import UsageError
from core.rejects import Rejects
from core.threads import set_threads
from timing.config import TimingConfig

log = logging.getLogger(__name__)

DAILY = "daily"
STATE = "state.json"
# What a day changes besides its own batch: staged together (a failed day leaves them as they were).
# A stale DuckDB write-ahead log must never meet a newer store file, so the logs come first.
DAY_OUTPUTS = ("features.duckdb.wal", "text.duckdb.wal", "features.duckdb", "text.duckdb", "timing", "health")


def daily_dir(cfg: RunConfig) -> Path:
    return Path(cfg.output_dir) / DAILY


def read_state(folder: Path) -> dict:
    path = Path(folder) / STATE
    return json.loads(path.read_text()) if path.exists() else {"as_of": None, "runs": []}


def stamp(as_of: pd.Timestamp) -> str:
    """A folder name for an instant: ``20170228T210000Z``."""
    return as_of.tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ")


def _new_documents(cfg: RunConfig, folder: Path, since: pd.Timestamp | None, as_of: pd.Timestamp,
                   batch: Path, allow_future: bool = False) -> dict:
    """Write each input's newly known documents to ``batch/<input>.parquet``; return counts.

    A batch is fixed once complete (``batch/documents.json``): a re-run after a kill reuses it, so
    its scoring jobs resume on the same files even when the store has meanwhile taken its rows.
    Every input is read before the batch folder is made: an ``as_of`` too far past the clock or
    the latest input document (:func:`core.instants.check_not_ahead`) is refused with nothing written.
    """
    from altsignal.orchestrator import read_input
    from core.instants import check_not_ahead
    from nlp.readers.documents import write_documents
    from signals.store import FeatureStore

    marker = batch / "documents.json"
    if marker.exists():
        return json.loads(marker.read_text())

    held: dict[str, set] = {}
    if cfg.documents.arrival == "now" and (folder / "features.duckdb").exists():
        with FeatureStore(folder / "features.duckdb", cfg.signals, read_only=True) as store:
            rows = store.con.execute("SELECT feed, doc_id FROM documents").fetchall()
        for feed, doc_id in rows:
            held.setdefault(feed, set()).add(doc_id)
    read = {}
    for item in cfg.documents.inputs:
        rejects = Rejects()
        read[item.name] = (item, rejects, *read_input(cfg, item, rejects))
    latest = max((d["published_at"].max() for _, _, d, _ in read.values() if len(d)), default=None)
    check_not_ahead(as_of, latest, "input document", allow_future)
    batch.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (item, rejects, docs, source) in read.items():
        keep = pd.Series(True, index=docs.index)
        if cfg.documents.arrival == "published":
            keep &= docs["published_at"] <= as_of
            if since is not None:
                keep &= docs["published_at"] > since
        else:
            keep &= ~docs["doc_id"].isin(held.get(name, set()))
        new = docs[keep].reset_index(drop=True)
        # the instant the store learns each document: fixed, so the batch file is too
        new["ingested_at"] = new["published_at"] if cfg.documents.arrival == "published" else as_of
        write_documents([new], batch / f"{name}.parquet")
        rejects.write(batch / f"{name}.rejects.jsonl")
        out[name] = {"source": source, "documents": len(new), "rejected": len(rejects)}
    atomic_write_text(marker, json.dumps(out, indent=1) + "\n")
    return out


def _score_batch(cfg: RunConfig, batch: Path, counts: dict, model: Path) -> dict:
    from altsignal.orchestrator import DOCUMENT_MAPPING
    from nlp.scoring.config import EngineConfig, JobConfig
    from nlp.scoring.job import JobSpec, run_job

    job_cfg = JobConfig(engine=EngineConfig(numeric=cfg.scoring.numeric), engine_kind=cfg.scoring.engine)
    out = {}
    for item in cfg.documents.inputs:
        if not counts[item.name]["documents"]:
            continue
        spec = JobSpec([str(batch / f"{item.name}.parquet")], counts[item.name]["source"], DOCUMENT_MAPPING, model,
                       batch / "scores" / item.name, job_cfg)
        manifest = run_job(spec, progress=False)
        out[item.name] = manifest["counts"]
    return out


def _build_unless_done(store, added: int, as_of: pd.Timestamp) -> bool:
    """Build at ``as_of`` unless a re-run of a completed day added nothing to a store already built
    then (it must not stamp another build); returns whether it built."""
    if added == 0 and store.last_build() == as_of:
        return False
    store.build(as_of)
    return True


def _add_and_build(cfg: RunConfig, folder: Path, batch: Path, scored: dict, as_of: pd.Timestamp) -> dict:
    from nlp.scoring.job import read_scores
    from signals.store import FeatureStore

    with FeatureStore(folder / "features.duckdb", cfg.signals) as store:
        added = 0
        with store.transaction():  # the day's rows and its build land together, or not at all
            for item in cfg.documents.inputs:
                if item.name not in scored:
                    continue
                docs = pd.read_parquet(batch / f"{item.name}.parquet")
                scores = read_scores(batch / "scores" / item.name)
                scores["ingested_at"] = scores["published_at"] if cfg.documents.arrival == "published" else as_of
                added += store.add_documents(docs, feed=item.name).added
                added += store.add_scores(scores, feed=item.name).added
            rebuilt = _build_unless_done(store, added, as_of)
        counts = store.counts()
    return {"rows_added": added, "built": rebuilt, **counts}


def _annotate_batch(cfg: RunConfig, folder: Path, batch: Path, scored: dict, as_of: pd.Timestamp) -> dict | None:
    """Annotate the day's new documents and add their derived rows to ``text.duckdb`` (built at ``as_of``).

    Novelty looks back ``window_sessions`` sessions, so the new documents are annotated together
    with the store's documents known since a bound safely before that window; only the new
    documents' rows are kept. That gives exactly what annotating the whole history would.
    """
    from signals.annotations import LATEST, annotate, derived_scores, summary
    from signals.store import FeatureStore

    new = [item.name for item in cfg.documents.inputs if item.name in scored]
    text_db = folder / "text.duckdb"
    if not new and text_db.exists():
        return None
    with FeatureStore(folder / "features.duckdb", cfg.signals, read_only=True) as store:
        fresh = store.con.sql(f"SELECT * FROM documents WHERE feed IN (SELECT unnest($feeds)) AND ingested_at > "
                              f"coalesce((SELECT max(built_at) FROM builds WHERE built_at < $t), '-infinity'::TIMESTAMPTZ) "
                              f"AND ingested_at <= $t {LATEST}", params={"feeds": new or [""], "t": as_of}).to_arrow_table().to_pandas()
        if fresh.empty:
            return None
        # a week of sessions is at most window_sessions + holidays; two weeks of calendar days more than covers it
        bound = pd.to_datetime(fresh["ingested_at"]).min() - pd.Timedelta(days=2 * cfg.annotations.window_sessions + 14)
        docs = store.con.sql(f"SELECT * FROM documents WHERE ingested_at >= $b AND ingested_at <= $t {LATEST}",
                             params={"b": bound, "t": as_of}).to_arrow_table().to_pandas()
        scores = store.con.sql(f"SELECT * FROM scores WHERE ingested_at >= $b AND ingested_at <= $t {LATEST}",
                               params={"b": bound, "t": as_of}).to_arrow_table().to_pandas()
    annotations = annotate(docs, cfg.annotations, cfg.signals.sessions)
    keys = ["feed", "source", "doc_id"]
    annotations = annotations.merge(fresh[keys], on=keys)
    with FeatureStore(text_db, cfg.signals) as text:
        with text.transaction():
            _build_unless_done(text, text.add_scores(derived_scores(scores, annotations, cfg.annotations)).added, as_of)
    return summary(annotations)


def timing_config(cfg: RunConfig, folder: Path) -> TimingConfig:
    """The run's timing section on the daily store and folder."""
    tcfg = stage_timing_config(cfg)
    text = folder / "text.duckdb" if cfg.annotations.enabled else None
    data = tcfg.data.model_copy(update={"path": folder / "features.duckdb", "text_path": text})
    return tcfg.model_copy(update={"data": data, "output_dir": folder / "timing"})


def _last_input_dates(panel: pd.DataFrame, factors: tuple[str, ...], as_of: pd.Timestamp) -> dict[str, pd.Timestamp]:
    """The last panel date, on or before ``as_of``, with factor returns (market) and with any macro value."""
    known = panel.loc[panel.index <= as_of.tz_convert(None)]
    macro = [c for c in known.columns if c.startswith("macro.") and not c.endswith("__mask")]
    out = {"market": known[list(factors)].dropna(how="all").index.max()}
    if macro:
        out["macro"] = known[macro].dropna(how="all").index.max()
    return out


def run_day(cfg: RunConfig, as_of: pd.Timestamp, decide_from: pd.Timestamp | None = None,
            allow_future: bool = False) -> dict:
    """One day of operation at ``as_of`` (see the module docstring); returns the day's record.

    ``decide_from``: decide at the cutoff of every session from this day to ``as_of`` (a batch run
    that reproduces a replay's allocation history); by default only ``as_of`` is decided.
    ``allow_future``: let an ``as_of`` far past the clock or the inputs through (``--allow-future-as-of``).
    The store, the model, the allocations and the health history change on a copy (``staged``, the
    backtest stages' build-aside-then-rename): a day that fails leaves them exactly as they were.
    """
    from altsignal.orchestrator import check_text_period
    from altsignal.stage_cache import staged
    from nlp.models import model_path

    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise UsageError(f"--as-of {as_of} has no time zone", hint="e.g. 2017-02-28T21:00:00+00:00")
    folder = daily_dir(cfg)
    state = read_state(folder)
    since = pd.Timestamp(state["as_of"]) if state["as_of"] else None
    if since is not None and as_of < since:
        raise UsageError(f"--as-of {as_of} precedes the last completed run ({since})",
                         hint="daily runs move forward in time; `altsignal rollback --to` an earlier run, or use "
                              "another --out for another history")
    t0 = time.perf_counter()
    batch = folder / "batches" / stamp(as_of)
    model = model_path(cfg.scoring.model)
    documents = _new_documents(cfg, folder, since, as_of, batch, allow_future)
    log.info("daily %s: new documents %s", as_of, {k: v["documents"] for k, v in documents.items()})
    periods = check_text_period(model, batch, cfg.scoring.allow_text_overlap)
    scored = _score_batch(cfg, batch, documents, model)
    with staged(folder, DAY_OUTPUTS) as work:
        day = _store_and_decide(cfg, work, batch, scored, as_of, decide_from)
    record = {"as_of": as_of.isoformat(), "documents": documents, "scored": scored, "store": day["store"],
              "text_period": periods, "annotations": day["annotations"], "health": day["health"],
              "health_report": str(folder / Path(day["health_report"]).relative_to(work)),
              "allocation": day["allocation"], "seconds": round(time.perf_counter() - t0, 2)}
    state = {"as_of": as_of.isoformat(), "runs": [r for r in state["runs"] if r["as_of"] != record["as_of"]] + [record]}
    atomic_write_text(folder / STATE, json.dumps(state, indent=1, default=str) + "\n")
    log.info("daily %s done in %.1f s: health %s", as_of, record["seconds"], record["health"])
    return record


def _store_and_decide(cfg: RunConfig, work: Path, batch: Path, scored: dict, as_of: pd.Timestamp,
                      decide_from: pd.Timestamp | None) -> dict:
    """Add the day's rows to the stores in ``work``, build, decide and check health there."""

    from altsignal.operate import decide
    from signals.health import check_store, worst_status
    from timing.data import load_panel

    store = _add_and_build(cfg, work, batch, scored, as_of)
    annotations = _annotate_batch(cfg, work, batch, scored, as_of) if cfg.annotations.enabled else None
    tcfg = timing_config(cfg, work)
    set_threads(tcfg.walkforward.threads)
    panel = load_panel(tcfg.data, cfg.signals)
    naive = as_of.tz_convert(None)
    days = [naive] if decide_from is None else session_instants(cfg, decide_from, as_of, until=as_of)
    rows = [decide(tcfg, panel, d, tcfg.output_dir)[0] for d in days]
    jobs = [batch / "scores" / name for name in scored]
    table, report = check_store(work / "features.duckdb", as_of, work / "health", jobs, cfg.health,
                                _last_input_dates(panel, tuple(rows[-1]["factor"]), as_of))
    return {"store": store, "annotations": annotations, "health": worst_status(table), "health_report": report,
            "allocation": rows[-1][["factor", "weight", "trade"]].to_dict(orient="records")}


def rollback(cfg: RunConfig, to: pd.Timestamp) -> dict:
    """Roll ``<output_dir>/daily`` back to what its completed run at ``to`` left (``altsignal rollback``).

    ``to`` must be the ``as_of`` of a completed run. The stores forget every row stamped after it
    and every later build (:meth:`signals.store.FeatureStore.rollback`); the allocation history and
    the health history lose their later blocks; a saved model trained on rows after ``to`` is
    removed (the next run refits: it must not have seen them); the later day batches are removed
    (a re-run of such an ``as_of`` would otherwise reuse a batch cut from another start). The state
    moves back first: a rollback cut short is finished by running it again. The stores change on
    a staged copy, as a day does, so a failed rollback leaves them as they were.
    """
    from altsignal.stage_cache import staged

    to = pd.Timestamp(to).tz_convert("UTC")
    folder = daily_dir(cfg)
    state = read_state(folder)
    runs = [pd.Timestamp(r["as_of"]) for r in state["runs"]]
    if to not in runs:
        shown = ", ".join(str(t) for t in runs[-5:]) or "none"
        raise UsageError(f"--to {to}: {folder} has no completed daily run at that instant",
                         hint=f"roll back to a completed run's --as-of; the latest are: {shown}")
    kept = [r for r, t in zip(state["runs"], runs) if t <= to]
    atomic_write_text(folder / STATE, json.dumps({"as_of": to.isoformat(), "runs": kept}, indent=1, default=str) + "\n")
    with staged(folder, DAY_OUTPUTS) as work:
        store = _rollback_stores(cfg, work, to)
        _drop_later(work / "timing" / "allocations.parquet", "as_of", to)
        _drop_later(work / "health" / "health.parquet", "session", to)
        _drop_model_after(work / "timing" / "model", to)
    later = [b for b in (folder / "batches").glob("*") if b.is_dir() and b.name > stamp(to)]
    for b in later:
        shutil.rmtree(b)
    return {"as_of": to.isoformat(), "runs_removed": len(runs) - len(kept), "batches_removed": len(later), "store": store}


def _rollback_stores(cfg: RunConfig, work: Path, to: pd.Timestamp) -> dict:
    from signals.store import FeatureStore

    removed = {}
    for name in ("features.duckdb", "text.duckdb"):
        if (work / name).exists():
            with FeatureStore(work / name, cfg.signals) as store:
                removed |= {f"{name}:{k}": v for k, v in store.rollback(to).items() if v}
    return removed


def _drop_later(path: Path, column: str, to: pd.Timestamp) -> None:
    """Keep the rows of a history file dated at or before ``to`` (the files hold naive UTC times)."""
    from core.atomic import atomic_path

    if not path.exists():
        return
    history = pd.read_parquet(path)
    with atomic_path(path) as tmp:
        history[pd.to_datetime(history[column]) <= to.tz_convert(None)].to_parquet(tmp, index=False)


def _drop_model_after(model_dir: Path, to: pd.Timestamp) -> None:
    meta = model_dir / "meta.json"
    if meta.exists() and pd.Timestamp(json.loads(meta.read_text())["train_end"]) > to.tz_convert(None):
        shutil.rmtree(model_dir)


def session_instants(cfg: RunConfig, first_day, last_day, until: pd.Timestamp | None = None) -> list[pd.Timestamp]:
    """Cutoffs (naive UTC, as panels are dated) of the sessions dated ``first_day`` .. ``last_day``
    whose cutoff is at or before ``until`` (when given)."""
    from signals.sessions import session_cutoffs, sessions

    s = cfg.signals.sessions
    days = sessions(s.calendar, start=pd.Timestamp(first_day).date(), end=pd.Timestamp(last_day).date())
    cutoffs = pd.DatetimeIndex(session_cutoffs(days, s.cutoff, s.tz)).tz_convert("UTC")
    if until is not None:
        cutoffs = cutoffs[cutoffs <= until]
    return list(cutoffs.tz_localize(None))


def replay(cfg: RunConfig, first_day, last_day) -> list[dict]:
    """One :func:`run_day` per session dated ``first_day`` .. ``last_day``, each at its cutoff."""
    from core.progress import Progress

    instants = session_instants(cfg, first_day, last_day)
    if not instants:
        raise UsageError(f"no session between {first_day} and {last_day}")
    return [run_day(cfg, when.tz_localize("UTC")) for when in Progress(instants, desc="replay", unit="session")]
