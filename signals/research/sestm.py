"""Documents paired with their announcement returns, to train SESTM (:mod:`nlp.sestm`) on past years.

A document about one ticker, published at t, has its news session e = the first session whose
close is strictly after t. Its announcement return is the ticker's market-adjusted return over
sessions e-1..e+1 (close e-2 to close e+1), the three-day window of Ke, Kelly & Xiu. That window
ends after the document, which is fine for *training* only: the model is then used on documents
published after its training period (:func:`sestm_scores` refuses the rest).

Purging (no label leakage across a boundary): a training document is kept only if the last session
of its return window (e+1) is on or before the last day of its block: ``until`` for the final fit,
the day before ``validate_from`` for the fit block when choosing on validation. A headline of
2013-12-31 (window ending 2014-01-02) is therefore dropped from a model trained to 2013-12-31, and
returns after a boundary change nothing fitted before it. The numbers dropped are reported
(``purged``, ``purged_from_training_block``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import UsageError
from nlp.sestm import Sestm, SestmConfig, SestmGrid, SestmScorer, fit_sestm, validate_sestm
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.lexicon import whole_document_scores
from signals.research.prices import Prices
from signals.research.returns import entry_positions, excess


def single_ticker(docs: pd.DataFrame) -> pd.DataFrame:
    """Documents naming exactly one ticker, with it as ``ticker``."""
    one = docs[docs["entities"].map(len) == 1]
    return one.assign(ticker=one["entities"].map(lambda e: e[0]))


def _news_sessions(docs: pd.DataFrame, prices: Prices, cfg: ResearchConfig) -> np.ndarray:
    """Position of each document's news session e (first close strictly after it; -1 beyond the grid)."""
    close_cfg = cfg.model_copy(update={"entry": cfg.entry.model_copy(update={"price": "close", "rule": "after"})})
    return entry_positions(docs["published_at"], prices.sessions, close_cfg)


def window_ends(docs: pd.DataFrame, prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> pd.Series:
    """Date of the last session (e+1) of each document's announcement window (NaT beyond the grid)."""
    e = _news_sessions(docs, prices, cfg)
    last = np.where((e >= 0) & (e + 1 < len(prices.sessions)), e + 1, -1)
    dates = pd.Series(prices.sessions.tz_localize(None).normalize()).reindex(last).to_numpy()
    return pd.Series(dates, index=docs.index)


def announcement_returns(docs: pd.DataFrame, prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> pd.Series:
    """Market-adjusted return over the news session and its neighbours, per document (NaN where a
    price is missing); ``docs`` needs ``published_at`` and ``ticker``."""
    e = _news_sessions(docs, prices, cfg)
    ex = np.log1p(excess(prices.returns, prices.market_returns))
    window = ex.rolling(3, min_periods=3).sum().shift(-1)  # row e: sessions e-1, e, e+1
    col = pd.Series(np.arange(len(ex.columns)), index=ex.columns)
    known = docs["ticker"].isin(col.index).to_numpy() & (e >= 1)
    out = np.full(len(docs), np.nan)
    out[known] = window.to_numpy()[e[known], col[docs["ticker"][known]].to_numpy()]
    return pd.Series(np.expm1(out), index=docs.index)


def _with_returns(docs: pd.DataFrame, prices: Prices, until,
                  research: ResearchConfig) -> tuple[pd.DataFrame, pd.Series, pd.Series, dict]:
    """Single-ticker documents published up to ``until`` (inclusive, a date) whose announcement
    window ends on or before ``until`` (the rest are purged and counted), their returns, the window
    ends, and counts of what was kept."""
    one = single_ticker(docs)
    end = pd.Timestamp(until).tz_localize(research.sessions.tz) + pd.Timedelta(days=1)
    train = one[pd.to_datetime(one["published_at"], utc=True) < end]
    y = announcement_returns(train, prices, research)
    ends = window_ends(train, prices, research)
    crosses = ends.isna() | (ends > pd.Timestamp(until))
    keep = y.notna() & ~crosses
    counts = {"documents": len(docs), "single_ticker": len(one), "in_training_period": len(train),
              "purged": int((y.notna() & crosses).sum()), "with_return": int(keep.sum())}
    if not counts["with_return"]:
        raise UsageError(f"no document up to {until} has an announcement return ending by then",
                         hint="check --prices and the dates")
    return train[keep], y[keep], ends[keep], counts


def train_sestm(docs: pd.DataFrame, prices: Prices, until, cfg: SestmConfig = SestmConfig(),
                research: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Sestm, dict]:
    """SESTM fit on the single-ticker documents published up to ``until`` (inclusive, a date) whose
    3-day return window ends by ``until`` (later windows are purged: ``counts["purged"]``)."""
    used, y, _, counts = _with_returns(docs, prices, until, research)
    published = pd.to_datetime(used["published_at"], utc=True)
    period = [published.min().isoformat(), published.max().isoformat()]  # as distillation records it
    model = fit_sestm(used["text"].tolist(), y.to_numpy(), cfg, text_period=period)
    counts["words"] = len(model.words)
    return model, counts


def choose_sestm(docs: pd.DataFrame, prices: Prices, validate_from, until, grid: SestmGrid = SestmGrid(),
                 research: ResearchConfig = DEFAULT_RESEARCH) -> tuple[SestmConfig, pd.DataFrame, dict]:
    """Settings chosen on a validation block: fit each grid point on documents published before
    ``validate_from``, rank them on those from ``validate_from`` to ``until`` (both dates, New York),
    with :func:`nlp.sestm.validate_sestm`. Every return window ends by ``until`` and, in the fit
    block, before ``validate_from`` (the rest are purged and counted), so neither the test period
    nor the validation block's returns reach a fit; retrain on the whole span with the chosen settings."""
    used, y, ends, counts = _with_returns(docs, prices, until, research)
    start = pd.Timestamp(validate_from).tz_localize(research.sessions.tz)
    valid = (pd.to_datetime(used["published_at"], utc=True) >= start).to_numpy()
    fit = ~valid & (ends < pd.Timestamp(validate_from)).to_numpy()
    counts.update(training_block=int(fit.sum()), purged_from_training_block=int((~valid & ~fit).sum()),
                  validation_block=int(valid.sum()))
    if not valid.any() or not fit.any():
        raise UsageError(f"--validate-from {validate_from} leaves an empty training or validation block before {until}")
    texts = used["text"].to_numpy()
    cfg, table = validate_sestm(texts[fit], y[fit], texts[valid], y[valid], grid)
    return cfg, table, counts


def sestm_scores(docs: pd.DataFrame, scorer: SestmScorer) -> tuple[pd.DataFrame, int]:
    """Score rows (one unit per document) of the documents published after the model's training
    text, and how many were refused for falling inside or before it."""
    period = scorer.model.text_period
    if not period:
        raise UsageError("this SESTM model does not record its training period; retrain it with `altsignal models train-sestm`")
    end = pd.Timestamp(period[1])
    end = end if end.tzinfo else end.tz_localize("UTC") + pd.Timedelta(days=1)  # a bare date covers its whole day
    after = pd.to_datetime(docs["published_at"], utc=True) > end
    return whole_document_scores(docs[after], scorer), int((~after).sum())
