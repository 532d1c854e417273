"""Generic Document reader on sample-format files: good rows load, every bad row is a reject with its line."""
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.errors import UsageError
from core.rejects import Rejects
from nlp.contracts import DOCUMENT_SCHEMA, ContractError
from nlp.readers.documents import PRESETS, iter_documents, load_preset, read_documents

NEWS = PRESETS["sample:news"].mapping
SOCIAL = PRESETS["sample:social"].mapping
TRANSCRIPTS = PRESETS["sample:transcripts"].mapping

NEWS_CSV = (
    b"doc_id,published_at,tickers,headline,publisher,url\n"
    b"n1,2016-09-14T08:05:00-04:00,NWE;RDLP,Northwind beats estimates,Wire,https://x/1\n"  # 2
    b'n2,2016-12-14T08:05:00-05:00,,"Fed raises rates, markets\nshrug",Wire,https://x/2\n'  # 3-4: quoted newline
    b"n3,2016-09-14T08:05:00-04:00,NWE,,Wire,https://x/3\n"  # 5: missing headline
    b"n4,2016-09-14 08:05:00,NWE,Naive time,Wire,https://x/4\n"  # 6: naive, no zone declared
    b"n5,soon,NWE,Bad time,Wire,https://x/5\n"  # 7: unparseable
    b"n1,2016-09-15T08:05:00-04:00,NWE,Same id again,Wire,https://x/6\n"  # 8: duplicate doc_id
    b"n6,2016-09-15T08:05:00-04:00,NWE,Caf\xe9 latin-1 byte,Wire,https://x/7\n"  # 9: not UTF-8
    b"n7,2016-09-15T08:05:00-04:00,NWE,too,many,fields,here\n"  # 10: malformed row
    b"n8,2016-09-16T09:00:00-04:00,lmsl,Lumisil guides higher,Wire,https://x/8\n"  # 11
)


@pytest.fixture
def news_csv(tmp_path):
    path = tmp_path / "news.csv"
    path.write_bytes(NEWS_CSV)
    return path


def test_sample_news_format_good_rows_and_rejects(news_csv):
    rejects = Rejects()
    docs = read_documents(news_csv, NEWS, "news", rejects)
    assert docs["doc_id"].tolist() == ["n1", "n2", "n8"]
    assert docs["entities"].tolist() == [["NWE", "RDLP"], [], ["LMSL"]]
    assert docs.loc[1, "text"] == "Fed raises rates, markets\nshrug"
    assert docs["published_at"].tolist()[:2] == [pd.Timestamp("2016-09-14 12:05", tz="UTC"),
                                                 pd.Timestamp("2016-12-14 13:05", tz="UTC")]
    assert list(docs.columns) == DOCUMENT_SCHEMA.names
    got = {(r.line, r.reason.split(":")[0]) for r in rejects.items}
    assert got == {(5, "missing text"), (6, "naive published_at without a declared zone"),
                   (7, "unparseable published_at"), (8, "duplicate doc_id"), (9, "undecodable bytes"),
                   (10, "malformed CSV row")}
    assert len(docs) + len(rejects) == 9  # nothing silently dropped


def test_declared_zone_rescues_naive_rows(news_csv):
    rejects = Rejects()
    docs = read_documents(news_csv, NEWS.model_copy(update={"timezone": "America/New_York"}), "news", rejects)
    assert docs.set_index("doc_id").loc["n4", "published_at"] == pd.Timestamp("2016-09-14 12:05", tz="UTC")


def test_streaming_chunks_equal_whole_read(news_csv):
    now = pd.Timestamp("2026-01-01", tz="UTC")
    whole_rejects, chunk_rejects = Rejects(), Rejects()
    whole = read_documents(news_csv, NEWS, "news", whole_rejects, ingested_at=now)
    chunks = list(iter_documents(news_csv, NEWS, "news", chunk_rejects, chunk_rows=2, ingested_at=now))
    assert len(chunks) > 1
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    # the duplicate id sits in a later chunk than its first occurrence and is still caught
    assert sorted(chunk_rejects.to_frame()["line"]) == sorted(whole_rejects.to_frame()["line"])


