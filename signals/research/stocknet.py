"""The StockNet benchmark (Xu & Cohen, ACL 2018) on altsignal features.

Task: binary movement of a stock's adjusted close on target session d (close d-1 -> close d), from
the preceding ``lag`` sessions of tweets and prices. Movements <= -0.5% are 0, > 0.55% are 1, the
rest are dropped; train / dev / test are the paper's date ranges. Text enters through the entry rule:
the features used for target d are the rows that entered at one of the ``lag`` closes before d, so a
position taken at close d-1 never uses a tweet that was not known by then (with the default
``"after"`` rule, the row dated d-1 enters at d's close and is not used for d).

Model choice is made on dev only (MCC, then accuracy); each design (with / without text) is then fit
on train and scored on test once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, matthews_corrcoef
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices
from signals.research.returns import entry_positions

PAPER = {"model": "StockNet (HedgeFundAnalyst, Xu & Cohen 2018, best variant)", "accuracy": 0.5823, "mcc": 0.081}
TEXT_COLUMNS = ("n_docs", "mean_score", "tone", "share_pos", "share_neg")


@dataclass
class Benchmark:
    results: pd.DataFrame  # one row per design on test: accuracy, MCC, n, chosen model
    dev: pd.DataFrame  # every candidate's dev scores (the selection log)
    samples: pd.DataFrame  # the labeled samples with their split
    counts: dict[str, int] = field(default_factory=dict)


def _at_entry(text: pd.DataFrame, prices: Prices, cfg: ResearchConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """Each text column as a sessions x tickers matrix placed at its rows' entry sessions."""
    t = text[text["entity"].isin(set(prices.close.columns))].copy()
    counts = {"text_rows": len(text), "text_rows_unknown_ticker": len(text) - len(t)}
    t["pos"] = entry_positions(t["known_at"], prices.sessions, cfg)
    counts["text_rows_outside_prices"] = int((t["pos"] < 0).sum())
    t = t[t["pos"] >= 0].sort_values("known_at").drop_duplicates(["entity", "pos"], keep="last")
    out = {}
    for c in TEXT_COLUMNS:
        wide = t.pivot(index="pos", columns="entity", values=c).reindex(range(len(prices.sessions)))
        wide.index = prices.sessions
        out[c] = wide.reindex(columns=prices.close.columns)
    return out, counts


