"""Entity-level scoring: per-(unit, entity) rows from a scoring job, and the store's use of them."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.paths import SAMPLE_DIR
from nlp.models import META_FILE
from nlp.readers.documents import get_preset
from nlp.scoring import job as job_module
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.job import JobSpec, read_scores, run_job
from signals.store import FeatureStore
from signals.synthetic import score_frame

NEWS = SAMPLE_DIR / "news.csv"
KEY = ["doc_id", "unit", "entity"]


@pytest.fixture(scope="module")
def tiny_entity_model(tiny_model, tmp_path_factory):
    """The tiny model, declared to read a marked entity (its scores of marked and plain text differ)."""
    out = tmp_path_factory.mktemp("tiny_entity") / "model"
    shutil.copytree(tiny_model, out)
    meta = json.loads((out / META_FILE).read_text())
    (out / META_FILE).write_text(json.dumps(meta | {"model_id": "test-tiny-entity", "entity_markers": True}))
    return out


def _spec(model, entity_model, out, chunk_rows=25) -> JobSpec:
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=512, threads=1), chunk_rows=chunk_rows,
                    entity_model=str(entity_model))
    return JobSpec([str(NEWS)], "news", get_preset("sample:news").mapping, model, out, cfg)


def _rows(out) -> pd.DataFrame:
    df = read_scores(out)
    assert not df.duplicated(KEY).any()
    return df.sort_values(KEY, na_position="first").reset_index(drop=True).drop(columns="ingested_at")


@pytest.mark.slow
def test_entity_rows_through_an_interrupted_then_resumed_job_equal_an_uninterrupted_one(
        tiny_model, tiny_entity_model, tmp_path, monkeypatch):
    whole = run_job(_spec(tiny_model, tiny_entity_model, tmp_path / "whole"), progress=False)
    rows = _rows(tmp_path / "whole")
    entity_rows = rows[rows["entity"].notna()]
    assert whole["counts"]["entity_rows"] == len(entity_rows) > 20
    assert whole["model_id"] == rows["model_id"].iloc[0] == "test-tiny+test-tiny-entity"
    assert whole["entity_model"]["model_id"] == "test-tiny-entity"
    # each entity row is its unit's, for a ticker of the document, scored on other (marked) input
    units = rows[rows["entity"].isna()].set_index("doc_id")
    assert all(e in units.loc[d, "entities"] for d, e in zip(entity_rows["doc_id"], entity_rows["entity"]))
    assert (entity_rows["p_pos"].to_numpy() != units.loc[entity_rows["doc_id"], "p_pos"].to_numpy()).all()

    calls = {"n": 0}
    real = job_module.ChunkScorer.__call__

    def dies_in_the_third_chunk(self, docs, where, rejects):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, docs, where, rejects)

    monkeypatch.setattr(job_module.ChunkScorer, "__call__", dies_in_the_third_chunk)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_job(_spec(tiny_model, tiny_entity_model, out), progress=False)
    assert (out / "parts.jsonl").read_text().count("\n") == 2
    monkeypatch.setattr(job_module.ChunkScorer, "__call__", real)
    resumed = run_job(_spec(tiny_model, tiny_entity_model, out), progress=False)
    assert resumed["counts"]["chunks_skipped"] == 2 and resumed["fingerprint"] == whole["fingerprint"]
    pd.testing.assert_frame_equal(_rows(out), rows)  # bit for bit
    # the switch is part of the job's identity: the same folder without it is another job
    off = _spec(tiny_model, tiny_entity_model, out)
    off.config = off.config.model_copy(update={"entity_model": None})
    with pytest.raises(job_module.JobMismatch):
        run_job(off, progress=False)


def test_two_companies_of_one_sentence_get_their_own_scores_through_the_job(tmp_path, monkeypatch):
    from nlp.entities import EntityResolver

    aliases = pd.DataFrame({"ticker": ["SIE", "ALO"], "alias": ["Siemens", "Alstom"]})
    monkeypatch.setattr(EntityResolver, "default", classmethod(lambda cls: EntityResolver(aliases)))
    docs = tmp_path / "news.csv"
    pd.DataFrame({"id": ["a"], "published_at": ["2016-09-14T10:00:00Z"],
                  "text": ["Siemens rallies 6% while Alstom slumps on weak orders"]}).to_csv(docs, index=False)
    from nlp.readers.documents import ColumnMapping

    mapping = ColumnMapping(doc_id="id", text="text", published_at="published_at")
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", threads=1), entity_model="entity")
    from nlp.models import model_path

    run_job(JobSpec([str(docs)], "news", mapping, model_path("default"), tmp_path / "out", cfg), progress=False)
    rows = read_scores(tmp_path / "out").set_index("entity", drop=False)
    assert rows["entity"].isna().sum() == 1 and set(rows["entity"].dropna()) == {"SIE", "ALO"}
    assert rows.loc["SIE", "score"] > 0.3 and rows.loc["ALO", "score"] < -0.3
    assert (rows["entities"].map(list) == [["SIE", "ALO"]] * 3).all()


def test_the_store_keeps_entity_rows_apart_and_each_entity_feature_uses_its_own(tmp_path):
    pub, later = "2016-09-14T10:00:00Z", "2016-09-15T10:00:00Z"
    doc = dict(doc_id="d", published_at=pub, entities=["SIE", "ALO", "XYZ"])
    day1 = score_frame([dict(doc, p_pos=0.5, p_neg=0.2), dict(doc, p_pos=0.9, p_neg=0.05, entity="SIE"),
                        dict(doc, p_pos=0.05, p_neg=0.9, entity="ALO")], model_id="m")
    day2 = score_frame([dict(doc_id="e", published_at=later, entities=["SIE"], p_pos=0.4, p_neg=0.1),
                        dict(doc_id="e", published_at=later, entities=["SIE"], p_pos=0.1, p_neg=0.6, entity="SIE")],
                       model_id="m")
    with FeatureStore(tmp_path / "f.duckdb") as store:
        assert store.add_scores(day1).added == 3
        assert store.add_scores(day1).added == 0  # idempotent: the same version again
        store.build(as_of=pd.Timestamp("2016-09-15", tz="UTC"))
        store.add_scores(day2)
        store.build(as_of=pd.Timestamp("2016-09-16", tz="UTC"))  # incremental
        kept = store.con.execute("SELECT doc_id, entity, score FROM scores ORDER BY doc_id, entity").fetchall()
        daily = store.daily(sources=["news"]).set_index(["entity", "date"])["mean_score"]
        units = store.score_rows(pd.Timestamp("2016-09-16", tz="UTC"))
    assert [(d, e) for d, e, _ in kept] == [("d", "ALO"), ("d", "SIE"), ("d", None), ("e", "SIE"), ("e", None)]
    d1, d2 = pd.Timestamp("2016-09-14"), pd.Timestamp("2016-09-15")
    assert daily[("SIE", d1)] == pytest.approx(0.85) and daily[("ALO", d1)] == pytest.approx(-0.85)
    assert daily[("XYZ", d1)] == pytest.approx(0.3) and daily[("__MARKET__", d1)] == pytest.approx(0.3)  # unit row
    assert daily[("SIE", d2)] == pytest.approx(-0.5) and daily[("__MARKET__", d2)] == pytest.approx(0.3)
    assert len(units) == 2  # the health checks count units, not entity views of them
