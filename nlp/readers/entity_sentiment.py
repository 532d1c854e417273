"""Entity-level sentiment sets: FinEntity (Tang et al., EMNLP 2023) and SEntFiN 1.0 (Sinha et al., JASIST 2022).

One row per (text, entity) with ``text``, ``entity``, ``start``, ``end`` (character span of the
entity in ``text``), ``label`` (negative/neutral/positive) and ``line`` (FinEntity: item number,
SEntFiN: CSV line).

Decisions:
- FinEntity offsets are off by one to a few characters for 70 of 2,131 annotations (the value
  sits two characters later in the text); the span is taken at the occurrence of the value
  nearest the given start. An annotation whose value is nowhere in the text is rejected.
- SEntFiN's ``Decisions`` is a Python dict literal, but 13 rows hold an unescaped apostrophe
  (``'Osian's Art Fund'``) that no literal parser accepts; entities are read with a pattern
  anchored on ``': '<label>'``. The span is the first case-sensitive occurrence of the entity,
  else the first case-insensitive one; an entity not found in its headline is rejected.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from core.paths import dataset_path
from core.rejects import Rejects
from nlp.contracts import LABELS

DATASET = "entity_sentiment"
FILES = {"finentity": "FinEntity.json", "sentfin": "SEntFiN.csv"}
COLUMNS = ["text", "entity", "start", "end", "label", "line"]
_DECISION = re.compile(r"'(.+?)': '(\w+)'(?=, '|\}$)")


def file_path(name: str) -> Path:
    return dataset_path(DATASET, FILES[name])


def find_span(text: str, entity: str, near: int = 0) -> tuple[int, int] | None:
    """The occurrence of ``entity`` in ``text`` closest to ``near`` (case-insensitive as a fallback)."""
    for hay, needle in ((text, entity), (text.lower(), entity.lower())):
        starts = [m.start() for m in re.finditer(re.escape(needle), hay)]
        if starts:
            start = min(starts, key=lambda s: (abs(s - near), s))
            return start, start + len(entity)
    return None


def read_finentity(path: str | Path, rejects: Rejects) -> pd.DataFrame:
    path = Path(path)
    rows = []
    for item_no, item in enumerate(json.loads(path.read_text(encoding="utf-8")), start=1):
        text = item.get("content")
        for ann in item.get("annotations", []):
            label = str(ann.get("label", "")).lower()
            span = find_span(text, ann["value"], int(ann["start"])) if isinstance(text, str) and ann.get("value") else None
            if label not in LABELS or span is None:
                why = f"label {label!r} not in {list(LABELS)}" if label not in LABELS else "entity not found in content"
                rejects.add(str(path), item_no, "annotations", why, ann)
                continue
            rows.append((text, ann["value"], *span, label, item_no))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_sentfin(path: str | Path, rejects: Rejects) -> pd.DataFrame:
    path = Path(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = []
    for i, (text, decisions) in enumerate(zip(raw["Title"], raw["Decisions"]), start=2):  # line 1 = header
        found = _DECISION.findall(decisions.strip())
        if not found:
            rejects.add(str(path), i, "Decisions", "no 'entity': 'label' pair", decisions)
        for entity, label in found:
            span = find_span(text, entity)
            if label not in LABELS or span is None:
                why = f"label {label!r} not in {list(LABELS)}" if label not in LABELS else "entity not found in Title"
                rejects.add(str(path), i, "Decisions", why, f"{entity}: {label}")
                continue
            rows.append((text, entity, *span, label, i))
    return pd.DataFrame(rows, columns=COLUMNS)


READERS = {"finentity": read_finentity, "sentfin": read_sentfin}


def mixed_texts(df: pd.DataFrame) -> pd.Series:
    """True for rows whose text names two or more entities with different labels."""
    return df.groupby("text").label.transform("nunique") > 1
