"""A FeatureProvider panel (sentiment + market + macro) runs through the timing pipeline."""
import pandas as pd

from signals import FeatureProvider
from signals.store import FeatureStore
from signals.synthetic import synthetic_scores
from timing.backtest import run_backtest
from timing.config import TimingConfig
from timing.data import from_provider_panel
from timing.dataset import MASK_SUFFIX, feature_columns


def test_provider_panel_through_backtest(tmp_path):
    db = tmp_path / "f.duckdb"
    with FeatureStore(db) as store:
        store.add_scores(synthetic_scores(n_rows=4000, n_entities=20, start="2008-01-01", years=9.0, seed=1))
        store.build(as_of=pd.Timestamp("2018-01-01", tz="UTC"))
    provider = FeatureProvider(db)
    try:
        frame = provider.panel("2006-01-01", "2016-12-31", frequency="monthly")
    finally:
        provider.close()
    from signals.market import load_french

    panel = from_provider_panel(frame, load_french("monthly", "packaged"))
    sentiment = feature_columns(panel, ("sentiment",))
    assert sentiment and feature_columns(panel, ("market",)) and feature_columns(panel, ("macro",))
    assert not [c for c in panel.columns if "known_at" in c or c.startswith("avail_")]
    # before the scores start, sentiment is masked rather than zero-filled
    first = sentiment[0]
    assert panel.loc["2006-06-30", first + MASK_SUFFIX] == 0.0
    assert panel[first + MASK_SUFFIX].iloc[-1] == 1.0
    assert {"Mkt-RF", "SMB", "HML", "Mom"} <= set(panel.columns)

    cfg = TimingConfig(
        factors=("Mkt-RF", "HML"), baselines=("historical_mean", "ridge", "equal_weight"),
        network={"lookback": 1, "hidden": 4, "epochs": 5, "seeds": [0], "grid": {}},
        walkforward={"min_train": 60, "refit_every": 24, "n_jobs": 1},
        explain={"level": "full", "permutation_repeats": 1, "ig_steps": 4, "ablate_groups": ["sentiment"]},
    )
    result = run_backtest(cfg, panel, progress=False)
    assert set(result.importance.index) == {"macro", "market", "sentiment"}
    assert list(result.ablation.status) == ["with", "without"]
    assert result.summary["first_test"] > "2011-01-01"


def test_ablations_run_only_at_the_full_explain_level():
    from timing.synthetic import synthetic_panel

    panel = synthetic_panel(n=140)
    base = dict(factors=("Mkt-RF", "SMB"), baselines=("historical_mean",),
                network={"lookback": 1, "hidden": 4, "epochs": 3, "seeds": [0], "grid": {}},
                walkforward={"min_train": 60, "refit_every": 40, "n_jobs": 1},
                explain={"permutation_repeats": 1, "ig_steps": 4, "ablate_groups": ["sentiment"]})
    fast = run_backtest(TimingConfig(**base), panel, progress=False)
    assert len(fast.importance) and len(fast.integrated_gradients) and fast.ablation.empty
    assert "ablation" not in fast.summary["seconds"]
    base["explain"] = base["explain"] | {"level": "none"}
    none = run_backtest(TimingConfig(**base), panel, progress=False)
    assert none.importance.empty and none.ablation.empty
