"""Text side of altsignal: documents, sentences, entities, sentiment models, evaluation.

`nlp` imports neither `signals` nor `timing` (dependencies flow one way, see DESIGN.md).

Public API (imported on first use, so ``import nlp`` stays cheap)::

    from nlp import Scorer
    Scorer.load("default").score(["Profit rose 12%."])

Every scorer (the transformer ``Scorer``, the lexicons, the baselines) follows one protocol
(:mod:`nlp.protocol`) and is found by name in :mod:`nlp.registry`.
"""
from __future__ import annotations

import importlib

# name -> module that defines it
_PUBLIC = {"Scorer": "nlp.scorer", "model_path": "nlp.models", "AltsignalError": "core.errors",
           "UsageError": "core.errors"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nlp' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
