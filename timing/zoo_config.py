"""The ``[zoo]`` section: settings of a many-task timing run (``timing.zoo_backtest``).

Used only when the config has a ``[targets]`` section (``timing.targets``). Books use the
config's ``[portfolio]`` section (vol target, cap, band, turnover penalty, costs); folds and the
validation/test split use ``[walkforward]``; shared predictors come from the ``[data]`` panel.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from core.config_files import Strict

ZOO_MODELS = ("single_task_net", "ridge", "pooled_ridge", "factor_momentum", "pc_timing",
              "equal_weight", "vol_managed", "combination", "combination_dmspe")


class ZooNetworkConfig(Strict):
    """The many-task network (``timing.zoo_network``) and, with ``twin_hidden``, its twins."""

    hidden: int = Field(32, ge=2, description="width of the shared trunk and of the task block")
    task_dim: int = Field(8, ge=0, description="task embedding size (0: none)")
    theme_dim: int = Field(4, ge=0, description="theme embedding size (0: none)")
    heads: Literal["theme", "task", "shared"] = "theme"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    lr: float = Field(3e-3, gt=0.0)
    epochs: int = Field(60, ge=1)
    patience: int = Field(8, ge=1)
    batch_months: int = Field(32, ge=1)
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    seeds: tuple[int, ...] = (0, 1, 2)
    # forecast = mean + w (model - mean), w from shrink_grid on the validation tail, one per
    # task, per theme or one for all
    shrink_level: Literal["task", "theme", "global"] = "theme"
    shrink_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    twin_hidden: int = Field(8, ge=1, description="width of each single-task twin")

    @field_validator("seeds")
    @classmethod
    def _some(cls, v):
        if not v:
            raise ValueError("zoo.network.seeds must name at least one seed")
        return v


class ZooConfig(Strict):
    goyal_welch: str | None = None  # e.g. "datasets:goyal_welch/PredictorData_monthly_to2018.csv"
    # months after its reference month a Goyal-Welch value is first used; ep (E12) and infl (CPI)
    # are published later, so they wait gw_slow_lag_months
    gw_lag_months: int = Field(1, ge=1)
    gw_slow_lag_months: int = Field(2, ge=1)
    # shared predictors: panel feature columns starting with one of these (gw.* always when read)
    shared_prefixes: tuple[str, ...] = ("macro.", "market.Mkt-RF_ret_", "market.Mkt-RF_rv_63d", "market.RF")
    own_months: tuple[int, ...] = (1, 3, 12)  # trailing compounded returns of each task
    vol_months: int = Field(12, ge=3)  # trailing realized volatility of each task
    models: tuple[str, ...] = ZOO_MODELS
    combination_members: tuple[str, ...] = ("network", "single_task_net", "ridge", "factor_momentum")
    # DMSPE (Stock & Watson 2004; Rapach, Strauss & Zhou 2010): weights ~ 1 / discounted squared
    # error of each member's out-of-sample forecasts, computed from validation-part forecasts only
    dmspe_discount: float = Field(0.95, gt=0.0, le=1.0)
    dmspe_holdout: int = Field(60, ge=12, description="validation months before DMSPE weights are used")
    pc_k: int = Field(5, ge=1)
    theme_book: bool = True
    # cap on |weight| per theme in the theme book (portfolio.max_weight caps single tasks): theme
    # portfolios of long-short factors have single-digit volatility, so a 10% target needs leverage
    theme_max_weight: float = Field(2.0, gt=0.0)
    # per-id or per-group costs in bps (others: portfolio.cost_bps); a CSV with id,cost_bps also works
    cost_bps_by_group: dict[str, float] = Field(default_factory=dict)
    cost_bps_file: str | None = None
    bootstrap_reps: int = Field(1000, ge=50, description="Sharpe intervals and Sharpe-difference tests")
    n_jobs: int = Field(2, ge=1, description="folds fitted in parallel processes")
    threads: int = Field(1, ge=1, description="torch threads per process")
    network: ZooNetworkConfig = ZooNetworkConfig()

    @field_validator("models")
    @classmethod
    def _known(cls, v):
        unknown = [m for m in v if m not in ZOO_MODELS]
        if unknown:
            raise ValueError(f"unknown zoo model(s) {unknown}; known: {list(ZOO_MODELS)}")
        return v