def build_samples(prices: Prices, text: pd.DataFrame, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[pd.DataFrame, dict]:
    """One row per (ticker, target session) with price and text features, label and split."""
    sc = cfg.stocknet
    r = prices.returns
    feats = {f"ret_lag{k}": r.shift(k) for k in range(1, sc.lag + 1)}
    feats["vol_lag"] = r.rolling(sc.lag, min_periods=2).std().shift(1)
    wide, counts = _at_entry(text, prices, cfg)
    n = wide["n_docs"].fillna(0)
    # Sums over the entries at closes d-lag .. d-1 (row d holds the sum ending at d-1).
    roll = lambda m: m.rolling(sc.lag, min_periods=1).sum().shift(1)  # noqa: E731
    n_sum = roll(n)
    feats["text_docs"] = np.log1p(n_sum)
    feats["text_days"] = roll((n > 0).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in ("mean_score", "share_pos", "share_neg"):
            feats[f"text_{c}"] = (roll(wide[c].fillna(0) * n) / n_sum).where(n_sum > 0, 0.0)
    feats["text_tone"] = roll(wide["tone"].fillna(0)) / feats["text_days"].where(feats["text_days"] > 0)
    feats["text_tone"] = feats["text_tone"].fillna(0.0)
    feats["text_last_score"] = wide["mean_score"].shift(1).fillna(0.0)
    frame = pd.concat({k: v.stack(future_stack=True) for k, v in feats.items()}, axis=1)
    frame["movement"] = r.stack(future_stack=True)
    frame.index.names = ["date", "ticker"]
    frame = frame.reset_index()
    frame["split"] = None
    for name in ("train", "dev", "test"):
        lo, hi = getattr(sc, name)
        frame.loc[(frame["date"] >= lo) & (frame["date"] < hi), "split"] = name
    frame = frame[frame["split"].notna() & frame["movement"].notna()]
    counts["target_days"] = len(frame)
    keep = (frame["movement"] <= sc.down) | (frame["movement"] > sc.up)
    counts["dropped_small_moves"] = int((~keep).sum())
    frame = frame[keep].copy()
    frame["label"] = (frame["movement"] > sc.up).astype(int)
    price_cols = [c for c in frame.columns if c.startswith(("ret_lag", "vol_lag"))]
    incomplete = frame[price_cols].isna().any(axis=1)
    counts["dropped_incomplete_price_history"] = int(incomplete.sum())
    frame = frame[~incomplete]
    counts["samples_without_tweets"] = int((frame["text_days"] == 0).sum())
    for name in ("train", "dev", "test"):
        counts[f"samples_{name}"] = int((frame["split"] == name).sum())
    return frame.reset_index(drop=True), counts


def candidates(seed: int) -> dict:
    """The model families tried on dev (balanced classes: MCC punishes one-class predictions)."""
    from lightgbm import LGBMClassifier

    out = {f"logreg_C{c}": make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000))
           for c in (0.01, 0.1, 1.0)}
    for leaves in (4, 15):
        for n_est in (100, 400):
            out[f"lgbm_l{leaves}_n{n_est}"] = LGBMClassifier(
                num_leaves=leaves, n_estimators=n_est, learning_rate=0.03, subsample=0.8, subsample_freq=1,
                colsample_bytree=0.8, class_weight="balanced", random_state=seed, verbose=-1, n_jobs=1)
    return out


def _score(model, X, y) -> dict:
    pred = model.predict(X)
    return {"accuracy": float(accuracy_score(y, pred)), "mcc": float(matthews_corrcoef(y, pred)), "n": len(y)}


def run_benchmark(prices: Prices, text: pd.DataFrame, cfg: ResearchConfig = DEFAULT_RESEARCH) -> Benchmark:
    samples, counts = build_samples(prices, text, cfg)
    price_cols = [c for c in samples.columns if c.startswith(("ret_lag", "vol_lag"))]
    text_cols = [c for c in samples.columns if c.startswith("text_")]
    designs = {"prices + text": price_cols + text_cols, "prices only": price_cols}
    split = {k: samples[samples["split"] == k] for k in ("train", "dev", "test")}
    dev_rows, results = [], []
    for design, cols in designs.items():
        best = None
        for name, model in candidates(cfg.stocknet.seed).items():
            model.fit(split["train"][cols].to_numpy(), split["train"]["label"].to_numpy())
            s = _score(model, split["dev"][cols].to_numpy(), split["dev"]["label"].to_numpy())
            dev_rows.append({"design": design, "model": name, **s})
            if best is None or (s["mcc"], s["accuracy"]) > (best[1]["mcc"], best[1]["accuracy"]):
                best = (name, s, model)
        name, dev_score, model = best
        # The test period is scored once per design, with the dev-chosen model.
        test = _score(model, split["test"][cols].to_numpy(), split["test"]["label"].to_numpy())
        results.append({"design": design, "model": name, "dev_mcc": dev_score["mcc"], **test})
    y_test = split["test"]["label"]
    majority = int(split["train"]["label"].mean() >= 0.5)
    results.append({"design": "majority class of train", "model": "constant", "dev_mcc": 0.0,
                    "accuracy": float((y_test == majority).mean()), "mcc": 0.0, "n": len(y_test)})
    results.append({"design": "paper", "model": PAPER["model"], "dev_mcc": np.nan,
                    "accuracy": PAPER["accuracy"], "mcc": PAPER["mcc"], "n": np.nan})
    return Benchmark(results=pd.DataFrame(results), dev=pd.DataFrame(dev_rows), samples=samples, counts=counts)
