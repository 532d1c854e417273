"""What the scorer refuses or repairs before a text reaches the model.

Decisions (the issue left them open):

- HTML is **stripped**, not rejected: markup in feeds is routine (tweets arrive with ``&amp;``,
  scraped headlines with ``<b>``). Tags go through the standard library's ``html.parser`` (script
  and style content dropped), entities are unescaped; a text that is empty afterwards is rejected.
- Non-English text is **rejected** with reason ``non-English text`` (the models are English-only).
  Detector: a cheap stop-word vote with spaCy's own stop-word lists - a text is non-English when
  most of its letters are non-ASCII (CJK, Cyrillic, Arabic...), or when at least 2 distinct
  words are stop words of one of es/fr/de/it/pt/nl/id (and not English ones) and they outnumber
  English stop words 2:1. Texts with fewer than 3 letter words (after dropping URLs, $cashtags,
  @mentions, #hashtags) are never flagged. Measured on 20,000 distinct StockNet tweets against
  Twitter's own ``lang`` tag: flags 0.02% of tweets tagged ``en`` (4, three of them in fact
  Spanish or French), 64% of ``es``, 21% of ``fr``, 39% of ``pt``, 64% of ``ja``; ~24 us a text.
  It is deliberately conservative: a wrongly dropped English text costs more than a foreign one
  scored as noise. (langid-style character models were not used: on 10-word tweets full of
  tickers they misfire far more often.)
- Undecodable bytes: readers reject rows with invalid UTF-8; a text that still carries lone
  surrogates or U+FFFD replacement characters (decoded with ``errors="replace"`` upstream) is
  rejected here, since its words are lost.
- Over ``max_chars`` (default 100,000): rejected, never silently cut.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

from nlp.readers.records import has_surrogates

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->", re.S)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]{2,10});")
_NOISE = re.compile(r"https?://\S+|www\.\S+|[$#@]\w+")
_WORD = re.compile(r"[^\W\d_]+")
FOREIGN = ("es", "fr", "de", "it", "pt", "nl", "id")
# Company-name and ticker words that happen to be stop words elsewhere ("inc", "co" in Italian).
_NOT_FOREIGN = frozenset({"inc", "co", "corp", "ltd", "plc", "sa", "ag", "nv", "se", "al", "la", "ma", "am", "pm", "don"})


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def has_html(text: str) -> bool:
    return bool(_TAG.search(text) or _ENTITY.search(text))


def strip_html(text: str) -> str:
    """Visible text of an HTML fragment (entities unescaped)."""
    if not _TAG.search(text):
        return html.unescape(text)
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def _spacy_stop_words(lang: str) -> frozenset[str]:
    """``spacy/lang/<lang>/stop_words.py``'s STOP_WORDS, run on its own: importing the module runs
    its language package first, and French's builds tokenizer exceptions (4 s of CPU measured, most
    of a scoring job's start-up). The files are plain data (no imports)."""
    from importlib.util import find_spec

    path = Path(find_spec("spacy").submodule_search_locations[0]) / "lang" / lang / "stop_words.py"
    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return frozenset(namespace["STOP_WORDS"])


@lru_cache(maxsize=1)
def _stopwords() -> tuple[frozenset[str], dict[str, tuple[int, ...]]]:
    """English stop words, and foreign stop word -> indices (in FOREIGN) of its languages."""
    english = _spacy_stop_words("en")
    foreign: dict[str, list[int]] = {}
    for i, lang in enumerate(FOREIGN):
        for w in _spacy_stop_words(lang):
            if w not in english and w not in _NOT_FOREIGN and len(w) > 1:
                foreign.setdefault(w, []).append(i)
    return english, {w: tuple(v) for w, v in foreign.items()}


def detect_non_english(text: str) -> str | None:
    """A reason string when the text looks non-English, else None (see module docstring)."""
    clean = _NOISE.sub(" ", text).lower()
    if not clean.isascii():  # the letter count only matters when some letters are non-ASCII
        letters = [c for c in clean if c.isalpha()]
        non_ascii = sum(not c.isascii() for c in letters) / max(len(letters), 1)
        if len(letters) >= 3 and non_ascii > 0.5:  # CJK scripts have no spaces: count letters, not words
            return f"{non_ascii:.0%} of letters are non-ASCII"
    words = _WORD.findall(clean)
    if len(words) < 3:
        return None
    english, foreign = _stopwords()
    en = 0
    hits = [set() for _ in FOREIGN]  # distinct stop words per language
    for w in words:
        if w in english:
            en += 1
        for i in foreign.get(w, ()):
            hits[i].add(w)
    best = max(range(len(FOREIGN)), key=lambda i: len(hits[i]))
    n = len(hits[best])
    if n >= 2 and n > 2 * en:
        return f"{n} distinct {FOREIGN[best]} stop words vs {en} English"
    return None


@dataclass(frozen=True)
class Checked:
    text: str | None  # the text to score, None when rejected
    reason: str | None  # reject reason ("<kind>: <detail>")
    html_stripped: bool = False


def check_text(text: object, max_chars: int = 100_000, strip: bool = True, flag_non_english: bool = True) -> Checked:
    """Clean one text or give the reason it cannot be scored."""
    if not isinstance(text, str) or not text.strip():
        return Checked(None, "empty text: expected non-whitespace text")
    if len(text) > max_chars:
        return Checked(None, f"text too long: {len(text):,} characters > limit {max_chars:,}")
    if "\ufffd" in text or has_surrogates(text):
        return Checked(None, "undecodable bytes: text holds replacement characters or lone surrogates")
    stripped = False
    if strip and has_html(text):
        text, stripped = strip_html(text), True
        if not text.strip():
            return Checked(None, "empty text: nothing left after stripping HTML", True)
    if flag_non_english:
        why = detect_non_english(text)
        if why:
            return Checked(None, f"non-English text: {why}", stripped)
    return Checked(text, None, stripped)
