"""``altsignal run``: the whole pipeline, stage by stage, each stage cached by content hash.

    documents -> scores -> features (DuckDB) -> timing backtest -> report

Every stage is built in ``<output_dir>/<stage>.partial/`` and renamed to ``<output_dir>/<stage>/``
when complete; its ``stage.json`` holds the hash of everything that determines its output: its
own config section, the hashes of the stages before it, the bytes of its input files and the
model weights. A re-run recomputes only the stages whose hash changed; an interrupted scoring
stage resumes inside the scoring job itself. The run removes only folders holding its own
``stage.json``: a ``documents/`` or ``scores/`` folder of the user's is an error, never deleted.
The whole config (inputs, model, timing config, market and macro files, output folders) is
checked before the first stage starts (:func:`check_run`).

Decision (historical backfills): the public and sample corpora carry no arrival times, so by
default (``documents.arrival = "published"``) each document is taken as ingested when it was
published. Features are then known at their session's cutoff, as they would have been with a
real-time feed. ``arrival = "now"`` keeps the scoring job's own ``ingested_at`` (a live store).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Callable, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp.errors import UsageError
from nlp.lifecycle import marks_interruption
from nlp.paths import resolve_data_path
from nlp.readers.documents import ColumnMapping, get_preset, read_documents, write_documents
from nlp.rejects import Rejects, atomic_write_text
from timing.config import ConfigError, read_toml, validated

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_RUN_CONFIG = CONFIG_DIR / "run_default.toml"
STAGES = ("documents", "scores", "features", "timing", "report")
STAGE_FILE = "stage.json"  # written by the run into each stage folder: its key, status and summary
PARTIAL = ".partial"  # suffix of the folder a stage is built in before it is renamed into place

# Column mapping of the Document Parquet files the documents stage writes (nlp.contracts).
DOCUMENT_MAPPING = ColumnMapping(doc_id="doc_id", text="text", published_at="published_at", entities="entities",
                                 title="title", publisher="publisher", url="url")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Strict):
    """One document input: a named preset (``sample:news``, ``social``...) or a file with a mapping."""

    preset: str | None = None
    path: str | None = None
    source: Literal["news", "social", "transcript"] | None = None
    mapping: ColumnMapping | None = None
    start: str | None = None  # keep documents published on/after this date (inclusive, UTC)
    end: str | None = None  # ... and before the day after this date

    @model_validator(mode="after")
    def _one_kind(self) -> "InputConfig":
        if (self.preset is None) == (self.path is None):
            raise ValueError("an input names either `preset` or `path` (with `source` and `mapping`)")
        if self.path is not None and (self.source is None or self.mapping is None):
            raise ValueError(f"input {self.path}: a file input needs `source` and `mapping`")
        return self

    @property
    def name(self) -> str:
        raw = self.preset or Path(self.path).stem
        return "".join(c if c.isalnum() else "_" for c in raw)

    def resolve(self) -> tuple[Path, str, ColumnMapping]:
        if self.preset is not None:
            preset = get_preset(self.preset)
            return preset.path(), preset.source, preset.mapping
        return Path(resolve_data_path(self.path)), self.source, self.mapping


class DocumentsConfig(_Strict):
    inputs: list[InputConfig] = Field(min_length=1)
    arrival: Literal["published", "now"] = "published"
    start: str | None = None  # a window applied on top of every input's own (e.g. a CI-sized run)
    end: str | None = None

    def window(self, item: InputConfig) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The publication window of one input: the later start and the earlier end, in UTC."""
        starts = [pd.Timestamp(v, tz="UTC") for v in (item.start, self.start) if v]
        ends = [pd.Timestamp(v, tz="UTC") + pd.Timedelta(days=1) for v in (item.end, self.end) if v]
        return (max(starts) if starts else None), (min(ends) if ends else None)


class ScoringConfig(_Strict):
    model: str = "default"  # "default" or "fast" = a shipped model, else an artifact folder
    numeric: str = "auto"
    engine: Literal["local", "ray"] = "local"


class RunConfig(_Strict):
    name: str
    output_dir: Path
    documents: DocumentsConfig
    scoring: ScoringConfig = ScoringConfig()
    timing_config: Path = CONFIG_DIR / "default.toml"  # in a file: relative to that file's folder
    timing_overrides: dict = Field(default_factory=dict)  # merged into the timing TOML


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """A run TOML; ``extends = "other.toml"`` (relative to this file) starts from that one."""
    path = path.resolve()
    if path in chain:
        raise ConfigError("`extends` loop: " + " -> ".join(str(p) for p in (*chain, path)))
    raw = read_toml(path)
    if isinstance(raw.get("timing_config"), str):  # relative to the file that names it
        raw["timing_config"] = str(path.parent / raw["timing_config"])
    parent = raw.pop("extends", None)
    return _merge(_read_toml(path.parent / parent, (*chain, path)), raw) if parent else raw


