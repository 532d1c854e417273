"""Contract checks at the seams: row problems become rejects with line and reason; frame problems raise."""
import json

import pandas as pd
import pytest

from core.rejects import Rejects
from nlp.contracts import ContractError, require_columns, validate_documents, validate_labeled


def _docs(**over):
    df = pd.DataFrame({
        "doc_id": ["a", "b", "", "a", "c"],
        "source": ["news", "news", "news", "news", "blog"],
        "published_at": pd.to_datetime(["2016-06-01T10:00:00-04:00"] * 5, utc=True),
        "text": ["up", "   ", "x", "dup", "y"],
        "_line": [2, 3, 4, 5, 6],
        "lang": ["en"] * 5,
    })
    return df.assign(**over)


def test_validate_documents_rejects_rows_with_line_and_reason():
    rejects = Rejects()
    out = validate_documents(_docs(), rejects, "f.csv", keep=("lang",))
    assert out["doc_id"].tolist() == ["a"]
    assert list(out.columns)[-1] == "lang"
    assert str(out["published_at"].dt.tz) == "UTC"
    got = {(r.line, r.column, r.reason.split(":")[0]) for r in rejects.items}
    assert got == {(3, "text", "missing text"), (4, "doc_id", "missing doc_id"),
                   (5, "doc_id", "duplicate doc_id"), (6, "source", "unknown source")}


def test_naive_published_at_is_a_contract_error():
    df = _docs(published_at=pd.to_datetime(["2016-06-01 10:00"] * 5))
    with pytest.raises(ContractError, match="timezone-aware"):
        validate_documents(df, Rejects())


def test_require_columns_names_what_is_missing():
    with pytest.raises(ContractError, match=r"missing required column\(s\) \['label'\]"):
        require_columns(pd.DataFrame({"text": []}), ["text", "label"], "LabeledExample")


def test_validate_labeled_unknown_label():
    rejects = Rejects()
    df = pd.DataFrame({"text": ["good", "bad", ""], "label": ["positive", "bullish", "neutral"], "_line": [7, 8, 9]})
    out = validate_labeled(df, rejects, "x")
    assert out["text"].tolist() == ["good"]
    assert [(r.line, r.column) for r in rejects.items] == [(9, "text"), (8, "label")]


def test_rejects_file_is_jsonl_and_counts(tmp_path):
    rejects = Rejects()
    rejects.add("f.csv", 3, "text", "missing text: expected non-empty text", "")
    rejects.add("f.csv", 9, "published_at", "naive published_at without a declared zone: ...", "2016-01-01 10:00")
    path = rejects.write(tmp_path / "sub" / "r.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["line"] for r in rows] == [3, 9]
    assert rejects.counts() == {"missing text": 1, "naive published_at without a declared zone": 1}
    assert not list(path.parent.glob(".*tmp"))  # the temp file was renamed, not left behind
