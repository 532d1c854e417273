"""Direct allocators over the factor zoo's themes (issue 26): the 13 themes as assets.

A theme's return is the zoo theme book's own (``timing.zoo_books.theme_frames``: the equal-weight
mean of its factors present that month). What a direct allocator sees at decision D, all known at
D's close: the zoo's shared predictors (``ZooPanel.shared``: FRED-MD, market, Welch-Goyal, lagged
as in ``timing.zoo_data``) and each theme's own trailing 1/3/12-month returns and volatility
(``timing.zoo_data.own_predictors`` on the theme returns, trailing windows only). The allocators
are the default panel's (``timing.allocators.make_allocator``, fitted per fold by ``run_direct`` on
the zoo's folds) and trade through ``timing.portfolio.run_book`` under the theme book's
constraints (``portfolio`` with ``zoo.theme_max_weight``), so they sit beside ``network:themes``.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from timing.allocators import make_allocator, run_direct
from timing.dataset import PanelSpec
from timing.portfolio import PortfolioResult, run_book
from timing.zoo_data import ZooPanel, own_predictors

THEME_FEATURE_GROUP = "extra"  # the theme's own predictors, beside the shared macro./market. columns


def theme_panel(theme_returns: pd.DataFrame, zp: ZooPanel, own_months: tuple[int, ...], vol_months: int) -> pd.DataFrame:
    """Theme returns (one column per theme) next to the point-in-time features, one row per month end."""
    own, names, _ = own_predictors(theme_returns, own_months, vol_months)
    themes = list(theme_returns.columns)
    own_cols = {f"{THEME_FEATURE_GROUP}.{t}.{n}": own[:, k, j] for k, t in enumerate(themes) for j, n in enumerate(names)}
    shared = pd.DataFrame(zp.shared, index=zp.dates, columns=zp.shared_names)
    return pd.concat([theme_returns.reindex(zp.dates), shared, pd.DataFrame(own_cols, index=zp.dates)], axis=1)


def direct_theme_books(cfg, zp: ZooPanel, folds, theme_returns: pd.DataFrame, theme_pc, theme_costs: np.ndarray,
                       progress: bool = True) -> tuple[dict[str, PortfolioResult], dict[str, float], dict[str, list]]:
    """One ``<allocator>:themes`` book per direct allocator in ``portfolio.allocator``; with the
    seconds each took and its training curves."""
    from core.errors import UsageError

    if not np.allclose(theme_costs, theme_pc.cost_bps):  # run_book charges one cost per unit of turnover
        raise UsageError("direct allocators on the zoo's themes need one cost for every theme "
                         "(portfolio.cost_bps; drop zoo.cost_bps_by_group / zoo.cost_bps_file)")
    z = cfg.zoo
    panel = theme_panel(theme_returns, zp, tuple(z.own_months), z.vol_months)
    themes = tuple(theme_returns.columns)
    features = tuple(c for c in panel.columns if c not in themes)
    st = cfg.stability
    spec = PanelSpec(features, themes, cfg.network.lookback, 1, clip=st.clip, scaling=st.scaling,
                     val_fraction=cfg.network.val_fraction)
    books, seconds, curves = {}, {}, {}
    for name in theme_pc.direct_allocators:
        t = time.perf_counter()
        wf = run_direct(panel, make_allocator(name, cfg.network, cfg.direct, theme_pc, 12.0), folds, spec,
                        theme_pc.cov_window, progress, z.n_jobs, z.threads)
        books[f"{name}:themes"] = run_book(wf.policy(), list(themes), wf.dates, panel[list(themes)], theme_pc, 1, 12.0, False)
        seconds[name] = round(time.perf_counter() - t, 2)
        curves[name] = wf.training_curves()
    return books, seconds, curves