def load_run_config(path: str | Path) -> RunConfig:
    return validated(RunConfig, _read_toml(Path(path)), path)


# -- stage cache ------------------------------------------------------------------------------
def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    paths = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def stage_key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _state(folder: Path) -> dict | None:
    marker = folder / STAGE_FILE
    return json.loads(marker.read_text()) if marker.is_file() else None


def _set_state(folder: Path, key: str, status: str, **extra) -> None:
    state = {"key": key, "status": status, **extra}
    atomic_write_text(folder / STAGE_FILE, json.dumps(state, indent=2, default=str) + "\n")


def check_owned(folder: Path) -> None:
    """Refuse a folder the run did not create: only absent, empty or marked folders may be replaced."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file, where `altsignal run` keeps a stage folder",
                         hint="choose another output folder (--output-dir) or move that file away")
    # a kill while the first stage.json was being written leaves only its temp file: still ours
    if folder.is_dir() and _state(folder) is None and not all(
            p.name.startswith(f".{STAGE_FILE}.") and p.name.endswith(".tmp") for p in folder.iterdir()):
        raise UsageError(f"{folder} was not written by `altsignal run` (no {STAGE_FILE}); it is left untouched",
                         hint="choose another output folder (--output-dir) or move that folder away")


def _remove(folder: Path) -> None:
    check_owned(folder)
    if not folder.is_dir():
        return
    for p in folder.iterdir():  # the marker last: a removal cut short leaves a folder still marked
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.name != STAGE_FILE:
            p.unlink()
    shutil.rmtree(folder)


def cached_stage(folder: Path, key: str, build: Callable[[Path], dict], resume: bool = False) -> dict:
    """Run ``build`` unless ``folder/stage.json`` records the same key as complete; return the summary.

    The stage is built in ``<folder>.partial`` and renamed to ``folder`` once complete, so a stage
    folder is always whole. A partial folder with the same key is resumed when ``resume`` (the
    scoring job picks up its finished chunks), else rebuilt; an interruption marks it
    ``interrupted``. Only folders holding the run's ``stage.json`` are ever removed.
    """
    done = _state(folder)
    if done is not None and done.get("key") == key and done.get("status", "complete") == "complete":
        log.info("stage %s: cached (%s)", folder.name, key)
        return done["summary"] | {"cached": True}
    partial = folder.with_name(folder.name + PARTIAL)
    state = _state(partial)
    if state is None or state["key"] != key or not (resume or state["status"] == "complete"):
        _remove(partial)
        partial.mkdir(parents=True)
    if state is None or state["key"] != key or state["status"] != "complete":
        log.info("stage %s: %s", folder.name, "resuming" if partial.joinpath(STAGE_FILE).exists() else "computing")
        _set_state(partial, key, "running")
        t0 = time.perf_counter()
        with marks_interruption(lambda signame: _set_state(partial, key, "interrupted", signal=signame)):
            summary = build(partial)
            summary["seconds"] = round(time.perf_counter() - t0, 1)
            _set_state(partial, key, "complete", summary=summary)
    _remove(folder)
    partial.rename(folder)
    return _state(folder)["summary"] | {"cached": False}


# -- stages -----------------------------------------------------------------------------------
def _documents_stage(cfg: RunConfig, folder: Path) -> dict:
    out = {}
    for item in cfg.documents.inputs:
        path, source, mapping = item.resolve()
        rejects = Rejects()
        docs = read_documents(path, mapping, source, rejects)
        start, end = cfg.documents.window(item)
        if start is not None:
            docs = docs[docs["published_at"] >= start]
        if end is not None:
            docs = docs[docs["published_at"] < end]
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


def _features_stage(cfg: RunConfig, docs_dir: Path, scores_dir: Path, folder: Path) -> dict:
    from nlp.scoring.job import read_scores
    from signals.store import FeatureStore

    db = folder / "features.duckdb"
    with FeatureStore(db) as store:
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
    return {"db": str(Path(cfg.output_dir) / "features" / db.name), **counts}


def _timing_config(cfg: RunConfig, db: Path, folder: Path):
    from timing.config import TimingConfig

    raw = read_toml(cfg.timing_config)
    for section, values in cfg.timing_overrides.items():
        raw[section] = raw.get(section, {}) | values if isinstance(values, dict) else values
    data = raw.setdefault("data", {})
    data.update(source="provider", path=str(db))
    for key in ("market_source", "macro_source"):
        if isinstance(data.get(key), str):
            data[key] = resolve_data_path(data[key])
        elif isinstance(data.get(key), list):
            data[key] = [resolve_data_path(v) for v in data[key]]
    raw["output_dir"] = str(folder)
    return validated(TimingConfig, raw, f"{cfg.timing_config} (with the run's timing_overrides)")


def _timing_stage(tcfg, folder: Path) -> dict:
    from timing.backtest import run_backtest, save_backtest
    from timing.data import load_panel

    panel = load_panel(tcfg.data)
    result = run_backtest(tcfg, panel, progress=True)
    save_backtest(result, folder)
    return {"panel_rows": len(panel), "panel_columns": panel.shape[1], "total_seconds": result.summary["total_seconds"]}


def _report(cfg: RunConfig, summaries: dict, timing_dir: Path) -> Path:
    """``<output_dir>/README.md``: what each stage did, and the timing report's verdicts."""
    from timing.report import write_report

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
    f = summaries["features"]
    lines += ["", f"Feature store `{f['db']}`: {f['documents']:,} documents, {f['scores']:,} score rows, "
              f"{f['daily_features']:,} daily feature rows.", "", "## Stages", "",
              "| stage | reused from cache | seconds |", "|---|---|---|"]
    lines += [f"| {stage} | {s.get('cached', False)} | {s.get('seconds', '')} |" for stage, s in summaries.items()]
    text = timing_report.read_text()
    verdicts = text.split("## Targets", 1)[1].split("\n## ", 1)[0].strip() if "## Targets" in text else ""
    rel = timing_report.relative_to(cfg.output_dir)
    lines += ["", "## Factor timing", "", verdicts, "", f"Full report with plots: [{rel}]({rel})", ""]
    out = cfg.output_dir / "README.md"
    atomic_write_text(out, "\n".join(lines))
    return out


