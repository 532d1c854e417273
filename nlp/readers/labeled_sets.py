"""One name -> one labeled set (``text``, ``label`` in {negative, neutral, positive}, ``line``).

Names:
- ``fpb:<level>:<split>``: Financial PhraseBank, level in 50agree/66agree/75agree/allagree,
  split in train/validation/test/all (canonical split of :mod:`nlp.splits`, manifest-checked);
- ``tfns:train`` / ``tfns:validation`` (carved from the published train file) / ``tfns:test``
  (= ``tfns:valid``, the published validation file) / ``tfns:all``;
- ``sample:labeled``: the project's hand-labeled smoke-test sentences;
- ``hf:<dataset>[:<config>]:<split>``: a hub dataset (online users);
- anything else is a file path (CSV / JSONL / Parquet) read with ``text_col``, ``label_col`` and
  an optional ``label_map`` (e.g. ``{"0": "negative", "1": "positive", "2": "neutral"}``).
Bad rows of a file go to ``rejects`` (and are logged); canonical sets refuse unreadable sources.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from core.errors import UnknownNameError
from core.paths import SAMPLE_DIR
from core.rejects import Rejects
from nlp.readers.hub import load_hub_labeled
from nlp.readers.labeled_table import read_labeled_table
from nlp.splits import load_split

log = logging.getLogger(__name__)

TFNS_ALIASES = {"valid": "test"}


def load_labeled_set(
    name: str | Path,
    *,
    text_col: str = "text",
    label_col: str = "label",
    label_map: dict[str, str] | None = None,
    rejects: Rejects | None = None,
) -> pd.DataFrame:
    rejects = rejects if rejects is not None else Rejects()
    spec = str(name)
    kind, _, rest = spec.partition(":")
    if kind == "fpb" and rest:
        level, _, split = rest.partition(":")
        return load_split("fpb", split or "all", level=level)
    if kind == "tfns" and rest:
        return load_split("tfns", TFNS_ALIASES.get(rest, rest))
    if spec == "sample:labeled":
        return _file(SAMPLE_DIR / "labeled_sentences.csv", text_col, label_col, label_map, rejects)
    if kind == "hf" and rest:
        parts = rest.split(":")
        path, config, split = parts[0], (parts[1] if len(parts) == 3 else None), parts[-1] if len(parts) > 1 else "train"
        return load_hub_labeled(path, config, split, text_col=text_col, label_col=label_col,
                                label_map=label_map, rejects=rejects)
    if Path(spec).exists():
        return _file(Path(spec), text_col, label_col, label_map, rejects)
    raise UnknownNameError(
        f"unknown labeled set {spec!r}: expected fpb:<level>:<split>, tfns:<split>, sample:labeled, "
        "hf:<dataset>[:<config>]:<split> or an existing file"
    )


def _file(path: Path, text_col: str, label_col: str, label_map: dict[str, str] | None, rejects: Rejects) -> pd.DataFrame:
    before = len(rejects)
    df = read_labeled_table(path, rejects, text_col, label_col, label_map)
    if len(rejects) > before:
        log.warning("%s: %d rows rejected %s", path, len(rejects) - before, rejects.counts())
    return df