SOCIAL_LINES = [
    {"id": "p1", "created_at": "2016-09-14T13:22:05Z", "user": "a", "text": "$NWE to the moon, $rdlp too"},
    "{not json",
    {"id": "p2", "created_at": "2016-09-14T13:22:05Z", "user": "b", "text": "   "},
    [1, 2],
    {"id": "p3", "created_at": "2016-09-14T13:22:05", "user": "c", "text": "naive"},
    {"id": "p4", "created_at": "2016-09-15T01:00:00Z", "user": "d", "text": "macro day, spent $5 on coffee"},
]


def test_sample_social_format(tmp_path):
    path = tmp_path / "social.jsonl"
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in SOCIAL_LINES) + "\n")
    with open(path, "ab") as fh:
        fh.write(b'{"id": "p5", "created_at": "2016-09-15T01:00:00Z", "user": "e", "text": "\xff"}\n')
    rejects = Rejects()
    docs = read_documents(path, SOCIAL, "social", rejects)
    assert docs["doc_id"].tolist() == ["p1", "p4"]
    assert docs["entities"].tolist() == [["NWE", "RDLP"], []]
    assert docs["user"].tolist() == ["a", "d"]
    assert str(docs["published_at"].dt.tz) == "UTC"
    got = {(r.line, r.reason.split(":")[0]) for r in rejects.items}
    assert got == {(2, "malformed JSON line"), (3, "missing text"), (4, "malformed JSON line"),
                   (5, "naive published_at without a declared zone"), (7, "undecodable bytes")}


def test_sample_transcripts_format(tmp_path):
    call = {"call_id": "NWE-2016Q3", "ticker": "NWE", "company": "Northwind", "call_start": "2016-10-27T17:00:00-04:00",
            "title": "Northwind Q3", "text": "Prepared Remarks:\n\nOperator\n\nGood afternoon.\n\nQuestions and Answers:\n"}
    path = tmp_path / "transcripts.jsonl"
    path.write_text(json.dumps(call) + "\n" + json.dumps({**call, "call_start": "2016-10-27"}) + "\n")
    rejects = Rejects()
    docs = read_documents(path, TRANSCRIPTS, "transcript", rejects)
    assert docs.loc[0, "published_at"] == pd.Timestamp("2016-10-27 21:00", tz="UTC")
    assert docs.loc[0, "text"] == call["text"] and docs.loc[0, "entities"] == ["NWE"]
    # a bare date in a file whose preset declares no zone is refused, not guessed
    assert [(r.line, r.column, r.reason.split(":")[0]) for r in rejects.items] == [
        (2, "call_start", "date-only published_at without a declared zone")]
    assert docs.loc[0, "company"] == "Northwind"


def test_parquet_folder_and_glob(tmp_path, news_csv):
    docs = read_documents(news_csv, NEWS, "news", Rejects())
    raw = pd.DataFrame({"doc_id": docs.doc_id, "headline": docs.text, "tickers": ["A;B", "", "C"],
                        "published_at": docs.published_at.dt.tz_convert("America/New_York"),
                        "publisher": "W", "url": "u"})
    (tmp_path / "pq").mkdir()
    raw.iloc[:2].to_parquet(tmp_path / "pq" / "a.parquet")
    raw.iloc[2:].to_parquet(tmp_path / "pq" / "b.parquet")
    for spec in (tmp_path / "pq", str(tmp_path / "pq" / "*.parquet")):
        got = read_documents(spec, NEWS, "news", Rejects())
        assert got["doc_id"].tolist() == ["n1", "n2", "n8"]
        assert got["published_at"].tolist() == docs["published_at"].tolist()


def test_mapping_errors_are_clear(news_csv):
    with pytest.raises(ContractError, match=r"missing column\(s\) \['body'\]"):
        read_documents(news_csv, NEWS.model_copy(update={"text": "body"}), "news", Rejects())
    with pytest.raises(ContractError, match="source must be one of"):
        read_documents(news_csv, NEWS, "blog", Rejects())
    with pytest.raises(UsageError, match="no CSV/JSONL/Parquet file matches"):
        read_documents(news_csv.parent / "nope*.csv", NEWS, "news", Rejects())


