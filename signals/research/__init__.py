"""Signal research: what features are worth against returns, point-in-time.

Python API (each takes a :class:`signals.FeatureProvider` and a price source)::

    from signals import FeatureProvider
    from signals.research import load_prices, tearsheet_report
    fp = FeatureProvider("runs/research/tweets.duckdb", market_source=None, macro_source=None)
    prices = load_prices("stock_prices", tickers=["AAPL", "XOM"], start="2014-01-01", end="2016-03-31")
    report, summary = tearsheet_report(fp, prices, "social", ["tone"])
    report.write("runs/research/tearsheet")

Lower level: :func:`tear_sheet`, :func:`event_study`, :func:`market_test`, :func:`run_benchmark`
take plain frames. Attributes load lazily so ``altsignal --help`` stays fast.
"""
from __future__ import annotations

_EXPORTS = {
    "ResearchConfig": "signals.research.config",
    "DEFAULT_RESEARCH": "signals.research.config",
    "Prices": "signals.research.prices",
    "load_prices": "signals.research.prices",
    "price_panel": "signals.research.prices",
    "tear_sheet": "signals.research.tearsheet",
    "event_study": "signals.research.events",
    "market_test": "signals.research.market_test",
    "run_benchmark": "signals.research.stocknet",
    "tearsheet_report": "signals.research.runs",
    "market_report": "signals.research.runs",
    "event_report": "signals.research.runs",
    "event_frame": "signals.research.runs",
    "stocknet_report": "signals.research.runs",
    "store_from_scores": "signals.research.runs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'signals.research' has no attribute {name!r}")
