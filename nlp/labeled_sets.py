"""One name -> one labeled set (``text``, ``label`` in {negative, neutral, positive}, ``line``).

Names (``<kind>:<rest>``, the kind looked up in :data:`nlp.registry.readers`):
- ``fpb:<level>:<split>``: Financial PhraseBank, level in 50agree/66agree/75agree/allagree,
  split in train/validation/test/all (canonical split of :mod:`nlp.splits`, manifest-checked);
- ``tfns:train`` / ``tfns:validation`` (carved from the published train file) / ``tfns:test``
  (= ``tfns:valid``, the published validation file) / ``tfns:all``;
- ``finentity:<split>`` / ``sentfin:<split>``: entity-level sets, one row per (text, entity) with
  ``entity``, ``start``, ``end`` (the span in ``text``) and ``mixed`` (the text names entities of
  different labels); split by text (SEntFiN without its PhraseBank sentences);
- ``sample:labeled``: the project's hand-labeled smoke-test sentences;
- ``hf:<dataset>[:<config>]:<split>``: a hub dataset (online users);
- anything else is a file path (CSV / JSONL / Parquet) read with ``text_col``, ``label_col`` and
  an optional ``label_map`` (e.g. ``{"0": "negative", "1": "positive", "2": "neutral"}``).
Bad rows of a file go to ``rejects`` (and are logged); canonical sets refuse unreadable sources.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import UnknownNameError
from core.paths import SAMPLE_DIR
from core.rejects import Rejects
from nlp.readers.hub import load_hub_labeled
from nlp.readers.labeled_table import read_labeled_table
from nlp.registry import readers
from nlp.splits import load_split

log = logging.getLogger(__name__)

TFNS_ALIASES = {"valid": "test"}


@dataclass(frozen=True)
class ReadOptions:
    """How a file or hub set is read; the canonical sets ignore it."""

    text_col: str = "text"
    label_col: str = "label"
    label_map: dict[str, str] | None = None
    rejects: Rejects = field(default_factory=Rejects)


@readers.register("fpb")
def _phrasebank(rest: str, options: ReadOptions) -> pd.DataFrame:
    level, _, split = rest.partition(":")
    return load_split("fpb", split or "all", level=level)


@readers.register("tfns")
def _tfns(rest: str, options: ReadOptions) -> pd.DataFrame:
    return load_split("tfns", TFNS_ALIASES.get(rest, rest))


@readers.register("finentity")
def _finentity(rest: str, options: ReadOptions) -> pd.DataFrame:
    return load_split("finentity", rest)


@readers.register("sentfin")
def _sentfin(rest: str, options: ReadOptions) -> pd.DataFrame:
    return load_split("sentfin", rest)


@readers.register("sample")
def _sample(rest: str, options: ReadOptions) -> pd.DataFrame | None:
    return _file(SAMPLE_DIR / "labeled_sentences.csv", options) if rest == "labeled" else None


@readers.register("hf")
def _hub(rest: str, options: ReadOptions) -> pd.DataFrame:
    parts = rest.split(":")
    path, config, split = parts[0], (parts[1] if len(parts) == 3 else None), parts[-1] if len(parts) > 1 else "train"
    return load_hub_labeled(path, config, split, text_col=options.text_col, label_col=options.label_col,
                            label_map=options.label_map, rejects=options.rejects)


def load_labeled_set(
    name: str | Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    label_map: dict[str, str] | None = None,
    rejects: Rejects | None = None,
) -> pd.DataFrame:
    options = ReadOptions(text_col, label_col, label_map, rejects if rejects is not None else Rejects())
    spec = str(name)
    kind, _, rest = spec.partition(":")
    got = readers.get(kind)(rest, options) if rest and kind in readers.names() else None
    if got is not None:
        return got
    if Path(spec).exists():
        return _file(Path(spec), options)
    raise UnknownNameError(
        f"unknown labeled set {spec!r}: expected fpb:<level>:<split>, tfns:<split>, finentity:<split>, sentfin:<split>, sample:labeled, "
        "hf:<dataset>[:<config>]:<split> or an existing file"
    )


def _file(path: Path, options: ReadOptions) -> pd.DataFrame:
    rejects = options.rejects
    before = len(rejects)
    df = read_labeled_table(path, rejects, options.text_col, options.label_col, options.label_map)
    if len(rejects) > before:
        log.warning("%s: %d rows rejected %s", path, len(rejects) - before, rejects.counts())
    return df
