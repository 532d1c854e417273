"""The one typed configuration of ``altsignal run``: :class:`RunConfig`, loaded from a TOML file.

A run file has a name, an output folder and one table per section::

    name = "default"
    output_dir = "runs/default"
    [documents]   # inputs and how their arrival is dated
    [scoring]     # model; [scoring.job] the scoring job's whole config (nlp.scoring.config.JobConfig)
    [signals]     # signals.SignalsConfig: sessions, feature windows, market timing
    [timing]      # timing.TimingConfig; `extends = "default.toml"` starts it from a timing file
    [research]    # signals.research.config.ResearchConfig: entry rule, tear sheets, market tests, events
    [annotations] # signals.annotations.AnnotationConfig: novelty, event types, relevance (the text group)
    [health]      # signals.health.HealthConfig: thresholds of the daily run's checks

It is read by the one loader (``core.config_files``: ``extends``, deep merge, ``--set`` dotted
overrides) and validated whole, every section together, before any stage starts: a bad key
anywhere fails at load, and nothing is written.

Every section is the owning package's own config class, so ``--set`` reaches every knob from one
file. Fine-tuning recipes (``nlp.models.config.FinetuneConfig``) stay files of their own: a model
card names the one file that reproduces its checkpoint, and a run does not train.

Decisions:
- sessions are set once, in ``[signals.sessions]``; the research section takes the same calendar
  (a different ``research.sessions`` is an error).
- the run owns where the timing stage reads and writes: it sets ``timing.data.source="provider"``
  with the run's own feature store and ``timing.output_dir=<output_dir>/timing``
  (:func:`stage_timing_config`); the values the file gives there are not used. Likewise
  ``signals.db_path``: the store is ``<output_dir>/features/features.duckdb``.
- historical backfills: the public and sample corpora carry no arrival times, so by default
  (``documents.arrival = "published"``) each document is taken as ingested when it was
  published. Features are then known at their session's cutoff, as they would have been with a
  real-time feed. ``arrival = "now"`` keeps the scoring job's own ``ingested_at`` (a live store).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, model_validator

from core.config_files import Strict, load_validated, validated, warn_renamed
from core.paths import resolve_data_path
from nlp.contracts import SOURCES
from nlp.readers.documents import ColumnMapping, get_preset
from nlp.scoring.config import JobConfig
from signals.annotations import AnnotationConfig
from signals.config import SignalsConfig
from signals.health import HealthConfig
from signals.research.config import ResearchConfig
from timing import CONFIG_DIR
from timing.config import TimingConfig

DEFAULT_RUN_CONFIG = CONFIG_DIR / "run_default.toml"


class InputConfig(Strict):
    """One document input: a named preset (``sample:news``, ``social``...) or a file with a mapping."""

    preset: str | None = None
    path: str | None = None
    source: Literal[SOURCES] | None = None  # Literal of a tuple: one of nlp.contracts.SOURCES
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


class DocumentsConfig(Strict):
    inputs: list[InputConfig] = Field(min_length=1)
    arrival: Literal["published", "now"] = "published"
    start: str | None = None  # a window applied on top of every input's own (e.g. a CI-sized run)
    end: str | None = None

    def window(self, item: InputConfig) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The publication window of one input: the later start and the earlier end, in UTC."""
        starts = [pd.Timestamp(v, tz="UTC") for v in (item.start, self.start) if v]
        ends = [pd.Timestamp(v, tz="UTC") + pd.Timedelta(days=1) for v in (item.end, self.end) if v]
        return (max(starts) if starts else None), (min(ends) if ends else None)


class ScoringConfig(Strict):
    """The scoring stage: which model, and the scoring job's whole config (``[scoring.job]``)."""

    model: str = "labeled"  # "default", "fast" or "labeled" = a shipped model, else an artifact folder
    job: JobConfig = JobConfig()  # nlp.scoring.config: numeric path, engine shapes, local or Ray, cleaning
    # a run is a backtest: its scorer must not have learned from text of its documents' period
    # (altsignal.stages.check_text_period); true only for a run not judged as a backtest
    allow_text_overlap: bool = False

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, raw):
        """``scoring.numeric`` and ``scoring.engine`` (before the job's whole config was here) still work."""
        if not isinstance(raw, dict) or not ({"numeric", "engine"} & raw.keys()):
            return raw
        raw, job = dict(raw), dict(raw.get("job") or {})
        if "numeric" in raw:
            warn_renamed("scoring.numeric", "scoring.job.engine.numeric")
            job["engine"] = {**dict(job.get("engine") or {}), "numeric": raw.pop("numeric")}
        if "engine" in raw:
            warn_renamed("scoring.engine", "scoring.job.engine_kind")
            job["engine_kind"] = raw.pop("engine")
        return {**raw, "job": job}


class RunConfig(Strict):
    name: str
    output_dir: Path
    documents: DocumentsConfig
    scoring: ScoringConfig = ScoringConfig()
    signals: SignalsConfig = SignalsConfig()
    timing: TimingConfig = TimingConfig()
    research: ResearchConfig = ResearchConfig()
    annotations: AnnotationConfig = AnnotationConfig()  # the `text` feature group (signals.annotations)
    health: HealthConfig = HealthConfig()  # thresholds of the daily run's checks (altsignal run --as-of)

    @model_validator(mode="before")
    @classmethod
    def _one_calendar(cls, raw):
        """Sessions are set once, in ``[signals.sessions]``: research counts on the calendar features use."""
        if not isinstance(raw, dict) or "sessions" in dict(raw.get("research") or {}):
            return raw
        sessions = dict(raw.get("signals") or {}).get("sessions")
        return raw if sessions is None else {**raw, "research": {**dict(raw.get("research") or {}), "sessions": sessions}}

    @model_validator(mode="after")
    def _same_calendar(self) -> "RunConfig":
        if self.research.sessions != self.signals.sessions:
            raise ValueError("research.sessions differs from signals.sessions: set the sessions once, in [signals.sessions]")
        return self


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A run file (``extends`` resolved, ``--set`` ``overrides`` applied), validated whole."""
    return load_validated(RunConfig, path, overrides)


def stage_timing_config(cfg: RunConfig, features_db: Path, text_db: Path | None, out: Path) -> TimingConfig:
    """The run's timing section as a stage runs it: on the run's own stores, writing to ``out``."""
    raw = cfg.timing.model_dump(mode="json")
    data = raw["data"]
    data.update(source="provider", path=str(features_db), text_path=str(text_db) if text_db else None)
    for key in ("market_source", "macro_source"):
        data[key] = [resolve_data_path(v) for v in data[key]] if isinstance(data[key], list) else resolve_data_path(data[key])
    for extra in data["extra_predictors"]:
        extra["path"] = resolve_data_path(extra["path"])
    raw["output_dir"] = str(out)
    return validated(TimingConfig, raw, f"the timing section of run {cfg.name!r}")
