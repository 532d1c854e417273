"""``altsignal run``: the whole pipeline, stage by stage, each stage cached by content hash.

    documents -> scores -> features (DuckDB) -> timing backtest -> report

The run's configuration is :class:`altsignal.run_config.RunConfig`, validated whole when it is
loaded; :func:`check_run` then checks what it refers to (inputs, model, market and macro files,
output folders) before the first stage starts. Each stage's key (``altsignal.stage_cache``) holds the
hash of everything that determines its output: its own config section, the hashes of the stages
before it, the bytes of its input files and the model weights. A re-run recomputes only the stages
whose key changed; an interrupted scoring stage resumes inside the scoring job itself. The run
writes ``<output_dir>/README.md``: what each stage did and the timing report's verdicts, rendered
from the data of ``timing.report.report_verdicts``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from altsignal.run_config import RunConfig, stage_timing_config
from altsignal.stage_cache import PARTIAL, cached_stage, check_owned, remove_stage, stage_key
from core.atomic import atomic_write_text
from core.errors import UsageError
from core.hashing import code_digest, file_digest
from core.rejects import Rejects
from nlp.readers.documents import ColumnMapping, read_documents, write_documents
from timing.config import TimingConfig

log = logging.getLogger(__name__)

STAGES = ("documents", "scores", "features", "timing", "report")

# Column mapping of the Document Parquet files the documents stage writes (nlp.contracts).
DOCUMENT_MAPPING = ColumnMapping(doc_id="doc_id", text="text", published_at="published_at", entities="entities",
                                 title="title", publisher="publisher", url="url")


# -- stages -----------------------------------------------------------------------------------
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


def _documents_stage(cfg: RunConfig, folder: Path) -> dict:
    out = {}
    for item in cfg.documents.inputs:
        rejects = Rejects()
        docs, source = read_input(cfg, item, rejects)
        write_documents([docs], folder / f"{item.name}.parquet")
        rejects.write(folder / f"{item.name}.rejects.jsonl")
        out[item.name] = {"source": source, "documents": len(docs), "rejected": len(rejects)}
        log.info("documents %s: %d kept, %d rejected", item.name, len(docs), len(rejects))
    return out


def _scores_stage(cfg: RunConfig, docs_dir: Path, model: Path, folder: Path) -> dict:
    from nlp.scoring.config import EngineConfig, JobConfig
    from nlp.scoring.job import JobSpec, run_job

    job_cfg = JobConfig(engine=EngineConfig(numeric=cfg.scoring.numeric), engine_kind=cfg.scoring.engine)
    out = {}
    for item in cfg.documents.inputs:
        _, source, _ = item.resolve()
        spec = JobSpec([str(docs_dir / f"{item.name}.parquet")], source, DOCUMENT_MAPPING, model, folder / item.name, job_cfg)
        manifest = run_job(spec)
        out[item.name] = manifest["counts"] | {"numeric": manifest["numeric"], "reject_reasons": manifest["reject_reasons"]}
    return out


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


def _features_stage(cfg: RunConfig, docs_dir: Path, scores_dir: Path, folder: Path) -> dict:
    from nlp.scoring.job import read_scores
    from signals.store import FeatureStore

    db = folder / "features.duckdb"
    with FeatureStore(db, cfg.signals) as store:
        for item in cfg.documents.inputs:
            docs = pd.read_parquet(docs_dir / f"{item.name}.parquet")
            scores = read_scores(scores_dir / item.name)
            if cfg.documents.arrival == "published":
                docs["ingested_at"] = docs["published_at"]
                scores["ingested_at"] = scores["published_at"]
            # Each run input is its own feed: ids may repeat across inputs (signals/store.py).
            store.add_documents(docs, feed=item.name)
            store.add_scores(scores, feed=item.name)
        store.build()
        counts = store.counts()
    out = {"db": str(Path(cfg.output_dir) / "features" / db.name), **counts}
    if cfg.annotations.enabled:
        from signals.annotations import build_text_store

        out["annotations"] = build_text_store(db, folder / "text.duckdb", cfg.annotations, cfg.signals)
    return out


def _timing_stage(cfg: RunConfig, tcfg: TimingConfig, folder: Path) -> dict:
    from timing.backtest import run_backtest, save_backtest
    from timing.data import load_panel

    panel = load_panel(tcfg.data, cfg.signals)
    result = run_backtest(tcfg, panel, progress=True)
    save_backtest(result, folder)
    return {"panel_rows": len(panel), "panel_columns": panel.shape[1], "total_seconds": result.summary["total_seconds"]}


def _summary(cfg: RunConfig, summaries: dict, timing_dir: Path, periods: dict | None) -> Path:
    """``<output_dir>/README.md``: what each stage did, and the timing report's verdicts."""
    from timing.report import render_verdicts, report_verdicts, write_report

    timing_report = write_report(timing_dir)
    docs, scores = summaries["documents"], summaries["scores"]
    lines = [f"# altsignal run `{cfg.name}`", "", "## Documents and scores", "",
             "| input | source | documents | rejected when read | rejected when scored | units scored | deduplicated | numeric path |",
             "|---|---|---|---|---|---|---|---|"]
    for item in cfg.documents.inputs:
        d, s = docs[item.name], scores[item.name]
        reasons = ", ".join(f"{k}: {v}" for k, v in s["reject_reasons"].items())
        lines.append(f"| {item.name} | {d['source']} | {d['documents']:,} | {d['rejected']:,} | "
                     f"{s['docs_rejected']:,}{f' ({reasons})' if reasons else ''} | {s['units_scored']:,} | "
                     f"{s['units_deduplicated']:,} | {s['numeric']} |")
    if periods is None:
        lines += ["", f"Scorer `{cfg.scoring.model}` learned from no dated text (labeled sets only)."]
    else:
        lines += ["", f"Scorer `{cfg.scoring.model}` learned from text published {periods['model_text'][0]}.."
                  f"{periods['model_text'][1]}; the documents run {periods['documents'][0]}..{periods['documents'][1]}"
                  + (" (overlap allowed by scoring.allow_text_overlap: not a clean backtest)."
                     if periods.get("overlap_allowed") else " (no overlap).")]
    f = summaries["features"]
    lines += ["", f"Feature store `{f['db']}`: {f['documents']:,} documents, {f['scores']:,} score rows, "
              f"{f['daily_features']:,} daily feature rows.", "", "## Stages", "",
              "| stage | reused from cache | seconds |", "|---|---|---|"]
    lines += [f"| {stage} | {s.get('cached', False)} | {s.get('seconds', '')} |" for stage, s in summaries.items()]
    rel = timing_report.relative_to(cfg.output_dir)
    lines += ["", "## Factor timing", "", *render_verdicts(report_verdicts(timing_dir), headline=True), "",
              f"Full report with plots: [{rel}]({rel})", ""]
    out = cfg.output_dir / "README.md"
    atomic_write_text(out, "\n".join(lines))
    return out


