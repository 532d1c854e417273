"""Registry of timing baselines: ``@register_baseline("name")`` maps a name to its factory.

A factory takes ``(spec, make_single_timer, seed)`` and returns a list of model factories (one
name may stand for several models: ``single_factor`` is one per factor).

Decision (no import circle, no heavy import to check a name): this module imports nothing of
``timing``. ``timing.baselines`` imports it to register the built-ins, and ``timing.config``
imports it to check the names a config gives. The built-ins are loaded by module name
(:data:`BUILTIN_MODULES`) the first time names are looked up, the way the CLI loads its commands
through entry points; ``timing.baselines`` keeps sklearn, LightGBM and torch inside its
factories, so that costs pandas only and a config with a bad key still fails in well under 2 s.
A plugin registers its own baselines by being imported before the config is validated.
"""
from __future__ import annotations

import importlib
from typing import Callable

BUILTIN_MODULES = ("timing.baselines",)
BASELINES: dict[str, Callable[..., list]] = {}


def register_baseline(name: str) -> Callable[[Callable[..., list]], Callable[..., list]]:
    """Decorator: register ``factory`` under ``name`` (a name registered twice is a bug)."""

    def register(factory: Callable[..., list]) -> Callable[..., list]:
        if name in BASELINES and BASELINES[name] is not factory:
            raise ValueError(f"baseline {name!r} is registered twice")
        BASELINES[name] = factory
        return factory

    return register


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def baseline_names() -> tuple[str, ...]:
    """Every registered baseline name (the built-ins loaded first)."""
    _load_builtins()
    return tuple(BASELINES)


def baseline_factory(name: str) -> Callable[..., list]:
    _load_builtins()
    return BASELINES[name]
