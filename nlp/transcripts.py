"""Earnings-call transcripts -> speaker turns with section and speaker role.

The common transcript layout (Motley Fool style, and the sample corpus) marks sections with a
line ``Prepared Remarks:`` and later ``Questions and Answers:``, and starts every turn with a
speaker header alone on its line: ``Operator``, ``Name -- Role`` (an executive, e.g.
``Jane Doe -- Chief Executive Officer``) or ``Name -- Firm -- Analyst``.

Decisions:

- A header line must look like one: at most 3 `` -- ``-separated parts, each at most 80
  characters, a name of 1-6 words without digits or sentence punctuation at the end. Sentences
  that merely contain `` -- `` (common in spoken transcripts) are not headers.
- Roles: ``operator`` for the Operator line; ``analyst`` when the last part says "analyst";
  ``executive`` for any other ``Name -- Role`` (CEO, CFO, investor relations: management).
- Text without markers (MAEC: aligned sentences, one per line, no headers) is one turn with
  ``section=None`` and ``speaker_role=None`` (unknown), not guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PREPARED = "prepared_remarks"
QA = "qa"
_SECTIONS = {
    "prepared remarks": PREPARED,
    "presentation": PREPARED,
    "questions and answers": QA,
    "questions & answers": QA,
    "question-and-answer session": QA,
    "question and answer session": QA,
}
_NAME = re.compile(r"^[A-Z][\w.'’-]*(?:\s+[\w.'’-]+){0,5}$")


@dataclass(frozen=True)
class Turn:
    index: int  # 0-based order in the call
    text: str
    section: str | None = None  # PREPARED, QA or None (unknown)
    speaker: str | None = None
    speaker_role: str | None = None  # operator / executive / analyst / None


def section_of(line: str) -> str | None:
    return _SECTIONS.get(line.strip().rstrip(":").strip().lower())


def parse_header(line: str) -> tuple[str, str] | None:
    """(speaker, role) when the line is a speaker header, else None."""
    line = line.strip()
    if line.lower() == "operator":
        return "Operator", "operator"
    parts = [p.strip() for p in line.split(" -- ")]
    if not 2 <= len(parts) <= 3 or any(not p or len(p) > 80 for p in parts):
        return None
    name = parts[0]
    if not _NAME.match(name) or any(ch.isdigit() for ch in name) or line[-1] in ".?!,;:":
        return None
    last = parts[-1].lower()
    if "analyst" in last:
        return name, "analyst"
    if "operator" in last:
        return name, "operator"
    if len(parts) == 3:  # Name -- Firm -- <something not analyst>: an outside participant
        return None
    return name, "executive"


def segment_transcript(text: str) -> list[Turn]:
    """Split a transcript into turns; section markers and header lines are not part of any turn."""
    turns: list[Turn] = []
    section: str | None = None
    speaker: str | None = None
    role: str | None = None
    buf: list[str] = []

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            turns.append(Turn(len(turns), body, section, speaker, role))
        buf.clear()

    for line in text.splitlines():
        new_section = section_of(line) if line.strip() else None
        header = parse_header(line) if line.strip() and new_section is None else None
        if new_section is not None:
            flush()
            section, speaker, role = new_section, None, None
        elif header is not None:
            flush()
            speaker, role = header
        else:
            buf.append(line)
    flush()
    return turns
