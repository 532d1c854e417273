"""Bad input never crashes a job: every case ends in rejects.jsonl with a clear reason."""
from __future__ import annotations

import json

import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)

from nlp.readers.documents import ColumnMapping
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.job import JobSpec, read_scores, run_job
from nlp.scoring.quality import check_text, detect_non_english, strip_html

T = "2016-09-14T13:22:05Z"
MAPPING = ColumnMapping(doc_id="id", text="text", published_at="created_at")


def _line(doc_id, text):
    return json.dumps({"id": doc_id, "created_at": T, "text": text}) + "\n"


@pytest.fixture(scope="module")
def job(tiny_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    good = d / "a_docs.jsonl"
    with open(good, "wb") as fh:
        fh.write(_line("ok", "Acme shares rose after strong quarterly results.").encode())
        fh.write(_line("empty", "").encode())
        fh.write(_line("blank", "  \t ").encode())
        fh.write(_line("huge", "Profit rose. " * 8000).encode())  # 104,000 characters
        fh.write(_line("html", "<p>Shares of <b>Acme</b> rose &amp; beat estimates</p>").encode())
        fh.write(_line("html-only", "<br/><div> </div>").encode())
        fh.write(_line("spanish", "Las acciones de la empresa cayeron por la crisis del petróleo").encode())
        fh.write(_line("replacement", "Revenue \ufffd\ufffd rose").encode())
        fh.write(b'{"id": "raw-bytes", "created_at": "' + T.encode() + b'", "text": "bad \xff\xfe bytes"}\n')
        fh.write(b'{"id": "broken json", \n')
    missing = d / "b_missing_text.csv"
    missing.write_text(f"id,created_at,body\nx,{T},no text column\n")
    out = d / "out"
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=256, threads=1))
    manifest = run_job(JobSpec([str(good), str(missing)], "social", MAPPING, tiny_model, out, cfg), progress=False)
    rejects = [json.loads(l) for l in (out / "rejects.jsonl").read_text().splitlines()]
    return manifest, rejects, read_scores(out)


def _reason(rejects, needle):
    return [r for r in rejects if needle in r["raw"] or needle in r["reason"]]


def test_only_good_and_cleaned_texts_are_scored(job):
    manifest, _, scores = job
    assert manifest["status"] == "complete"
    assert sorted(scores["doc_id"]) == ["html", "ok"]
    assert manifest["counts"]["html_stripped"] >= 2


@pytest.mark.parametrize("needle, reason", [
    ("huge", "text too long: 104,000 characters > limit 100,000"),
    ("html-only", "empty text: nothing left after stripping HTML"),
    ("spanish", "non-English text"),
    ("replacement", "undecodable bytes"),
    ("bad", "undecodable bytes: not valid utf-8 text"),  # invalid bytes: caught by the reader
    ("broken json", "malformed JSON line"),
    ("missing_text", "unreadable input file"),  # a required column missing: the whole file
])
def test_each_bad_case_has_a_clear_reason(job, needle, reason):
    _, rejects, _ = job
    hits = [r for r in rejects if (needle in r["raw"] or needle in r["source"]) and r["reason"].startswith(reason)]
    assert hits, f"no reject starting with {reason!r} for {needle!r}: {rejects}"


def test_empty_and_whitespace_texts_are_rejected(job):
    _, rejects, _ = job
    assert sum("text" in r["reason"] and r["raw"].strip() == "" for r in rejects) >= 2


def test_text_checks_directly():
    assert check_text("   ").reason.startswith("empty text")
    assert check_text(None).reason.startswith("empty text")
    assert check_text("x" * 11, max_chars=10).reason.startswith("text too long")
    cleaned = check_text("Apple &amp; Google <i>rally</i>")
    assert cleaned.text == "Apple & Google rally" and cleaned.html_stripped
    assert strip_html("<script>var x=1</script><p>Hi</p>") == "\nHi"
    assert detect_non_english("$AAPL $GOOG #stocks http://t.co/x") is None  # tickers only: not flagged
    assert detect_non_english("Die Aktie ist nach den Zahlen um zehn Prozent gefallen") is not None
    assert detect_non_english("Apple Inc. and Co. shares rose in the session") is None
    assert detect_non_english("アップルの決算は予想を上回った") is not None
