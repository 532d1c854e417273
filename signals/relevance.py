"""Relevance: how central each of a document's entities is to it, in (0, 1].

News analytics vendors score every (story, company) pair, because a company named in a
headline moves with the story while one listed among twenty tickers rarely does. Definition:

    relevance(d, e) = prominence(d, e) / (1 + ln n_d)

with ``n_d`` the number of entities of ``d`` (a list of many tickers spreads attention), and

- **prominence 1.0**: ``e`` is prominent: its cashtag (``$AAPL``) is in the text, its ticker or a
  company alias (``nlp.entities.load_alias_table``: the shipped table, the sample companies and
  StockNet's when present) is in the title, or, for documents without a title (headlines,
  posts), in the first :data:`LEAD_CHARS` characters; a transcript's own company (its only
  tagged entity) is always prominent;
- **0.7**: mentioned later in the text only;
- **0.4**: tagged by the feed's metadata but never named in the text.

Ticker mentions must be whole upper-case words (``ON`` the ticker, not "on"); aliases match
case-sensitively on word boundaries, as the entity resolver does. A document of one prominent
entity scores 1.0; two prominent entities 0.59 each; one of ten 0.30.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import pandas as pd

LEAD_CHARS = 160  # a headline's length: where an untitled document names what it is about
PROMINENT, MENTIONED, TAGGED = 1.0, 0.7, 0.4


@lru_cache(maxsize=1)
def _aliases() -> dict[str, tuple[str, ...]]:
    from nlp.entities import load_alias_table

    table = load_alias_table()
    return {t: tuple(g) for t, g in table.groupby("ticker")["alias"]}


@lru_cache(maxsize=65536)
def _pattern(ticker: str) -> re.Pattern:
    names = [re.escape(ticker)] + [re.escape(a) for a in _aliases().get(ticker, ())]
    return re.compile(r"(?<![\w$])(?:" + "|".join(sorted(names, key=len, reverse=True)) + r")(?!\w)")


def _cashtag(ticker: str, text: str) -> bool:
    return re.search(r"\$" + re.escape(ticker) + r"(?![A-Za-z])", text, flags=re.I) is not None


def prominence(text: str, title: str | None, entity: str, n_entities: int, source: str) -> float:
    """1.0, 0.7 or 0.4 (see the module docstring)."""
    if source == "transcript" and n_entities == 1:
        return PROMINENT
    if _cashtag(entity, text):
        return PROMINENT
    pattern = _pattern(entity)
    lead = title if title else text[:LEAD_CHARS]
    if pattern.search(lead):
        return PROMINENT
    if pattern.search(text):
        return MENTIONED
    return TAGGED


def relevance(docs: pd.DataFrame) -> pd.DataFrame:
    """One row per (document, entity): ``doc_id``, ``source``, ``entity``, ``relevance``, ``prominence``.

    ``docs``: ``doc_id``, ``source``, ``text``, ``entities`` (list), optional ``title``.
    Documents without entities give no rows (they reach only market-wide features).
    """
    titles = docs["title"] if "title" in docs.columns else pd.Series(None, index=docs.index)
    rows = []
    for doc_id, source, text, ents, title in zip(docs["doc_id"], docs["source"], docs["text"], docs["entities"], titles):
        ents = [e for e in (list(ents) if ents is not None else []) if e]
        if not ents:
            continue
        spread = 1.0 + math.log(len(ents))
        title = title if isinstance(title, str) and title else None
        for e in dict.fromkeys(ents):
            p = prominence(str(text), title, e, len(ents), source)
            rows.append((doc_id, source, e, p / spread, p))
    out = pd.DataFrame(rows, columns=["doc_id", "source", "entity", "relevance", "prominence"])
    out["relevance"] = out["relevance"].astype(np.float64)
    return out
