"""``altsignal run``: the whole pipeline, stage by stage, each stage cached by content hash.

    documents -> scores -> features (DuckDB) -> timing backtest -> report

Every stage writes into ``<output_dir>/<stage>/`` and records a ``stage.json`` holding the hash
of everything that determines its output: its own config section, the hashes of the stages
before it, the bytes of its input files and the model weights. A re-run recomputes only the
stages whose hash changed; an interrupted scoring stage resumes inside the scoring job itself.

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
import tomllib
from pathlib import Path
from typing import Callable, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp.readers.documents import ColumnMapping, get_preset, read_documents, write_documents
from nlp.rejects import Rejects, atomic_write_text

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_RUN_CONFIG = CONFIG_DIR / "run_default.toml"
STAGES = ("documents", "scores", "features", "timing", "report")

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


def resolve_data_path(value: str) -> str:
    """``datasets:<name>/<file>`` -> a path under ``nlp.paths.datasets_dir()``; anything else unchanged.

    Configs name shared data this way so the same file runs wherever ``$ALTSIGNAL_DATASETS`` points.
    """
    from nlp.paths import datasets_dir

    return str(datasets_dir() / value[len("datasets:"):]) if value.startswith("datasets:") else value


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
    model: str = "default"  # "default" = the shipped model, else an artifact folder
    numeric: str = "auto"
    engine: Literal["local", "ray"] = "local"


class RunConfig(_Strict):
    name: str
    output_dir: Path
    documents: DocumentsConfig
    scoring: ScoringConfig = ScoringConfig()
    timing_config: Path = Path("default.toml")  # relative to this config's folder
    timing_overrides: dict = Field(default_factory=dict)  # merged into the timing TOML


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_toml(path: Path) -> dict:
    """A run TOML; ``extends = "other.toml"`` (relative to this file) starts from that one."""
    raw = tomllib.loads(path.read_text())
    parent = raw.pop("extends", None)
    return _merge(_read_toml(path.parent / parent), raw) if parent else raw


def load_run_config(path: str | Path) -> RunConfig:
    path = Path(path)
    cfg = RunConfig(**_read_toml(path))
    if not cfg.timing_config.is_absolute():
        cfg = cfg.model_copy(update={"timing_config": (path.parent / cfg.timing_config).resolve()})
    return cfg


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


def cached_stage(folder: Path, key: str, build: Callable[[Path], dict]) -> dict:
    """Run ``build(folder)`` unless ``folder/stage.json`` records the same key; return its summary.

    ``stage.started`` holds the key of a run in progress: an interrupted stage with the same key
    is resumed in place (the scoring job picks up its finished chunks); any other key means the
    folder's content belongs to other inputs, so it is cleared first.
    """
    marker, started = folder / "stage.json", folder / "stage.started"
    if marker.exists():
        done = json.loads(marker.read_text())
        if done.get("key") == key:
            log.info("stage %s: cached (%s)", folder.name, key)
            return done["summary"] | {"cached": True}
    if folder.exists() and not (started.exists() and started.read_text() == key):
        log.info("stage %s: inputs changed, recomputing", folder.name)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(started, key)
    t0 = time.perf_counter()
    summary = build(folder)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_text(marker, json.dumps({"key": key, "summary": summary}, indent=2, default=str) + "\n")
    started.unlink()
    return summary | {"cached": False}


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
    db.unlink(missing_ok=True)  # the stage is rebuilt whole when any input changed
    with FeatureStore(db) as store:
        for item in cfg.documents.inputs:
            docs = pd.read_parquet(docs_dir / f"{item.name}.parquet")
            scores = read_scores(scores_dir / item.name)
            if cfg.documents.arrival == "published":
                docs["ingested_at"] = docs["published_at"]
                scores["ingested_at"] = scores["published_at"]
            store.add_documents(docs)
            store.add_scores(scores)
        store.build()
        counts = store.counts()
    return {"db": str(db), **counts}


def _timing_config(cfg: RunConfig, db: Path, folder: Path):
    from timing.config import TimingConfig

    raw = tomllib.loads(cfg.timing_config.read_text())
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
    return TimingConfig(**raw)


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


def run(cfg: RunConfig, force: tuple[str, ...] = ()) -> Path:
    """Run every stage (reusing cached ones unless named in ``force``); return the report path."""
    from nlp.models import default_model_path

    unknown = set(force) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; stages are {list(STAGES)}")
    root = Path(cfg.output_dir)
    for stage in force:
        shutil.rmtree(root / stage, ignore_errors=True)
    model = Path(default_model_path()) if cfg.scoring.model == "default" else Path(cfg.scoring.model)
    summaries: dict[str, dict] = {}

    inputs = [(i.model_dump(mode="json"), file_digest(i.resolve()[0])) for i in cfg.documents.inputs]
    k_docs = stage_key("documents", inputs)
    summaries["documents"] = cached_stage(root / "documents", k_docs, lambda f: _documents_stage(cfg, f))

    k_scores = stage_key("scores", k_docs, cfg.scoring.model_dump(), file_digest(model))
    summaries["scores"] = cached_stage(root / "scores", k_scores,
                                       lambda f: _scores_stage(cfg, root / "documents", model, f))

    k_feat = stage_key("features", k_scores, cfg.documents.arrival)
    summaries["features"] = cached_stage(root / "features", k_feat,
                                         lambda f: _features_stage(cfg, root / "documents", root / "scores", f))

    db = root / "features" / "features.duckdb"
    tcfg = _timing_config(cfg, db, root / "timing")  # its output_dir is the stage folder
    k_timing = stage_key("timing", k_feat, tcfg.model_dump(mode="json"))
    summaries["timing"] = cached_stage(root / "timing", k_timing, lambda f: _timing_stage(tcfg, f))

    return _report(cfg, summaries, root / "timing")
