"""Registries by name, spaCy style: a new scorer, baseline or labeled-set reader is one decorated
definition, and every name a config or the CLI accepts is looked up here.

    from nlp.registry import scorers

    @scorers.register("my_lexicon")
    class MyLexicon(ScorerBase): ...

    scorers.get("my_lexicon")

Decision: this module imports nothing of ``nlp``, so any room can register into it without a
circle. The rooms that define the built-in entries are imported by name on the first lookup
(``builtin_modules``), the way spaCy populates its registries, so a lookup from the scoring job
finds the transformer scorer defined above it without the job importing upwards.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from core.errors import UnknownNameError


class Registry:
    """Names -> entries (classes or functions) of one kind."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...]) -> None:
        self.kind = kind
        self.builtin_modules = builtin_modules
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def add(entry: Any) -> Any:
            if self._entries.get(name, entry) is not entry:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> Any:
        # One builtin module at a time: a lexicon lookup does not import torch with the transformer.
        for module in self.builtin_modules:
            if name in self._entries:
                break
            importlib.import_module(module)
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {self.names()}") from None

    def names(self) -> list[str]:
        """In registration order (the order reports list them in)."""
        for module in self.builtin_modules:
            importlib.import_module(module)
        return list(self._entries)


scorers = Registry("scorer", ("nlp.lexicon", "nlp.sestm", "nlp.scorer"))
baselines = Registry("baseline", ("nlp.models.baselines",))
readers = Registry("labeled-set reader", ("nlp.labeled_sets",))
