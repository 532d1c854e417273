"""Financial PhraseBank v1.0 in its original form: ``sentence@label`` lines, latin-1.

Four files by annotator agreement, nested (all-agree within 75 within 66 within 50). A line is
split on its LAST ``@``; a line without one (the damaged copy in circulation has a lone ``1``),
with an empty sentence or with a label outside {negative, neutral, positive} is rejected with
its line number. Texts are returned exactly as in the file, mojibake included (``+àland`` for
Åland): the split key in :mod:`nlp.splits` is insensitive to it, and rewriting the source would
make our rows disagree with every other copy of the corpus.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from core.errors import UnknownNameError
from core.paths import dataset_path
from core.rejects import Rejects
from nlp.contracts import validate_labeled

log = logging.getLogger(__name__)

DATASET = "financial_phrasebank"
LEVELS: dict[str, str] = {
    "50agree": "Sentences_50Agree.txt",
    "66agree": "Sentences_66Agree.txt",
    "75agree": "Sentences_75Agree.txt",
    "allagree": "Sentences_AllAgree.txt",
}


def level_path(level: str) -> Path:
    if level not in LEVELS:
        raise UnknownNameError(f"unknown PhraseBank level {level!r}; known: {list(LEVELS)}")
    return dataset_path(DATASET, LEVELS[level])


def read_phrasebank(path: str | Path, rejects: Rejects, encoding: str = "latin-1") -> pd.DataFrame:
    """``text``, ``label``, ``line`` of every good line; bad lines go to ``rejects``."""
    path = Path(path)
    rows: list[tuple[str, str, int]] = []
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as exc:
                rejects.add(str(path), line_no, "", f"undecodable bytes: not valid {encoding} ({exc.reason})", raw[:200])
                continue
            if not line.strip():
                rejects.add(str(path), line_no, "", "empty line: expected sentence@label", "")
                continue
            if "@" not in line:
                rejects.add(str(path), line_no, "", "malformed line: expected sentence@label", line)
                continue
            text, label = line.rsplit("@", 1)
            rows.append((text.strip(), label.strip(), line_no))
    df = pd.DataFrame(rows, columns=["text", "label", "_line"])
    good = validate_labeled(df, rejects, str(path))
    log.info("%s: %d sentences, %d rejects", path.name, len(good), len(rejects))
    return good.rename(columns={"_line": "line"})


def read_level(level: str, rejects: Rejects) -> pd.DataFrame:
    """One agreement level of the shared copy, with a ``level`` column."""
    return read_phrasebank(level_path(level), rejects).assign(level=level)
