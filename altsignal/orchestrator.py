"""``altsignal run``: the whole pipeline, stage by stage, each stage cached by content hash.

    documents -> scores -> features (DuckDB) -> timing backtest -> report

The stages themselves are the objects of ``altsignal.stages`` (shared with daily operation);
this module runs them in order, each in a folder cached by its key. The run's configuration is :class:`altsignal.run_config.RunConfig`, validated whole when it is
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

from altsignal.run_config import RunConfig
from altsignal.stage_cache import PARTIAL, cached_stage, check_owned, remove_stage
from altsignal.stages import PIPELINE, Run, Timing, check_text_period, local_data_files
from core.atomic import atomic_write_text
from core.errors import UsageError
from nlp.models import META_FILE, model_path
from timing.report import render_verdicts, report_verdicts, write_report

log = logging.getLogger(__name__)

STAGES = (*(stage.name for stage in PIPELINE), "report")


def _summary(cfg: RunConfig, summaries: dict, timing_dir: Path, periods: dict | None) -> Path:
    """``<output_dir>/README.md``: what each stage did, and the timing report's verdicts."""
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


def check_run(cfg: RunConfig, force: tuple[str, ...] = ()) -> Run:
    """Check everything a run refers to before any stage starts; return the run the stages share.

    Unknown ``force`` stages, output folders the run did not create, missing inputs, a model
    folder that is not an artifact and missing market or macro files all fail here, not after
    scoring. (Config keys and values were checked when the config was loaded.)
    """

    unknown = set(force) - set(STAGES)
    if unknown:
        raise UsageError(f"unknown stage(s) {sorted(unknown)} in --force; stages are {list(STAGES)}")
    root = Path(cfg.output_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"output folder {root} is a file", hint="choose another --out")
    for stage in PIPELINE:
        check_owned(root / stage.name)
        check_owned(root / (stage.name + PARTIAL))
    for item in cfg.documents.inputs:
        path = item.resolve()[0]
        if not path.exists():
            raise UsageError(f"input {item.preset or item.path}: {path} does not exist")
    model = model_path(cfg.scoring.model)
    if not (model / META_FILE).is_file():
        raise UsageError(f"scoring.model {model} is not a model artifact (no {META_FILE})")
    run = Run(cfg, model, root)
    for path in local_data_files(Timing.config(run)):
        if not path.exists():
            raise UsageError(f"timing.data: market, macro or extra predictor source {path} does not exist")
    return run


def run(cfg: RunConfig, force: tuple[str, ...] = ()) -> Path:
    """Run every stage (reusing cached ones unless named in ``force``); return the summary's path."""
    run = check_run(cfg, force)
    for name in set(force) - {"report"}:  # the report is rewritten on every run
        remove_stage(run.root / name)
        remove_stage(run.root / (name + PARTIAL))
    summaries: dict[str, dict] = {}
    key, periods = "", None
    for stage in PIPELINE:
        if stage.name == "scores":  # the scorer must not have learned from the documents' period
            periods = check_text_period(run.model, run.root / "documents", cfg.scoring.allow_text_overlap)
        key = stage.key(run, key)
        summaries[stage.name] = cached_stage(run.root / stage.name, key, lambda folder: stage.build(run, folder),
                                             resume=stage.resume)
    return _summary(cfg, summaries, run.root / "timing", periods)
