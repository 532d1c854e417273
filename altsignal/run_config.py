"""The one typed configuration of ``altsignal run``: :class:`RunConfig`, loaded from a TOML file.

A run file has a name, an output folder and one table per section::

    name = "default"
    output_dir = "runs/default"
    [documents]   # inputs and how their arrival is dated
    [scoring]     # model, numeric path, engine
    [signals]     # signals.SignalsConfig: sessions, feature windows, market timing
    [timing]      # timing.TimingConfig; `extends = "default.toml"` starts it from a timing file
    [research]    # reserved (see ResearchConfig)
    [annotations] # signals.annotations.AnnotationConfig: novelty, event types, relevance (the text group)
    [health]      # signals.health.HealthConfig: thresholds of the daily run's checks

It is read by the one loader (``core.config_files``: ``extends``, deep merge, ``--set`` dotted
overrides) and validated whole, every section together, before any stage starts: a bad key
anywhere fails at load, and nothing is written.

Decisions:
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
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.config_files import load_validated, validated
from core.paths import resolve_data_path
from nlp.readers.documents import ColumnMapping, get_preset
from signals.annotations import AnnotationConfig
from signals.config import SignalsConfig
from signals.health import HealthConfig
from timing import CONFIG_DIR
from timing.config import TimingConfig

DEFAULT_RUN_CONFIG = CONFIG_DIR / "run_default.toml"


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
    model: str = "labeled"  # "default", "fast" or "labeled" = a shipped model, else an artifact folder
    numeric: str = "auto"
    engine: Literal["local", "ray"] = "local"
    # a run is a backtest: its scorer must not have learned from text of its documents' period
    # (altsignal.orchestrator.check_text_period); true only for a run not judged as a backtest
    allow_text_overlap: bool = False


class ResearchConfig(_Strict):
    """Reserved: ``altsignal run`` has no research stage yet, so this section takes no keys.

    Decision: the section exists so that run files keep one shape when a research stage joins the
    run (tear sheets and market tests of the run's own feature store, ``signals.research``); until
    then any key here is an error rather than a setting the run silently ignores. The research
    commands take their settings as options (``altsignal research ...``).
    """


class RunConfig(_Strict):
    name: str
    output_dir: Path
    documents: DocumentsConfig
    scoring: ScoringConfig = ScoringConfig()
    signals: SignalsConfig = SignalsConfig()
    timing: TimingConfig = TimingConfig()
    research: ResearchConfig = ResearchConfig()
    annotations: AnnotationConfig = AnnotationConfig()  # the `text` feature group (signals.annotations)
    health: HealthConfig = HealthConfig()  # thresholds of the daily run's checks (altsignal run --as-of)


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A run file (``extends`` resolved, ``--set`` ``overrides`` applied), validated whole."""
    return load_validated(RunConfig, path, overrides)


def stage_timing_config(cfg: RunConfig) -> TimingConfig:
    """The run's timing section as the timing stage runs it: on the run's own store and folder."""
    root = Path(cfg.output_dir)
    raw = cfg.timing.model_dump(mode="json")
    data = raw["data"]
    data.update(source="provider", path=str(root / "features" / "features.duckdb"),
                text_path=str(root / "features" / "text.duckdb") if cfg.annotations.enabled else None)
    for key in ("market_source", "macro_source"):
        data[key] = [resolve_data_path(v) for v in data[key]] if isinstance(data[key], list) else resolve_data_path(data[key])
    for extra in data["extra_predictors"]:
        extra["path"] = resolve_data_path(extra["path"])
    raw["output_dir"] = str(root / "timing")
    return validated(TimingConfig, raw, f"the timing section of run {cfg.name!r}")
