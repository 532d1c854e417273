"""Event types (nlp.events): rules on formulaic headlines, prototypes, the labeled sample, evaluation."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.threads import set_threads
from nlp.events import (
    DEFINITIONS,
    EVENT_TYPES,
    LABELED_EVENTS,
    PROTOTYPES,
    RULES,
    EventTyper,
    evaluate_events,
    load_labeled_events,
    read_labels,
    rule_event,
)

RULE_CASES = [
    # analyst actions, with precedence: rating change beats target change
    ("Raymond James Downgrades Aaron's to Market Perform, Removes $40.00 PT", "analyst_down"),
    ("Canaccord Genuity Downgrades Acme Inc. to Hold, Raises PT to $30.00", "analyst_down"),
    ("Credit Suisse Upgrades Acme from Neutral to Outperform, Lowers PT from $14.50 to $14", "analyst_up"),
    ("Citigroup Maintains Buy on Acme Corp, Raises PT to $53.00", "analyst_up"),
    ("JP Morgan Maintains Acme at Overweight, Lowers PT from $53 to $50", "analyst_down"),
    ("Barclays Maintains Equal-Weight on Acme, Price Target $40", "analyst_other"),
    ("Stifel Nicolaus Initiates Coverage On Acme Pharmaceuticals with Hold Rating", "analyst_other"),
    ("Acme Price Target Raised to $75", "analyst_up"),
    ("Benzinga's Top Upgrades, Downgrades For March 12, 2018", "analyst_other"),
    # results and guidance: a results headline that mentions guidance is earnings
    ("Acme Reports Q3 EPS $0.77 vs $0.68 Est., Sales $844.6M vs $834.8M Est.", "earnings"),
    ("Acme Beats Earnings Estimates, Misses On Sales And Guidance", "earnings"),
    ("Acme Raises FY18 Guidance", "guidance"),
    ("Acme Sees FY18 Adj. EPS $6.45-$6.65 vs $6.29 Est.", "guidance"),
    ("Earnings Scheduled For July 20, 2017", "earnings"),
    # company events
    ("Berkshire Hathaway to Acquire Van Tuyl Group", "mna"),
    ("Acme and Widget Announce Merger of Equals", "mna"),
    ("Shareholders File Lawsuit Against Acme Over Disclosures", "legal"),
    ("SEC Charges Acme Executives With Fraud", "legal"),
    ("Acme Receives FDA Approval for Its Migraine Drug", "legal"),
    ("Acme CEO John Smith Steps Down", "management"),
    ("Acme Appoints Jane Doe as Chief Financial Officer", "management"),
    ("Acme Signs Supply Agreement With Widget", "product_deal"),
    # market-wide lists win over the company news they quote
    ("50 Biggest Movers From Yesterday", "macro_market"),
    ("26 Stocks Moving In Friday's Pre-Market Session", "macro_market"),
    ("Mid-Day Market Update: Acme Jumps On Widget Acquisition; Foo Shares Drop", "macro_market"),
    ("Acme Shares Up 15.3% Upon Resumption", "macro_market"),
    # a cashtag is not a word; "downgrade fears" is not an analyst action
    ("$BEAT $DEAL keeping these on watch", None),
    ("Gold Futures Rise on US Debt Downgrade Fears", "macro_market"),
    ("Golden Corp: Drilling Initiated at Brewery Creek", "product_deal"),
]


@pytest.mark.parametrize("text,expected", RULE_CASES)
def test_rules_on_formulaic_headlines(text, expected):
    assert rule_event(text) == expected


def test_taxonomy_and_rules_are_consistent():
    assert len(EVENT_TYPES) == 11 and set(DEFINITIONS) == set(EVENT_TYPES)
    assert {t for t, _, _ in RULES} <= set(EVENT_TYPES)
    assert set(PROTOTYPES) <= set(EVENT_TYPES) and all(len(v) >= 3 for v in PROTOTYPES.values())
    assert rule_event("") is None and rule_event(None) is None


@pytest.fixture(scope="module")
def typer():

    set_threads(1)
    return EventTyper()


def test_prototypes_type_plain_sentences(typer):
    texts = {"The two companies agreed to combine in a deal worth billions": "mna",
             "Check out the cool new gadget they released today": "product_deal",
             "The chief executive is leaving the company after ten years": "management",
             "Investors sue the carmaker claiming it misled them about emissions": "legal"}
    assert all(rule_event(t) is None for t in texts)  # no rule matches: the prototypes decide
    got = typer.predict_with_source(list(texts))
    assert got["event_type"].tolist() == list(texts.values())
    assert (got["how"] == "prototype").all() and (got["similarity"] > typer.min_similarity).all()


def test_rules_first_then_prototypes_then_other(typer):
    texts = ["Goldman Sachs Upgrades Acme to Buy", "xq zzv 42"]
    strict = EventTyper(min_similarity=0.99)
    strict._st_ = typer._st()
    got = strict.predict_with_source(texts)
    assert got["event_type"].tolist() == ["analyst_up", "other"]
    assert got["how"].tolist() == ["rule", "other"]
    assert np.isnan(got.loc[0, "similarity"]) and got.loc[1, "similarity"] < 0.99


def test_precomputed_embeddings_give_the_same_predictions(typer):
    texts = ["Regulators open a probe into the bank", "Apple unveils a new watch", "Acme Reports Q2 EPS $1.10 vs $1.00 Est."]
    emb = typer.encode(texts)
    assert typer.predict(texts, embeddings=emb) == typer.predict(texts)
    with pytest.raises(ValueError):
        typer.predict(texts, embeddings=emb[:2])


def test_labeled_file_is_well_formed():
    labels = read_labels()
    assert list(labels.columns) == ["dataset", "row_key", "event_type", "split"]
    assert set(labels["event_type"]) <= set(EVENT_TYPES)
    assert set(labels["dataset"]) == {"dated_news", "dated_social"}
    assert set(labels["split"]) == {"dev", "test"}
    assert not labels.duplicated(["dataset", "row_key"]).any()
    assert labels["row_key"].str.fullmatch(r"\d+").all()
    assert 0.3 < (labels["split"] == "dev").mean() < 0.5
    assert "text" not in labels.columns and "headline" not in LABELED_EVENTS.read_text()[:200]


def test_missing_datasets_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ALTSIGNAL_DATASETS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="ALTSIGNAL_DATASETS"):
        load_labeled_events()


def test_evaluation_on_the_joined_sample(shared_datasets, typer, tmp_path):
    dev = load_labeled_events("dev")
    assert list(dev.columns) == ["text", "dataset", "row_key", "event_type", "split"]
    assert dev["text"].notna().all() and (dev["split"] == "dev").all()
    table = evaluate_events(dev, typer)
    assert set(table["predictor"]) == {"majority", "rules", "prototypes", "rules+prototypes"}
    macro = table[table["event_type"] == "macro avg"].set_index("predictor")["f1"]
    assert macro["rules+prototypes"] > macro["rules"] > macro["majority"]
    assert macro["rules+prototypes"] > macro["prototypes"]
    support = table[(table.predictor == "rules") & table.event_type.isin(EVENT_TYPES)]["support"].sum()
    assert support == len(dev)


def test_events_eval_command_writes_md_and_json(shared_datasets, tmp_path):
    from typer.testing import CliRunner

    from altsignal.cli import app

    res = CliRunner().invoke(app, ["research", "events-eval", "--split", "dev", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "events_eval.json").read_text())
    assert data["summary"]["split"] == "dev" and data["summary"]["n"] == len(read_labels().query("split == 'dev'"))
    assert "| event type |" in (tmp_path / "events_eval.md").read_text()
    assert pd.DataFrame(data["table"])["event_type"].isin(list(EVENT_TYPES) + ["macro avg", "weighted avg", "accuracy"]).all()