def test_cli_load_writes_parquet_and_rejects(tmp_path, news_csv):
    from altsignal.cli import app

    out, rej = tmp_path / "out" / "docs.parquet", tmp_path / "out" / "rejects.jsonl"
    result = CliRunner().invoke(app, [
        "data", "load", str(news_csv), "--source", "news", "--id-col", "doc_id", "--text-col", "headline",
        "--time-col", "published_at", "--entities-col", "tickers", "--entity-sep", ";",
        "--out", str(out), "--rejects", str(rej), "--chunk-rows", "3"])
    assert result.exit_code == 0, result.output
    assert "3 documents" in result.output and "6 rejects" in result.output
    table = pq.read_table(out)
    assert table.schema.names == DOCUMENT_SCHEMA.names and table.num_rows == 3
    assert table.schema.field("published_at").type == DOCUMENT_SCHEMA.field("published_at").type
    lines = [json.loads(x) for x in rej.read_text().splitlines()]
    assert sorted(x["line"] for x in lines) == [5, 6, 7, 8, 9, 10]
    assert all(x["reason"] for x in lines)


def test_cli_load_needs_a_mapping_for_files(tmp_path, news_csv):
    from altsignal.cli import app

    result = CliRunner().invoke(app, ["data", "load", str(news_csv), "--out", str(tmp_path / "x.parquet"),
                                      "--rejects", str(tmp_path / "r.jsonl")])
    assert result.exit_code != 0 and "--source" in result.output


@pytest.mark.parametrize("name", ["sample:news", "sample:social", "sample:transcripts"])
def test_real_sample_corpus(name):
    rejects = Rejects()
    docs = load_preset(name, rejects)
    assert len(docs) > 0 and docs["doc_id"].is_unique
    assert str(docs["published_at"].dt.tz) == "UTC"
    assert (docs["published_at"] >= pd.Timestamp("2016-06-01", tz="America/New_York")).all()
    assert (docs["published_at"] < pd.Timestamp("2017-03-01", tz="America/New_York")).all()
    assert all(r.line > 0 and r.reason for r in rejects.items)
    if name != "sample:social":  # the sample's social file has deliberately empty posts
        assert len(rejects) == 0, rejects.to_frame()


def test_jsonl_keys_are_optional_per_record(tmp_path):
    path = tmp_path / "social.jsonl"
    path.write_text(json.dumps({"id": "p1", "created_at": "2016-09-14T13:22:05Z", "text": "no user key"}) + "\n"
                    + json.dumps({"id": "p2", "created_at": "2016-09-14T13:22:05Z", "user": "u"}) + "\n")
    rejects = Rejects()
    docs = pd.concat(iter_documents(path, SOCIAL, "social", rejects, chunk_rows=1))
    assert docs.doc_id.tolist() == ["p1"] and docs.user.isna().all()
    assert [(r.line, r.column) for r in rejects.items] == [(2, "text")]


def test_csv_carriage_returns(tmp_path):
    path = tmp_path / "news.csv"
    path.write_bytes(b"doc_id,published_at,tickers,headline,publisher,url\r\n"
                     b'a,2016-09-14T08:05:00-04:00,NWE,"two\r\nlines",W,u\r\n'  # lines 2-3, CRLF file
                     b"b,2016-09-14T08:05:00-04:00,NWE,bare\rCR,W,u\r\n"  # 4: CR its writer left unquoted
                     b"c,2016-09-14T08:05:00-04:00,NWE,fine,W,u\r\n")  # 5
    rejects = Rejects()
    docs = read_documents(path, NEWS, "news", rejects)
    assert docs.doc_id.tolist() == ["a", "c"] and docs.text.tolist() == ["two\r\nlines", "fine"]
    assert docs.url.tolist() == ["u", "u"]
    assert [(r.line, r.reason) for r in rejects.items] == [
        (4, "malformed CSV row: carriage return inside an unquoted field")]
