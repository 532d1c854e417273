"""Annotations (event type, novelty, relevance) and the derived score rows they feed."""
import pandas as pd
import pytest

from nlp.contracts import MARKET_ENTITY
from signals.annotations import AnnotationConfig, annotate, derived_scores, net_analyst


@pytest.fixture(scope="module")
def docs():
    t = pd.Timestamp("2017-02-06 15:00", tz="UTC")
    rows = [
        ("n1", "Goldman Sachs upgrades ACME to Buy, raises price target to $50", ["ACME"], t),
        ("n2", "Goldman Sachs upgrades ACME to Buy, raises price target to $50", ["ACME"], t + pd.Timedelta(hours=3)),  # reprint
        ("n3", "BETA recalls its flagship product after safety complaints", ["BETA"], t + pd.Timedelta(hours=4)),
        ("n4", "Stocks moving in Monday's pre-market session: ACME, BETA, GAMA, DELT, EPSI", ["ACME", "BETA", "GAMA", "DELT", "EPSI"],
         t + pd.Timedelta(hours=5)),
        ("n5", "Markets drift as investors await the Fed", [], t + pd.Timedelta(hours=6)),
    ]
    frame = pd.DataFrame(rows, columns=["doc_id", "text", "entities", "published_at"])
    return frame.assign(source="news", feed="wire", ingested_at=frame["published_at"])


def test_annotate_types_repeats_and_relevance(docs):
    a = annotate(docs).set_index(["doc_id", "entity"])
    assert a.loc[("n1", "ACME"), "event_type"] == "analyst_up" and a.loc[("n1", "ACME"), "event_how"] == "rule"
    assert not a.loc[("n1", "ACME"), "stale"] and a.loc[("n2", "ACME"), "stale"]  # the reprint is stale
    assert a.loc[("n1", "ACME"), "novelty"] == 1.0  # nothing earlier
    assert a.loc[("n3", "BETA"), "relevance"] > a.loc[("n4", "BETA"), "relevance"]  # one company vs a list of five
    assert (a.loc["n5"].index == [MARKET_ENTITY]).all()  # no entities: the market row


def test_annotations_are_point_in_time(docs):
    early = annotate(docs.iloc[:3])
    later = annotate(docs)  # adding later documents changes nothing earlier
    pd.testing.assert_frame_equal(later[later["doc_id"].isin(["n1", "n2", "n3"])].reset_index(drop=True), early)


def test_derived_sources(docs):
    a = annotate(docs)
    scores = docs[["feed", "source", "doc_id", "published_at", "ingested_at", "entities"]].assign(
        unit=0, model_id="m", p_neg=0.1, p_neu=0.2, p_pos=0.7, score=0.6)
    d = derived_scores(scores, a, AnnotationConfig())
    by = d.groupby("source")["doc_id"].agg(set).to_dict()
    assert by["news.stale"] == {"n2"} and {"n1", "n3", "n4", "n5"} <= by["news.novel"]
    assert by["news.analyst_up"] == {"n1", "n2"}
    assert "n4" not in by["news.relevant"] and {"n1", "n3"} <= by["news.relevant"]
    assert set(d.loc[d["source"] == "news.novel"].set_index("doc_id").loc["n5", "entities"]) == set()  # market only
    panel = pd.DataFrame({"news.analyst_up_n_docs": [3.0, None], "news.analyst_down_n_docs": [1.0, 2.0]})
    assert net_analyst(panel)["news.net_analyst_n_docs"].tolist() == [2.0, -2.0]
