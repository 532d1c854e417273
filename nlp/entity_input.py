"""The input of an entity-aware model: the text with marker tokens around one entity mention.

``Siemens rallies while Alstom slumps`` for Alstom becomes
``Siemens rallies while <e> Alstom </e> slumps``: one sequence classifier then reads the tone
toward the marked company (the "entity marker" input of target-dependent classification), so the
training code, artifacts, calibration and scoring engine stay those of sentence models.

Long texts are cut to ``WINDOW`` characters either side of the mention (at word boundaries), so
the mention survives the model's token limit: FinEntity passages run to ~150 tokens.
"""
from __future__ import annotations

OPEN, CLOSE = "<e>", "</e>"
WINDOW = 200  # characters kept either side of the mention


def mark_entity(text: str, start: int, end: int, window: int = WINDOW) -> str:
    left, right = text[max(0, start - window):start], text[end:end + window]
    if start > window and " " in left:
        left = left[left.index(" ") + 1:]
    if end + window < len(text) and " " in right:
        right = right[:right.rindex(" ")]
    return f"{left}{OPEN} {text[start:end]} {CLOSE}{right}"


def marked_texts(rows) -> list[str]:
    """Marked inputs of a frame with ``text``, ``start``, ``end`` columns."""
    return [mark_entity(t, int(s), int(e)) for t, s, e in zip(rows["text"], rows["start"], rows["end"])]


def is_entity_frame(rows) -> bool:
    """Rows of an entity-level set (one entity span per row)?"""
    return {"start", "end"} <= set(rows.columns)
