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
from dataclasses import replace
from pathlib import Path

import pandas as pd

from altsignal.operate import HISTORY, MODEL
from altsignal.run_config import RunConfig
from altsignal.stage_cache import staged
from altsignal.stages import FEATURES_DB, TEXT_DB, Day, Documents, Features, Run, Scores, Timing, check_text_period
from core.atomic import atomic_path, atomic_write_text
from core.errors import UsageError
from core.progress import Progress
from nlp.models import model_path
from signals.health import check_store, worst_status
from signals.sessions import session_cutoffs, sessions
from signals.store import FeatureStore

log = logging.getLogger(__name__)

DAILY = "daily"
STATE = "state.json"
# What a day changes besides its own batch: staged together (a failed day leaves them as they were).
# A stale DuckDB write-ahead log must never meet a newer store file, so the logs come first.
DAY_OUTPUTS = (f"{FEATURES_DB}.wal", f"{TEXT_DB}.wal", FEATURES_DB, TEXT_DB, Timing.name, "health")


def daily_dir(cfg: RunConfig) -> Path:
    return Path(cfg.output_dir) / DAILY


def read_state(folder: Path) -> dict:
    path = Path(folder) / STATE
    return json.loads(path.read_text()) if path.exists() else {"as_of": None, "runs": []}


def stamp(as_of: pd.Timestamp) -> str:
    """A folder name for an instant: ``20170228T210000Z``."""
    return as_of.tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ")


def _held_documents(run: Run, folder: Path) -> dict[str, set]:
    """The documents the store holds, by feed: a live feed's (arrival "now") new documents are the others."""
    if run.cfg.documents.arrival != "now" or not (folder / FEATURES_DB).exists():
        return {}
    with FeatureStore(folder / FEATURES_DB, run.cfg.signals, read_only=True) as store:
        return store.doc_ids_by_feed()


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
    run = Run(cfg, model_path(cfg.scoring.model), Path(cfg.output_dir))
    day = Day(as_of, since, folder / "batches" / stamp(as_of), folder)
    documents = Documents().update(run, day, _held_documents(run, folder), allow_future)
    log.info("daily %s: new documents %s", as_of, {k: v["documents"] for k, v in documents.items()})
    periods = check_text_period(run.model, day.batch, cfg.scoring.allow_text_overlap)
    scored = Scores().update(run, day, documents)
    with staged(folder, DAY_OUTPUTS) as work:
        result = _store_and_decide(run, replace(day, stores=work), scored, decide_from)
    record = {"as_of": as_of.isoformat(), "documents": documents, "scored": scored, "store": result["store"],
              "text_period": periods, "annotations": result["annotations"], "health": result["health"],
              "health_report": str(folder / Path(result["health_report"]).relative_to(work)),
              "allocation": result["allocation"], "seconds": round(time.perf_counter() - t0, 2)}
    state = {"as_of": as_of.isoformat(), "runs": [r for r in state["runs"] if r["as_of"] != record["as_of"]] + [record]}
    atomic_write_text(folder / STATE, json.dumps(state, indent=1, default=str) + "\n")
    log.info("daily %s done in %.1f s: health %s", as_of, record["seconds"], record["health"])
    return record


def _store_and_decide(run: Run, day: Day, scored: dict, decide_from: pd.Timestamp | None) -> dict:
    """Add the day's rows to the stores in ``day.stores``, build, decide and check health there."""
    store, annotations = Features().update(run, day, scored)
    days = ([day.as_of.tz_convert(None)] if decide_from is None
            else session_instants(run.cfg, decide_from, day.as_of, until=day.as_of))
    panel, rows = Timing().update(run, day, days)
    jobs = [day.batch / "scores" / name for name in scored]
    table, report = check_store(day.stores / FEATURES_DB, day.as_of, day.stores / "health", jobs, run.cfg.health,
                                _last_input_dates(panel, tuple(rows[-1]["factor"]), day.as_of))
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
        _drop_later(work / Timing.name / HISTORY, "as_of", to)
        _drop_later(work / "health" / "health.parquet", "session", to)
        _drop_model_after(work / Timing.name / MODEL, to)
    later = [b for b in (folder / "batches").glob("*") if b.is_dir() and b.name > stamp(to)]
    for b in later:
        shutil.rmtree(b)
    return {"as_of": to.isoformat(), "runs_removed": len(runs) - len(kept), "batches_removed": len(later), "store": store}


def _rollback_stores(cfg: RunConfig, work: Path, to: pd.Timestamp) -> dict:
    removed = {}
    for name in (FEATURES_DB, TEXT_DB):
        if (work / name).exists():
            with FeatureStore(work / name, cfg.signals) as store:
                removed |= {f"{name}:{k}": v for k, v in store.rollback(to).items() if v}
    return removed


def _drop_later(path: Path, column: str, to: pd.Timestamp) -> None:
    """Keep the rows of a history file dated at or before ``to`` (the files hold naive UTC times)."""
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

    s = cfg.signals.sessions
    days = sessions(s.calendar, start=pd.Timestamp(first_day).date(), end=pd.Timestamp(last_day).date())
    cutoffs = pd.DatetimeIndex(session_cutoffs(days, s.cutoff, s.tz)).tz_convert("UTC")
    if until is not None:
        cutoffs = cutoffs[cutoffs <= until]
    return list(cutoffs.tz_localize(None))


def replay(cfg: RunConfig, first_day, last_day) -> list[dict]:
    """One :func:`run_day` per session dated ``first_day`` .. ``last_day``, each at its cutoff."""
    instants = session_instants(cfg, first_day, last_day)
    if not instants:
        raise UsageError(f"no session between {first_day} and {last_day}")
    return [run_day(cfg, when.tz_localize("UTC")) for when in Progress(instants, desc="replay", unit="session")]