def check_run(cfg: RunConfig, force: tuple[str, ...] = ()):
    """Check everything a run refers to before any stage starts; return (model folder, timing config).

    Unknown ``force`` stages, output folders the run did not create, missing inputs, a model
    folder that is not an artifact, a missing or invalid timing config and missing market or
    macro files all fail here, not after scoring.
    """
    from nlp.models import META_FILE, model_path

    unknown = set(force) - set(STAGES)
    if unknown:
        raise UsageError(f"unknown stage(s) {sorted(unknown)} in --force; stages are {list(STAGES)}")
    root = Path(cfg.output_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"output folder {root} is a file", hint="choose another --output-dir")
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
    tcfg = _timing_config(cfg, root / "features" / "features.duckdb", root / "timing")
    sources = [tcfg.data.market_source, *([tcfg.data.macro_source] if isinstance(tcfg.data.macro_source, str)
                                          else tcfg.data.macro_source)]
    for src in sources:
        if src != "packaged" and "://" not in src and not Path(src).exists():
            raise UsageError(f"{cfg.timing_config}: market/macro source {src} does not exist")
    return model, tcfg


def run(cfg: RunConfig, force: tuple[str, ...] = ()) -> Path:
    """Run every stage (reusing cached ones unless named in ``force``); return the report path."""
    model, tcfg = check_run(cfg, force)
    root = Path(cfg.output_dir)
    for stage in force:
        if stage in STAGES[:-1]:
            _remove(root / stage)
            _remove(root / (stage + PARTIAL))
    summaries: dict[str, dict] = {}

    inputs = [(i.model_dump(mode="json"), file_digest(i.resolve()[0])) for i in cfg.documents.inputs]
    k_docs = stage_key("documents", inputs)
    summaries["documents"] = cached_stage(root / "documents", k_docs, lambda f: _documents_stage(cfg, f))

    k_scores = stage_key("scores", k_docs, cfg.scoring.model_dump(), file_digest(model))
    summaries["scores"] = cached_stage(root / "scores", k_scores,
                                       lambda f: _scores_stage(cfg, root / "documents", model, f), resume=True)

    k_feat = stage_key("features", k_scores, cfg.documents.arrival)
    summaries["features"] = cached_stage(root / "features", k_feat,
                                         lambda f: _features_stage(cfg, root / "documents", root / "scores", f))

    k_timing = stage_key("timing", k_feat, tcfg.model_dump(mode="json"))
    summaries["timing"] = cached_stage(root / "timing", k_timing, lambda f: _timing_stage(tcfg, f))

    return _report(cfg, summaries, root / "timing")
