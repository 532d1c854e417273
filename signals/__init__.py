"""Point-in-time sentiment features, market and macro data, the DuckDB feature store.

``from signals import FeatureProvider`` is the import API (loaded lazily so that importing
``altsignal.commands.features`` for ``altsignal --help`` stays fast).
"""
from __future__ import annotations

__all__ = ["FeatureProvider", "FeatureStore", "SignalsConfig"]


def __getattr__(name: str):
    if name == "FeatureProvider":
        from signals.provider import FeatureProvider

        return FeatureProvider
    if name == "FeatureStore":
        from signals.store import FeatureStore

        return FeatureStore
    if name == "SignalsConfig":
        from signals.config import SignalsConfig

        return SignalsConfig
    raise AttributeError(f"module 'signals' has no attribute {name!r}")
