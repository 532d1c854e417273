"""The pipeline, defined once: documents -> scores -> features -> timing.

Each stage is an object with three duties:

- ``key(run, upstream)``: the hash of everything that determines its output (its config section,
  the key of the stage before it, its input files, the model weights, the code that builds it);
- ``build(run, folder)``: the whole stage into a fresh folder, for the backtest run
  (``altsignal.orchestrator``, which caches each folder by its key: ``altsignal.stage_cache``);
- ``update(run, day, ...)``: one day's increment on the persistent stores, for daily operation
  (``altsignal.daily``).

Both runs go through these objects, so a stage's logic (which documents count, how a scoring job
is set up, how rows are stamped with their arrival, where the stores live) is written once.

The arrival rule lives in :func:`stamp_arrival`: with ``documents.arrival = "published"``
(historical corpora) a row is taken as ingested when it was published; with ``"now"`` the daily
run stamps the day's ``as_of`` and the backtest keeps the scoring job's own stamp.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from altsignal.run_config import RunConfig, stage_timing_config
from altsignal.stage_cache import stage_key
from core.atomic import atomic_write_text
from core.errors import UsageError
from core.hashing import artifact_hash, code_digest, file_digest
from core.instants import check_not_ahead
from core.rejects import Rejects
from core.threads import set_threads
from nlp.models import model_path
from nlp.readers.documents import ColumnMapping, read_documents, write_documents
from nlp.scoring.job import JobSpec, read_scores, run_job
from signals.annotations import annotate, build_text_store, derived_scores, summary
from signals.store import FeatureStore
from timing.config import TimingConfig
from timing.data import load_panel

log = logging.getLogger(__name__)

# The text-period check (the distillation module), the backtest and the day's decision import torch: they
# are imported where they run, so commands that only read or roll back a store start in 2 s, not 9.
FEATURES_DB = "features.duckdb"  # the feature store of a run's features stage, or of a daily folder
TEXT_DB = "text.duckdb"  # the annotation store beside it (the `text` feature group)
# Column mapping of the Document Parquet files the documents stage writes (nlp.contracts).
DOCUMENT_MAPPING = ColumnMapping(doc_id="doc_id", text="text", published_at="published_at", entities="entities",
                                 title="title", publisher="publisher", url="url")


@dataclass(frozen=True)
class Run:
    """What the stages of one run share: its config, its scoring model and its output folder."""
    cfg: RunConfig
    model: Path
    root: Path

    def timing_config(self, stores: Path, out: Path) -> TimingConfig:
        """The run's timing section on the stores in ``stores``, writing to ``out``."""
        text = stores / TEXT_DB if self.cfg.annotations.enabled else None
        return stage_timing_config(self.cfg, stores / FEATURES_DB, text, out)


@dataclass(frozen=True)
class Day:
    """One day of daily operation: its instant, the last completed run's, and its folders."""
    as_of: pd.Timestamp
    since: pd.Timestamp | None
    batch: Path  # the day's documents and scoring jobs (kept: a re-run after a kill reuses them)
    stores: Path  # the folder holding the stores the day changes (a staged copy once staging starts)


