"""Transcripts: sections and speaker roles, spaCy sentences, per-sentence and per-document rows."""
from __future__ import annotations

from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.paths import SAMPLE_DIR
from nlp.readers.documents import get_preset
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.job import JobSpec, read_aggregates, read_scores, run_job
from nlp.sentences import split_sentences
from nlp.transcripts import PREPARED, QA, parse_header, segment_transcript

CALL = """Acme Corp (ACME) Q3 2016 Earnings Call

Prepared Remarks:

Operator

Good day and welcome to the call.

Jane Doe -- Chief Executive Officer

Thanks. Revenue grew 12% to $1.2 billion. We are pleased -- very pleased.

Questions and Answers:

Operator

Our first question comes from Bob Smith.

Bob Smith -- Big Bank Securities -- Analyst

Why did margins fall? Is it temporary?

Jane Doe -- Chief Executive Officer

Costs rose. We expect improvement.
"""


def test_headers_and_sections_become_turns_with_roles():
    turns = segment_transcript(CALL)
    assert [(t.section, t.speaker_role) for t in turns] == [
        (None, None), (PREPARED, "operator"), (PREPARED, "executive"), (QA, "operator"), (QA, "analyst"), (QA, "executive"),
    ]
    assert turns[4].speaker == "Bob Smith" and turns[4].text == "Why did margins fall? Is it temporary?"
    assert all("--" not in t.text or "pleased" in t.text for t in turns)  # header lines are not text


def test_sentences_with_dashes_are_not_headers():
    assert parse_header("Jane Doe -- Chief Financial Officer") == ("Jane Doe", "executive")
    assert parse_header("Ann Lee -- Harbor Capital -- Analyst") == ("Ann Lee", "analyst")
    assert parse_header("Operator") == ("Operator", "operator")
    assert parse_header("We had a record quarter -- up and down the income statement.") is None
    assert parse_header("In the US -- available in the US, excuse me.") is None


def test_maec_layout_without_headers_is_one_unknown_section():
    text = "Thank you, Whitley.\nQ4 2014 was a very productive quarter.\nI will focus on three headlines."
    (turn,) = segment_transcript(text)
    assert turn.section is None and turn.speaker_role is None
    assert split_sentences([turn.text])[0] == text.splitlines()  # one aligned sentence per line


def test_spacy_splits_paragraphs_into_sentences():
    (sents,) = split_sentences(["Revenue rose 5% to $1.2 billion. J. Smith said margins held. Guidance is unchanged."])
    assert sents == ["Revenue rose 5% to $1.2 billion.", "J. Smith said margins held.", "Guidance is unchanged."]


def test_transcript_job_writes_sentence_rows_and_document_aggregates(tiny_model, tmp_path):
    src = tmp_path / "calls.jsonl"
    src.write_text("".join((SAMPLE_DIR / "transcripts.jsonl").read_text().splitlines(keepends=True)[:2]))
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=512, threads=1))
    run_job(JobSpec([str(src)], "transcript", get_preset("sample:transcripts").mapping, tiny_model, tmp_path / "out", cfg),
            progress=False)
    scores = read_scores(tmp_path / "out")
    assert scores.groupby("doc_id")["unit"].apply(lambda u: u.tolist() == list(range(len(u)))).all()
    assert set(scores["section"].dropna()) == {PREPARED, QA}
    assert set(scores["speaker_role"].dropna()) == {"operator", "executive", "analyst"}
    agg = read_aggregates(tmp_path / "out").set_index("doc_id")
    assert len(agg) == 2 and agg["n_units"].sort_index().tolist() == scores.groupby("doc_id").size().sort_index().tolist()
    for doc_id, g in scores.groupby("doc_id"):
        a = agg.loc[doc_id]
        assert abs(a["mean_score"] - g["score"].mean()) < 1e-6
        assert abs(a["tone_management"] - g.loc[g.speaker_role == "executive", "score"].mean()) < 1e-6
        assert abs(a["tone_qa"] - g.loc[g.section == QA, "score"].mean()) < 1e-6
        assert a["n_analyst"] == (g.speaker_role == "analyst").sum()


def test_maec_calls_score_as_one_unknown_section(tiny_model, tmp_path, shared_datasets):
    import pyarrow.parquet as pq

    calls = pq.read_table(shared_datasets / "earnings_transcripts" / "maec_transcripts.parquet").slice(0, 2).to_pandas()
    calls["text"] = calls["text"].map(lambda t: "\n".join(t.splitlines()[:25]))  # keep the test fast
    src = tmp_path / "maec.parquet"
    calls.to_parquet(src)
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=512, threads=1))
    run_job(JobSpec([str(src)], "transcript", get_preset("transcripts").mapping, tiny_model, tmp_path / "out", cfg),
            progress=False)
    scores = read_scores(tmp_path / "out")
    assert scores["section"].isna().all() and scores["speaker_role"].isna().all()
    assert scores.groupby("doc_id").size().ge(25).all()  # at least one unit per aligned line
    agg = read_aggregates(tmp_path / "out")
    assert agg["tone_management"].isna().all() and agg["mean_score"].notna().all()
    assert (scores["entities"].map(list) == scores["doc_id"].str.split("_").str[1].map(lambda t: [t])).all()