def check_run(cfg: RunConfig, force: tuple[str, ...] = ()) -> tuple[Path, TimingConfig]:
    """Check everything a run refers to before any stage starts; return (model folder, timing config).

    Unknown ``force`` stages, output folders the run did not create, missing inputs, a model
    folder that is not an artifact and missing market or macro files all fail here, not after
    scoring. (Config keys and values were checked when the config was loaded.)
    """
    from nlp.models import META_FILE, model_path

    unknown = set(force) - set(STAGES)
    if unknown:
        raise UsageError(f"unknown stage(s) {sorted(unknown)} in --force; stages are {list(STAGES)}")
    root = Path(cfg.output_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"output folder {root} is a file", hint="choose another --out")
    for stage in STAGES[:-1]:
        check_owned(root / stage)
        check_owned(root / (stage + PARTIAL))
    for item in cfg.documents.inputs:
        path = item.resolve()[0]
        if not path.exists():
            raise UsageError(f"input {item.preset or item.path}: {path} does not exist")
    model = model_path(cfg.scoring.model)
    if not (model / META_FILE).is_file():
        raise UsageError(f"scoring.model {model} is not a model artifact (no {META_FILE})")
    tcfg = stage_timing_config(cfg)
    for path in _local_data_files(tcfg):
        if not path.exists():
            raise UsageError(f"timing.data: market, macro or extra predictor source {path} does not exist")
    return model, tcfg


def _local_data_files(tcfg: TimingConfig) -> list[Path]:
    """The local market, macro and extra-predictor files of the timing stage (resolved by
    ``stage_timing_config``); packaged data and URLs are not files here."""
    data = tcfg.data
    names = [data.market_source, *([data.macro_source] if isinstance(data.macro_source, str) else data.macro_source),
             *(e.path for e in data.extra_predictors)]
    return [Path(n) for n in names if n != "packaged" and "://" not in n]


def run(cfg: RunConfig, force: tuple[str, ...] = ()) -> Path:
    """Run every stage (reusing cached ones unless named in ``force``); return the summary's path."""
    from core.hashing import artifact_hash

    model, tcfg = check_run(cfg, force)
    root = Path(cfg.output_dir)
    for stage in force:
        if stage in STAGES[:-1]:
            remove_stage(root / stage)
            remove_stage(root / (stage + PARTIAL))
    summaries: dict[str, dict] = {}

    inputs = [(i.model_dump(mode="json"), file_digest(i.resolve()[0])) for i in cfg.documents.inputs]
    k_docs = stage_key("documents", inputs, code_digest("nlp"))
    summaries["documents"] = cached_stage(root / "documents", k_docs, lambda f: _documents_stage(cfg, f))

    periods = check_text_period(model, root / "documents", cfg.scoring.allow_text_overlap)
    # The model's content hash, as the scoring job fingerprints it (cards and eval reports left out).
    k_scores = stage_key("scores", k_docs, cfg.scoring.model_dump(), artifact_hash(model))
    summaries["scores"] = cached_stage(root / "scores", k_scores,
                                       lambda f: _scores_stage(cfg, root / "documents", model, f), resume=True)

    k_feat = stage_key("features", k_scores, cfg.documents.arrival, cfg.signals.model_dump(mode="json"),
                       cfg.annotations.model_dump(mode="json"), code_digest("signals"))
    summaries["features"] = cached_stage(root / "features", k_feat,
                                         lambda f: _features_stage(cfg, root / "documents", root / "scores", f))

    # an edited market, macro or predictor file recomputes the stage, as an edited input does
    data_files = [file_digest(p) for p in _local_data_files(tcfg)]
    k_timing = stage_key("timing", k_feat, tcfg.model_dump(mode="json"), data_files, code_digest("timing"))
    summaries["timing"] = cached_stage(root / "timing", k_timing, lambda f: _timing_stage(cfg, tcfg, f))

    return _summary(cfg, summaries, root / "timing", periods)
