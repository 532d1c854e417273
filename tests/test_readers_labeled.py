"""Labeled readers on bad input, the hub path on local files, and load_labeled_set names."""
import json

import pandas as pd
import pytest

from core.rejects import Rejects
from nlp.labeled_sets import load_labeled_set
from nlp.readers.documents import ColumnMapping
from nlp.readers.hub import iter_hub_documents, load_hub_labeled
from nlp.readers.phrasebank import read_phrasebank
from nlp.readers.tfns import read_tfns


def test_phrasebank_bad_lines(tmp_path):
    path = tmp_path / "Sentences_Test.txt"
    path.write_bytes(
        b"Sales rose 5 % .@positive\n"
        b"1\n"  # the damaged line of a circulating AllAgree copy
        b"Bank of +\xe0land said so .@neutral\n"  # latin-1 mojibake kept as in the source
        b"Profit fell .@bearish\n"
        b"@negative\n"
        b"\n"
        b"Mail a@b.fi for details .@neutral\n"  # split on the LAST @
    )
    rejects = Rejects()
    df = read_phrasebank(path, rejects)
    assert df.text.tolist() == ["Sales rose 5 % .", "Bank of +\xe0land said so .", "Mail a@b.fi for details ."]
    assert df.line.tolist() == [1, 3, 7]
    got = sorted((r.line, r.reason.split(":")[0]) for r in rejects.items)
    assert got == [(2, "malformed line"), (4, "unknown label"), (5, "missing text"), (6, "empty line")]


def test_phrasebank_wrong_encoding_is_rejected_per_line(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(b"Fine .@neutral\nOulu \xe4 .@neutral\n")
    rejects = Rejects()
    assert read_phrasebank(path, rejects, encoding="utf-8").text.tolist() == ["Fine ."]
    assert [(r.line, r.reason.split(":")[0]) for r in rejects.items] == [(2, "undecodable bytes")]


def test_tfns_bad_rows(tmp_path):
    path = tmp_path / "sent_train.csv"
    path.write_bytes(
        b"text,label\n"
        b'"$GM: Deutsche Bank cuts to Hold",0\n'
        b'"Stocks rally,\nfutures up",1\n'  # lines 3-4
        b"Fed holds,2\n"
        b"Unknown label,3\n"  # line 6
        b"Bad \xff byte,2\n"  # line 7
        b",1\n"  # line 8: missing text
        b"no label field\n"  # line 9
    )
    rejects = Rejects()
    df = read_tfns(path, rejects)
    assert df.label.tolist() == ["negative", "positive", "neutral"]
    assert df.line.tolist() == [2, 3, 5]
    got = sorted((r.line, r.reason.split(":")[0]) for r in rejects.items)
    assert got == [(6, "unknown label"), (7, "undecodable bytes"), (8, "missing text"), (9, "malformed CSV row")]


def test_hub_path_on_local_csv(tmp_path):
    csv = tmp_path / "tfns.csv"
    csv.write_text('text,label\n"$GM cuts, to Hold",0\nBeat,1\nFlat,2\nOdd,7\n')
    rejects = Rejects()
    df = load_hub_labeled("csv", data_files=str(csv), split="train", cache_dir=str(tmp_path / "cache"),
                          label_map={"0": "negative", "1": "positive", "2": "neutral"}, rejects=rejects)
    assert df.label.tolist() == ["negative", "positive", "neutral"]
    assert [(r.line, r.column) for r in rejects.items] == [(4, "label")]


def test_hub_class_label_names(tmp_path):
    from datasets import ClassLabel, Features, Value

    path = tmp_path / "fpb.jsonl"
    path.write_text("\n".join(json.dumps({"sentence": s, "label": l}) for s, l in [("Up .", 2), ("Down .", 0)]))
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "neutral", "positive"])})
    df = load_hub_labeled("json", data_files=str(path), text_col="sentence", features=features,
                          cache_dir=str(tmp_path / "cache"))
    assert df[["text", "label"]].values.tolist() == [["Up .", "positive"], ["Down .", "negative"]]


def test_hub_documents_on_local_json(tmp_path):
    path = tmp_path / "posts.jsonl"
    rows = [{"id": "a", "t": "2016-09-14T09:22:05-04:00", "body": "$NWE up"}, {"id": "b", "t": "2016-09-14T10:00:00Z", "body": " "},
            {"id": "a", "t": "2016-09-14T13:22:05Z", "body": "again"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    mapping = ColumnMapping(doc_id="id", text="body", published_at="t", cashtags=True)
    kw = dict(data_files=str(path), cache_dir=str(tmp_path / "cache"), chunk_rows=2)
    # the json builder converts offsets to UTC and then drops the zone: naive values are refused...
    rejects = Rejects()
    assert list(iter_hub_documents("json", mapping, "social", rejects, **kw)) == []
    assert {r.reason.split(":")[0] for r in rejects.items} == {"naive published_at without a declared zone"}
    # ...until the caller declares them UTC
    rejects = Rejects()
    docs = pd.concat(iter_hub_documents("json", mapping.model_copy(update={"timezone": "UTC"}), "social", rejects, **kw))
    assert docs.doc_id.tolist() == ["a"] and docs.entities.tolist() == [["NWE"]]
    assert docs.published_at.tolist() == [pd.Timestamp("2016-09-14 13:22:05", tz="UTC")]
    assert sorted((r.line, r.column) for r in rejects.items) == [(2, "text"), (3, "doc_id")]


def test_load_labeled_set_from_file_and_names(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("sentence,y\nGood,pos\nBad,neg\nMeh,meh\n")
    rejects = Rejects()
    df = load_labeled_set(path, text_col="sentence", label_col="y",
                          label_map={"pos": "positive", "neg": "negative"}, rejects=rejects)
    assert df.label.tolist() == ["positive", "negative"] and len(rejects) == 1
    with pytest.raises(KeyError, match="unknown labeled set"):
        load_labeled_set("nope:thing")


def test_sample_labeled_set():
    df = load_labeled_set("sample:labeled")
    assert len(df) >= 150 and set(df.label) == {"negative", "neutral", "positive"}
