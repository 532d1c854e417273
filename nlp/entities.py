"""Which companies a document is about: explicit tickers, $cashtags, company names.

Resolution order (decision): an explicit ticker column wins - it is curated by the source (a
news vendor's tag, a transcript's company, the StockNet folder a tweet was filed under); adding
every company a text merely mentions would attribute one call's tone to its competitors and
count a multi-cashtag tweet once per ticker row. Only documents without explicit tickers are
resolved from the text: ``$CASHTAGS`` plus company names from the alias table, matched with a
spaCy ``PhraseMatcher`` (case-sensitive, so "Apple" the company, not "apple"). Nothing found =
market-wide (empty entity list, keyed :data:`nlp.contracts.MARKET_ENTITY` downstream).

Tickers are normalised to upper case with share-class separators as ``-`` (``BRK.B`` ->
``BRK-B``, ``$RDS.B`` -> ``RDS-B``), the Yahoo/StockNet form.

The alias table is ``corpora/aliases.csv`` (``ticker,alias``, ``#`` comment lines allowed; a user
extends it by adding rows or passing more files), plus the sample companies of
``corpora/sample/companies.csv`` and, when the shared datasets are present, aliases built at run
time from StockNet's ``StockTable.tsv`` (never copied into the repository). spaCy's NER ``ORG``
entities were not used: an ORG span still needs the alias table to become a ticker, and the
alias table alone finds the same spans without running the parser-sized NER model.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core.paths import CORPORA_DIR, SAMPLE_DIR, datasets_dir

log = logging.getLogger(__name__)

ALIASES_CSV = CORPORA_DIR / "aliases.csv"
# $ + 1-5 capital letters, optional class suffix; not "$5", "$ 15" or a lower-case "$lol".
CASHTAG = re.compile(r"(?<![\w$])\$([A-Z]{1,5}(?:[.-][A-Z]{1,2})?)(?![\w])")
_LEGAL = re.compile(
    r"[\s,]+(?:inc\.?|incorporated|corporation|corp\.?|company|co\.|limited|ltd\.?|plc|p\.l\.c\.|"
    r"s\.a\.|sa/nv|n\.v\.|ag|l\.p\.|holdings?|group)$",
    re.I,
)


def normalize_ticker(ticker: str) -> str:
    return ticker.strip().lstrip("$").upper().replace(".", "-")


def cashtags(text: str) -> list[str]:
    return list(dict.fromkeys(normalize_ticker(m) for m in CASHTAG.findall(text)))


def company_aliases(name: str) -> list[str]:
    """A company name and its short forms: legal suffixes and a leading "The" removed."""
    name = " ".join(name.split())
    out = [name]
    core = name
    while True:
        shorter = _LEGAL.sub("", core).strip(" ,")
        if shorter == core or not shorter:
            break
        core = shorter
        out.append(core)
    out += [a[4:] for a in out if a.startswith("The ")]
    return [a for a in dict.fromkeys(out) if len(a) >= 3]


def stocknet_aliases(path: str | Path | None = None) -> pd.DataFrame:
    """``ticker,alias`` rows built from StockNet's ``StockTable.tsv`` (read in place)."""
    path = Path(path) if path else datasets_dir() / "dated_social" / "StockTable.tsv"
    table = pd.read_csv(path, sep="\t", dtype=str)
    rows = [(normalize_ticker(sym), alias) for sym, name in zip(table["Symbol"], table["Company"])
            for alias in company_aliases(str(name))]
    return pd.DataFrame(rows, columns=["ticker", "alias"])


def sample_aliases(path: str | Path | None = None) -> pd.DataFrame:
    """``ticker,alias`` rows of the sample corpus companies (``company`` + ``|``-separated aliases)."""
    path = Path(path) if path else SAMPLE_DIR / "companies.csv"
    table = pd.read_csv(path, dtype=str).fillna("")
    rows = []
    for ticker, company, aliases in zip(table["ticker"], table["company"], table["aliases"]):
        names = company_aliases(company) + [a.strip() for a in aliases.split("|") if a.strip()]
        rows += [(normalize_ticker(ticker), a) for a in dict.fromkeys(names)]
    return pd.DataFrame(rows, columns=["ticker", "alias"])


