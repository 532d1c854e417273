"""Entity-level labeled sets (FinEntity, SEntFiN): readers, leakage-free splits, marked model input."""
import json

import pandas as pd
import pytest

from core.rejects import Rejects
from nlp import splits
from nlp.entity_input import CLOSE, OPEN, mark_entity
from nlp.labeled_sets import load_labeled_set
from nlp.readers.entity_sentiment import mixed_texts, read_finentity, read_sentfin
from nlp.splits import SPLITS, normalize_key


def test_mark_entity_marks_one_mention_and_keeps_it_in_a_window():
    text = "Siemens rallies 6% while Alstom slumps on weak orders"
    assert mark_entity(text, 25, 31) == f"Siemens rallies 6% while {OPEN} Alstom {CLOSE} slumps on weak orders"
    long = "filler words here " * 40 + "Alstom slumps" + " and more filler" * 40
    start = long.index("Alstom")
    marked = mark_entity(long, start, start + 6, window=50)
    assert f"{OPEN} Alstom {CLOSE} slumps" in marked and len(marked) < 130
    assert not marked.startswith(" ") and marked.split()[0] in long.split()  # cut at a word boundary


def test_sentfin_reader_survives_apostrophes_and_rejects_missing_entities(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"S No.": [1, 2], "Title": ["Sebi fines Osian's Art Fund", "Infosys rallies"],
                  "Decisions": ["{'Sebi': 'neutral', 'Osian's Art Fund': 'negative'}", "{'Wipro': 'positive'}"],
                  "Words": [4, 2]}).to_csv(path, index=False)
    rejects = Rejects()
    df = read_sentfin(path, rejects)
    assert df[["entity", "label"]].values.tolist() == [["Sebi", "neutral"], ["Osian's Art Fund", "negative"]]
    assert [df.text[i][s:e] for i, (s, e) in enumerate(zip(df.start, df.end))] == ["Sebi", "Osian's Art Fund"]
    assert rejects.to_frame().line.tolist() == [3] and "not found" in rejects.to_frame().reason[0]
    assert mixed_texts(df).tolist() == [True, True]


def test_finentity_reader_repairs_shifted_offsets(tmp_path):
    text = "Shares of Chevron rose while Exxon fell"
    items = [{"content": text, "annotations": [
        {"start": 8, "end": 15, "value": "Chevron", "label": "Positive", "tag": "Positive"},  # off by 2
        {"start": 29, "end": 34, "value": "Exxon", "label": "Negative", "tag": "Negative"},
        {"start": 0, "end": 4, "value": "Shell", "label": "Neutral", "tag": "Neutral"}]}]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(items))
    rejects = Rejects()
    df = read_finentity(path, rejects)
    assert [text[s:e] for s, e in zip(df.start, df.end)] == ["Chevron", "Exxon"]
    assert df.label.tolist() == ["positive", "negative"] and len(rejects) == 1


@pytest.mark.parametrize("name", splits.ENTITY_SETS)
def test_entity_splits_are_leak_free_and_match_their_manifest(shared_datasets, name):
    parts = {s: load_labeled_set(f"{name}:{s}") for s in SPLITS}  # verifies the committed manifest
    keys = {s: set(df.key) for s, df in parts.items()}
    assert not (keys["train"] & keys["validation"]) and not (keys["train"] | keys["validation"]) & keys["test"]
    for df in parts.values():
        spans = [t[s:e].lower() for t, s, e in zip(df.text, df.start, df.end)]
        assert spans == df.entity.str.lower().tolist()
        assert df.mixed.tolist() == mixed_texts(df).tolist()
    manifest = splits.build_manifest(name)
    assert sum(manifest["splits"][s]["rows"] for s in SPLITS) == manifest["rows"] > 2000


def test_sentfin_has_no_phrasebank_sentence(shared_datasets):
    sentfin = load_labeled_set("sentfin:all")
    fpb = set(load_labeled_set("fpb:50agree:all").text.map(normalize_key))
    assert not set(sentfin.key) & fpb
    assert splits.build_manifest("sentfin")["texts_dropped_as_phrasebank_duplicates"] == 0  # measured: none overlap


@pytest.mark.slow
def test_eval_reports_entity_sets_and_their_mixed_subset(shared_datasets, tmp_path):
    """Entity models read the marked text, baselines the plain one; `:mixed` reuses the set's predictions."""
    import json

    from nlp.evaluate import evaluate

    evaluate(["entity"], ["finentity:validation"], tmp_path, baselines=["majority"], n_boot=10, progress=False)
    report = json.loads((tmp_path / "results.json").read_text())
    rows = load_labeled_set("finentity:validation")
    block, mixed = report["sets"]["finentity:validation"], report["sets"]["finentity:validation:mixed"]
    assert block["n"] == len(rows) and mixed["n"] == int(rows.mixed.sum()) > 0
    assert report["predictors"]["altsignal-minilm-entity"]["entity_markers"] is True
    assert report["baseline_train"] == ["finentity:train", "sentfin:train"]  # the entity model's own training sets
    assert set(mixed["results"]) == set(block["results"]) == {"altsignal-minilm-entity", "majority"}
    assert block["results"]["altsignal-minilm-entity"]["macro_f1"] > 0.8  # 0.870 measured; today's model 0.739