def stamp_arrival(frame: pd.DataFrame, cfg: RunConfig, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Set ``ingested_at`` by the run's arrival rule (the module docstring); returns ``frame``."""
    if cfg.documents.arrival == "published":
        frame["ingested_at"] = frame["published_at"]
    elif as_of is not None:
        frame["ingested_at"] = as_of
    return frame


def read_input(cfg: RunConfig, item, rejects: Rejects) -> tuple[pd.DataFrame, str]:
    """One run input's documents inside its publication window, and its source."""
    path, source, mapping = item.resolve()
    docs = read_documents(path, mapping, source, rejects)
    start, end = cfg.documents.window(item)
    if start is not None:
        docs = docs[docs["published_at"] >= start]
    if end is not None:
        docs = docs[docs["published_at"] < end]
    return docs.reset_index(drop=True), source


def check_text_period(model: Path, docs_dir: Path, allow: bool) -> dict | None:
    """Refuse a scorer that learned from text published in the run's period; return both periods.

    A backtest must not score its documents with a model that saw text from the period it is
    tested on, not even unlabeled (distillation text): ``nlp.models.distill.text_period``. The
    run's period is conservatively that of all its documents. ``allow`` (``scoring.allow_text_overlap``)
    lets a run that is not judged as a backtest through; the overlap is then logged and recorded.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from nlp.models.distill import text_period


    learned = text_period(model)
    times = ds.dataset(sorted(docs_dir.glob("*.parquet")), format="parquet").to_table(columns=["published_at"])["published_at"]
    if learned is None or len(times) == 0:
        return None
    bounds = pc.min_max(times)
    first, last = (pd.Timestamp(bounds[k].as_py()) for k in ("min", "max"))
    out = {"model_text": [str(t.date()) for t in learned], "documents": [str(first.date()), str(last.date())]}
    if first <= learned[1] and learned[0] <= last:
        what = (f"scoring.model {model} learned from text published {learned[0]:%Y-%m-%d}..{learned[1]:%Y-%m-%d}, "
                f"which overlaps this run's documents ({first:%Y-%m-%d}..{last:%Y-%m-%d})")
        if not allow:
            raise UsageError(f"{what}: a backtest must not score text with a model that saw its period",
                             hint='use scoring.model = "labeled" (trained on the undated labeled sets only) or a '
                                  "model distilled on text from before the run's documents; set "
                                  "scoring.allow_text_overlap = true only for a run not judged as a backtest")
        log.warning("%s (allowed by scoring.allow_text_overlap)", what)
        out["overlap_allowed"] = True
    return out


class Documents:
    """Each input's documents, read and checked, as one Document Parquet file per input."""
    name = "documents"
    resume = False

    def key(self, run: Run, upstream: str = "") -> str:
        inputs = [(i.model_dump(mode="json"), file_digest(i.resolve()[0])) for i in run.cfg.documents.inputs]
        return stage_key("documents", inputs, code_digest("nlp"), code_digest("core"))

    def build(self, run: Run, folder: Path) -> dict:
        return self._write(run, {item.name: read_input(run.cfg, item, rejects := Rejects()) + (rejects,)
                                 for item in run.cfg.documents.inputs}, folder)

    def update(self, run: Run, day: Day, held: dict[str, set], allow_future: bool = False) -> dict:
        """Write each input's newly known documents to the day's batch; return counts.

        New: with arrival "published", published in (since, as_of]; with "now", not yet ``held``
        by the store. A batch is fixed once complete (``documents.json``): a re-run after a kill
        reuses it, so its scoring jobs resume on the same files even when the store has meanwhile
        taken its rows. Every input is read before the batch folder is made: an ``as_of`` too far
        past the clock or the latest input document is refused with nothing written.
        """

        marker = day.batch / "documents.json"
        if marker.exists():
            return json.loads(marker.read_text())
        read = {}
        for item in run.cfg.documents.inputs:
            rejects = Rejects()
            read[item.name] = (*read_input(run.cfg, item, rejects), rejects)
        latest = max((d["published_at"].max() for d, _, _ in read.values() if len(d)), default=None)
        check_not_ahead(day.as_of, latest, "input document", allow_future)
        for name, (docs, source, rejects) in read.items():
            if run.cfg.documents.arrival == "published":
                keep = docs["published_at"] <= day.as_of
                if day.since is not None:
                    keep &= docs["published_at"] > day.since
            else:
                keep = ~docs["doc_id"].isin(held.get(name, set()))
            # the instant the store learns each document: fixed, so the batch file is too
            read[name] = (stamp_arrival(docs[keep].reset_index(drop=True), run.cfg, day.as_of), source, rejects)
        out = self._write(run, read, day.batch)
        atomic_write_text(marker, json.dumps(out, indent=1) + "\n")
        return out

    @staticmethod
    def _write(run: Run, read: dict[str, tuple[pd.DataFrame, str, Rejects]], folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, (docs, source, rejects) in read.items():
            write_documents([docs], folder / f"{name}.parquet")
            rejects.write(folder / f"{name}.rejects.jsonl")
            out[name] = {"source": source, "documents": len(docs), "rejected": len(rejects)}
            log.info("documents %s: %d kept, %d rejected", name, len(docs), len(rejects))
        return out


class Scores:
    """One resumable scoring job per input (``nlp.scoring.job``), with the run's scoring config."""
    name = "scores"
    resume = True  # an interrupted job resumes from its finished chunks

    def key(self, run: Run, upstream: str) -> str:
        # the model's content hash, as the scoring job fingerprints it (cards and eval reports left out)
        # entity level off: the key of runs from before the switch existed (their stage is not redone)
        entity = run.cfg.scoring.job.entity_model
        if entity is None:
            return stage_key("scores", upstream, run.cfg.scoring.model_dump(exclude={"job": {"entity_model"}}),
                             artifact_hash(run.model))
        return stage_key("scores", upstream, run.cfg.scoring.model_dump(), artifact_hash(run.model),
                         artifact_hash(model_path(entity)))

    def build(self, run: Run, folder: Path) -> dict:
        return self._score(run, run.root / Documents.name, {i.name: i.resolve()[1] for i in run.cfg.documents.inputs},
                           folder, progress=True)

    def update(self, run: Run, day: Day, documents: dict) -> dict:
        """Score the day's batch: the inputs with new documents."""
        sources = {name: d["source"] for name, d in documents.items() if d["documents"]}
        return self._score(run, day.batch, sources, day.batch / "scores", progress=False)

    @staticmethod
    def _score(run: Run, docs_dir: Path, sources: dict[str, str], folder: Path, progress: bool) -> dict:
        out = {}
        for name, source in sources.items():
            spec = JobSpec([str(docs_dir / f"{name}.parquet")], source, DOCUMENT_MAPPING, run.model, folder / name,
                           run.cfg.scoring.job)
            manifest = run_job(spec, progress=progress)
            out[name] = manifest["counts"] | {"numeric": manifest["numeric"], "reject_reasons": manifest["reject_reasons"]}
        return out


class Features:
    """The feature store (``signals.store``) and, when annotations are on, the text store beside it."""
    name = "features"
    resume = False

    def key(self, run: Run, upstream: str) -> str:
        cfg = run.cfg
        return stage_key("features", upstream, cfg.documents.arrival, cfg.signals.model_dump(mode="json"),
                         cfg.annotations.model_dump(mode="json"), code_digest("signals"))

    def build(self, run: Run, folder: Path) -> dict:
        docs_dir, scores_dir = run.root / Documents.name, run.root / Scores.name
        with FeatureStore(folder / FEATURES_DB, run.cfg.signals) as store:
            for item in run.cfg.documents.inputs:
                # Each run input is its own feed: ids may repeat across inputs (signals/store/).
                self._add(run, store, item.name, pd.read_parquet(docs_dir / f"{item.name}.parquet"),
                          scores_dir / item.name)
            store.build()
            counts = store.counts()
        out = {"db": str(Path(run.cfg.output_dir) / self.name / FEATURES_DB), **counts}
        if run.cfg.annotations.enabled:

            out["annotations"] = build_text_store(folder / FEATURES_DB, folder / TEXT_DB, run.cfg.annotations,
                                                  run.cfg.signals)
        return out

    def update(self, run: Run, day: Day, scored: dict) -> tuple[dict, dict | None]:
        """Add the day's rows to the stores and build them at ``as_of``; (store counts, annotation summary)."""
        with FeatureStore(day.stores / FEATURES_DB, run.cfg.signals) as store:
            added = 0
            with store.transaction():  # the day's rows and its build land together, or not at all
                for name in scored:
                    added += self._add(run, store, name, pd.read_parquet(day.batch / f"{name}.parquet"),
                                       day.batch / "scores" / name, day.as_of)
                rebuilt = build_unless_done(store, added, day.as_of)
            counts = {"rows_added": added, "built": rebuilt, **store.counts()}
        annotations = self._annotate(run, day, list(scored)) if run.cfg.annotations.enabled else None
        return counts, annotations

    @staticmethod
    def _add(run: Run, store, feed: str, docs: pd.DataFrame, job: Path, as_of: pd.Timestamp | None = None) -> int:
        scores = stamp_arrival(read_scores(job), run.cfg, as_of)
        if as_of is None:  # a backtest's documents are stamped here; a day's were stamped in its batch
            stamp_arrival(docs, run.cfg)
        return store.add_documents(docs, feed=feed).added + store.add_scores(scores, feed=feed).added

    @staticmethod
    def _annotate(run: Run, day: Day, feeds: list[str]) -> dict | None:
        """Annotate the day's new documents and add their derived rows to the text store.

        Novelty looks back ``window_sessions`` sessions, so the new documents are annotated
        together with the store's documents known since a bound safely before that window; only
        the new documents' rows are kept. That gives exactly what annotating the whole history would.
        """

        if not feeds:  # no new document: nothing to annotate
            return None
        with FeatureStore(day.stores / FEATURES_DB, run.cfg.signals, read_only=True) as store:
            fresh = store.documents(after=store.previous_build(day.as_of), until=day.as_of, feeds=feeds)
            if fresh.empty:
                return None
            # a week of sessions is at most window_sessions + holidays; two weeks of calendar days more than covers it
            bound = (pd.to_datetime(fresh["ingested_at"]).min()
                     - pd.Timedelta(days=2 * run.cfg.annotations.window_sessions + 14))
            docs = store.documents(since=bound, until=day.as_of)
            scores = store.scores(since=bound, until=day.as_of)
        annotations = annotate(docs, run.cfg.annotations, run.cfg.signals.sessions)
        keys = ["feed", "source", "doc_id"]
        annotations = annotations.merge(fresh[keys], on=keys)
        with FeatureStore(day.stores / TEXT_DB, run.cfg.signals) as text:
            with text.transaction():
                build_unless_done(text, text.add_scores(derived_scores(scores, annotations, run.cfg.annotations)).added,
                                  day.as_of)
        return summary(annotations)


def build_unless_done(store, added: int, as_of: pd.Timestamp) -> bool:
    """Build at ``as_of`` unless a re-run of a completed day added nothing to a store already built
    then (it must not stamp another build); returns whether it built."""
    if added == 0 and store.last_build() == as_of:
        return False
    store.build(as_of)
    return True


class Timing:
    """The timing backtest (build) or the day's allocation from the saved network (update)."""
    name = "timing"
    resume = False

    def key(self, run: Run, upstream: str) -> str:
        tcfg = self.config(run)
        # an edited market, macro or predictor file recomputes the stage, as an edited input does
        data_files = [file_digest(p) for p in local_data_files(tcfg)]
        return stage_key("timing", upstream, tcfg.model_dump(mode="json"), data_files, code_digest("timing"))

    @staticmethod
    def config(run: Run) -> TimingConfig:
        return run.timing_config(run.root / Features.name, run.root / Timing.name)

    def build(self, run: Run, folder: Path) -> dict:
        from timing.backtest import run_backtest, save_backtest

        tcfg = self.config(run)
        panel = load_panel(tcfg.data, run.cfg.signals)
        result = run_backtest(tcfg, panel, progress=True)
        save_backtest(result, folder)
        return {"panel_rows": len(panel), "panel_columns": panel.shape[1], "total_seconds": result.summary["total_seconds"]}

    def update(self, run: Run, day: Day, decide_at: list[pd.Timestamp]) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
        """The panel on the day's stores and the allocation decided at each of ``decide_at``."""
        from altsignal.operate import decide

        tcfg = run.timing_config(day.stores, day.stores / self.name)
        set_threads(tcfg.walkforward.threads)
        panel = load_panel(tcfg.data, run.cfg.signals)
        return panel, [decide(tcfg, panel, d, tcfg.output_dir)[0] for d in decide_at]


def local_data_files(tcfg: TimingConfig) -> list[Path]:
    """The local market, macro and extra-predictor files of a timing config (resolved by
    ``stage_timing_config``); packaged data and URLs are not files here."""
    data = tcfg.data
    names = [data.market_source, *([data.macro_source] if isinstance(data.macro_source, str) else data.macro_source),
             *(e.path for e in data.extra_predictors)]
    return [Path(n) for n in names if n != "packaged" and "://" not in n]


PIPELINE = (Documents(), Scores(), Features(), Timing())