def load_alias_table(extra: Iterable[str | Path] = (), include_sample: bool = True,
                     include_stocknet: bool = True) -> pd.DataFrame:
    """The shipped alias table + sample companies + StockNet (when present) + ``extra`` files."""
    parts = [pd.read_csv(ALIASES_CSV, comment="#", dtype=str, skipinitialspace=True)]
    parts += [pd.read_csv(p, comment="#", dtype=str, skipinitialspace=True) for p in extra]
    if include_sample and (SAMPLE_DIR / "companies.csv").exists():
        parts.append(sample_aliases())
    stocknet = datasets_dir() / "dated_social" / "StockTable.tsv"
    if include_stocknet and stocknet.exists():
        parts.append(stocknet_aliases(stocknet))
    table = pd.concat(parts, ignore_index=True).dropna()
    table["ticker"] = table["ticker"].map(normalize_ticker)
    table["alias"] = table["alias"].str.strip()
    return table[table["alias"].str.len() > 0].drop_duplicates().reset_index(drop=True)


class EntityResolver:
    """Tickers of texts from cashtags and company-name aliases (spaCy PhraseMatcher)."""

    def __init__(self, aliases: pd.DataFrame) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        self.nlp = spacy.blank("en")
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        for ticker, group in aliases.groupby("ticker"):
            self.matcher.add(ticker, list(self.nlp.tokenizer.pipe(group["alias"].tolist())))

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> "EntityResolver":
        return cls(load_alias_table())

    def from_text(self, texts: Sequence[str], batch_size: int = 1000) -> list[list[str]]:
        """Cashtags first, then alias matches, in order of appearance, without repeats."""
        out = []
        for text, doc in zip(texts, self.nlp.tokenizer.pipe(texts, batch_size=batch_size)):
            found = cashtags(text)
            for match_id, _, _ in sorted(self.matcher(doc), key=lambda m: m[1]):
                found.append(self.nlp.vocab.strings[match_id])
            out.append(list(dict.fromkeys(found)))
        return out

    def mentions(self, texts: Sequence[str], wanted: Sequence[Sequence[str]]) -> list[dict[str, tuple[int, int]]]:
        """Per text, the character span of the first mention of each of its ``wanted`` tickers
        (a ``$CASHTAG`` or an alias-table name); a ticker the text does not name has no span.

        What an entity-level scorer marks (:mod:`nlp.entity_input`): an explicit ticker that the
        text never names (a vendor's tag) gets no span, and its document keeps the sentence score.
        """
        out = []
        for text, want, doc in zip(texts, wanted, self.nlp.tokenizer.pipe(texts)):
            found: dict[str, tuple[int, int]] = {}
            for m in CASHTAG.finditer(text):
                found.setdefault(normalize_ticker(m.group(1)), m.span())
            for match_id, start, end in sorted(self.matcher(doc), key=lambda m: m[1]):
                span = doc[start:end]
                ticker = self.nlp.vocab.strings[match_id]
                if span.start_char < found.get(ticker, (len(text),))[0]:
                    found[ticker] = (span.start_char, span.end_char)
            out.append({t: found[t] for t in dict.fromkeys(want) if t in found})
        return out

    def resolve(self, texts: Sequence[str], explicit: Sequence[Sequence[str] | None]) -> list[list[str]]:
        """Explicit tickers where given (normalised), else tickers found in the text; [] = market-wide."""
        result: list[list[str]] = [list(dict.fromkeys(normalize_ticker(t) for t in e)) if e is not None and len(e) else []
                                   for e in explicit]
        todo = [i for i, r in enumerate(result) if not r]
        for i, found in zip(todo, self.from_text([texts[i] for i in todo])):
            result[i] = found
        return result
