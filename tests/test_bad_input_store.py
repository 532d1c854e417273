"""Bad input for the feature store (issue 11): colliding ids, out-of-calendar times, re-runs,
hostile paths, a locked or damaged store file, and empty-looking reads.

Score files are written in a scoring job's layout (``<out>/scores/part-*.parquet`` beside
``manifest.json``, or the older ``scores/source=<src>/`` partitions) from small frames, so no
model runs here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from altsignal.cli import app
from core.errors import EXIT_STORE, EXIT_USAGE, UsageError
from nlp.contracts import SCORE_SCHEMA
from signals import FeatureProvider
from signals.store import FeatureStore, StoreDamagedError
from signals.synthetic import score_frame

INGESTED = "2016-12-01T00:00Z"


def _docs(n: int, source: str, p_pos: float, start: str = "2016-09-12T14:00Z", prefix: str = "news-") -> list[dict]:
    """``n`` one-unit documents ``news-0000``... one per calendar day (from a Monday), all naming ticker AAA."""
    t0 = pd.Timestamp(start)
    return [dict(doc_id=f"{prefix}{i:04d}", source=source, published_at=t0 + pd.Timedelta(days=i), ingested_at=INGESTED,
                 p_pos=p_pos, p_neg=round(0.9 - p_pos, 6), entities=["AAA"]) for i in range(n)]


def _job(folder, frame: pd.DataFrame, partitioned: bool = False):
    """Write ``frame`` as a scoring job's output folder (with the aggregates that are no Score rows)."""
    for source, rows in frame.groupby("source"):
        part = folder / "scores" / (f"source={source}" if partitioned else "") / f"part-{source}.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), part)
    (folder / "documents").mkdir()
    pq.write_table(pa.table({"doc_id": ["x"], "mean_score": [0.5]}), folder / "documents" / "part-0.parquet")
    (folder / "manifest.json").write_text(json.dumps({"status": "complete"}))
    return folder


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _build(scores, db, *extra):
    return _cli("features", "build", "--scores", scores, "--db", db, *extra)


def _table(db, sql: str) -> list[tuple]:
    with FeatureStore(db, read_only=True) as store:
        return store.con.execute(sql).fetchall()


def test_ids_reused_by_another_source_leave_news_features_intact(tmp_path):
    db = tmp_path / "f.duckdb"
    news = _job(tmp_path / "news", score_frame(_docs(30, "news", 0.8)))
    assert _build(news, db).exit_code == 0
    with FeatureStore(db, read_only=True) as store:
        before = store.daily(sources=["news"], carry_events=False)
    social = _job(tmp_path / "social", score_frame(_docs(30, "social", 0.1)))  # the same 30 ids
    res = _build(social, db)
    assert res.exit_code == 0, res.output
    with FeatureStore(db, read_only=True) as store:
        after = store.daily(sources=["news"], carry_events=False)
        assert len(store.daily(sources=["social"], carry_events=False)) == len(before)
    pd.testing.assert_frame_equal(after, before)
    assert before.groupby("entity")["n_docs"].sum().to_dict() == {"AAA": 30, "__MARKET__": 30}
    assert _table(db, "SELECT count(*) FROM daily_features WHERE deleted") == [(0,)]


def test_both_score_folder_layouts_build_the_same_features(tmp_path):
    frame = score_frame(_docs(10, "news", 0.8) + _docs(10, "social", 0.2, prefix="post-"))
    built = []
    for partitioned in (False, True):
        db = tmp_path / f"{partitioned}.duckdb"
        res = _build(_job(tmp_path / str(partitioned), frame, partitioned), db)
        assert res.exit_code == 0 and "20 added" in res.output, res.output
        with FeatureStore(db, read_only=True) as store:
            built.append(store.daily(carry_events=False))
    pd.testing.assert_frame_equal(*built)
    assert set(built[0]["source"]) == {"all", "news", "social"}


def test_same_feed_correction_replaces_but_another_feed_does_not(tmp_path):
    db = tmp_path / "f.duckdb"
    assert _build(_job(tmp_path / "v1", score_frame(_docs(5, "news", 0.8))), db).exit_code == 0
    vendor_b = score_frame(_docs(5, "news", 0.05))
    assert _build(_job(tmp_path / "b", vendor_b), db, "--feed", "vendor-b").exit_code == 0
    with FeatureStore(db, read_only=True) as store:
        both = store.daily(entities=["AAA"], sources=["news"], carry_events=False)
    assert both["n_docs"].tolist() == [2] * 5  # vendor B's ids are other documents
    corrected = score_frame([dict(d, ingested_at="2016-12-02T00:00Z") for d in _docs(5, "news", 0.05)])
    res = _build(_job(tmp_path / "v2", corrected), db)
    assert res.exit_code == 0 and "5 added" in res.output
    with FeatureStore(db, read_only=True) as store:
        now = store.daily(entities=["AAA"], sources=["news"], carry_events=False)
    assert now["n_docs"].tolist() == [2] * 5 and now["tone"].tolist() == [-1.0] * 5  # both feeds negative now
    assert _table(db, "SELECT feed, count(*) FROM scores GROUP BY ALL ORDER BY 1") == [("news", 10), ("vendor-b", 5)]


@pytest.mark.parametrize("year", ["0001", "1800", "9999"])
def test_an_out_of_calendar_time_is_rejected_and_later_builds_work(tmp_path, year):
    db = tmp_path / "f.duckdb"
    rows = _docs(6, "news", 0.8)
    good = pa.Table.from_pandas(score_frame(rows), preserve_index=False).cast(SCORE_SCHEMA)
    bad = good.slice(0, 1).to_pylist()[0] | dict(doc_id="far", published_at=datetime(int(year), 6, 1, 12, tzinfo=timezone.utc))
    table = pa.concat_tables([good, pa.Table.from_pylist([bad], schema=SCORE_SCHEMA)])
    (tmp_path / "scores").mkdir()
    pq.write_table(table, tmp_path / "scores" / "part.parquet")  # by hand: no reader checked these times
    res = _build(tmp_path / "scores", db)
    assert res.exit_code == 0, res.output
    assert "6 added, 0 already in the store, 1 rejected" in res.output
    (reject,) = [json.loads(x) for x in (tmp_path / "f.duckdb.rejects.jsonl").read_text().splitlines()]
    assert reject["column"] == "published_at" and "outside the XNYS calendar" in reject["reason"]
    assert "doc_id=far" in reject["raw"]
    again = _build(_job(tmp_path / "more", score_frame(_docs(3, "news", 0.8, start="2016-11-01T14:00Z", prefix="n2-"))), db)
    assert again.exit_code == 0, again.output
    assert _table(db, "SELECT count(*) FROM scores") == [(9,)]


def test_a_bad_unit_rejects_its_whole_document(tmp_path):
    call = [dict(doc_id="call-1", unit=i, source="transcript", published_at="2016-09-14T12:00Z", p_pos=0.7, p_neg=0.1,
                 entities=["AAA"]) for i in range(3)]
    table = pa.Table.from_pandas(score_frame(call + _docs(4, "news", 0.8)), preserve_index=False)
    p_pos = table.column("p_pos").to_pylist()
    p_pos[1] = float("nan")
    (tmp_path / "s").mkdir()
    pq.write_table(table.set_column(table.schema.get_field_index("p_pos"), "p_pos", pa.array(p_pos, pa.float32())),
                   tmp_path / "s" / "part.parquet")
    res = _build(tmp_path / "s", tmp_path / "f.duckdb")
    assert res.exit_code == 0 and "4 added, 0 already in the store, 3 rejected" in res.output, res.output
    reasons = [json.loads(x)["reason"] for x in (tmp_path / "f.duckdb.rejects.jsonl").read_text().splitlines()]
    assert sorted(r.split(":")[0] for r in reasons) == ["another row of this document version was rejected"] * 2 + ["invalid probabilities"]


def test_a_failed_build_commits_nothing(tmp_path):
    db = tmp_path / "f.duckdb"
    assert _build(_job(tmp_path / "a", score_frame(_docs(7, "news", 0.8))), db).exit_code == 0
    other_model = score_frame(_docs(50, "news", 0.8, prefix="m-"), model_id="another-model")
    res = _build(_job(tmp_path / "b", other_model), db)  # scores from two models: the build refuses
    assert res.exit_code == EXIT_USAGE and "several models" in res.output
    assert _table(db, "SELECT count(*) FROM scores") == [(7,)]  # not 57
    assert _table(db, "SELECT count(*) FROM builds") == [(1,)]


def test_rebuilding_after_an_interruption_adds_no_rows(tmp_path):
    db = tmp_path / "f.duckdb"
    frame = score_frame(_docs(40, "news", 0.8) + _docs(10, "transcript", 0.3, prefix="call-"))
    job = _job(tmp_path / "job", frame)
    assert _build(job, db).exit_code == 0
    counts = _table(db, "SELECT (SELECT count(*) FROM scores), (SELECT count(*) FROM daily_features)")
    res = _build(job, db)
    assert res.exit_code == 0 and "0 added, 50 already in the store, 0 rejected" in res.output
    assert _table(db, "SELECT (SELECT count(*) FROM scores), (SELECT count(*) FROM daily_features)") == counts
    with FeatureStore(db) as store:  # a store from before the fix, holding every row twice
        store.con.execute("INSERT INTO scores SELECT * FROM scores")
    assert "0 added, 50 already in the store" in _build(job, db).output
    # Rows without ingested_at are stamped "now" on each run: still nothing new.
    hand = tmp_path / "hand.parquet"
    pq.write_table(pa.Table.from_pandas(frame.drop(columns="ingested_at").assign(doc_id=lambda d: "h-" + d["doc_id"]),
                                        preserve_index=False), hand)
    first, second = _build(hand, db), _build(hand, db)
    assert "50 added" in first.output and "0 added, 50 already in the store" in second.output
    # Two copies of one file in one folder: each row is added once.
    (tmp_path / "copies").mkdir()
    copy = pa.Table.from_pandas(frame.assign(doc_id="copy-" + frame["doc_id"]), preserve_index=False)
    for name in ("a.parquet", "b.parquet"):
        pq.write_table(copy, tmp_path / "copies" / name)
    assert "50 added, 50 already in the store, 0 rejected" in _build(tmp_path / "copies", db).output
    assert _table(db, "SELECT count(*) FROM scores") == [(200,)]


def test_a_store_without_feeds_is_upgraded_in_place(tmp_path):
    db = tmp_path / "old.duckdb"
    assert _build(_job(tmp_path / "a", score_frame(_docs(5, "news", 0.8))), db).exit_code == 0
    with FeatureStore(db) as store:  # the layout before document identity included the feed
        store.con.execute("ALTER TABLE scores DROP COLUMN feed")
        store.con.execute("ALTER TABLE documents DROP COLUMN feed")
    res = _build(_job(tmp_path / "b", score_frame(_docs(5, "social", 0.8))), db)
    assert res.exit_code == 0 and "5 added" in res.output, res.output
    assert _table(db, "SELECT feed, count(*) FROM scores GROUP BY ALL ORDER BY 1") == [("news", 5), ("social", 5)]
    assert "0 added, 5 already in the store" in _build(tmp_path / "a", db).output


def test_another_version_at_the_same_instant_is_refused(tmp_path):
    db = tmp_path / "f.duckdb"
    frame = score_frame(_docs(5, "news", 0.8)).drop(columns="ingested_at")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "v1.parquet")
    pq.write_table(pa.Table.from_pandas(frame.assign(p_pos=0.85, p_neu=0.05, score=0.75), preserve_index=False), tmp_path / "v2.parquet")
    assert _build(tmp_path / "v1.parquet", db, "--ingested-at", INGESTED).exit_code == 0
    res = _build(tmp_path / "v2.parquet", db, "--ingested-at", INGESTED)
    assert res.exit_code == EXIT_USAGE and "5 document version(s) are already stored with other content" in res.output
    assert "later ingested_at" in res.output  # the hint
    assert _build(tmp_path / "v2.parquet", db, "--ingested-at", "2016-12-02T00:00Z").exit_code == 0
    assert _table(db, "SELECT count(*) FROM scores") == [(10,)]


@pytest.mark.parametrize("damage, named", [
    (lambda t: t.drop_columns(["p_pos"]), "lack column(s) ['p_pos']"),
    (lambda t: t.set_column(t.schema.get_field_index("published_at"), "published_at",
                            t.column("published_at").cast(pa.timestamp("us"))), "['published_at'] must be timezone-aware"),
    (lambda t: t.set_column(t.schema.get_field_index("p_neg"), "p_neg", t.column("p_neg").cast(pa.string())),
     "wrong type {'p_neg': 'VARCHAR'}"),
])
def test_a_malformed_score_file_is_one_error_and_writes_nothing(tmp_path, damage, named):
    (tmp_path / "s").mkdir()
    pq.write_table(damage(pa.Table.from_pandas(score_frame(_docs(5, "news", 0.8)), preserve_index=False)), tmp_path / "s" / "p.parquet")
    res = _build(tmp_path / "s", tmp_path / "f.duckdb")
    assert res.exit_code == EXIT_USAGE and named in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "f.duckdb").exists()  # a failed command creates no store (issue 30)


def test_export_path_with_quotes_runs_no_sql(tmp_path):
    db = tmp_path / "f.duckdb"
    assert _build(_job(tmp_path / "a", score_frame(_docs(5, "news", 0.8))), db).exit_code == 0
    out = tmp_path / "x'); DROP TABLE scores; COPY (SELECT 1) TO ('pwned.parquet"
    res = _cli("features", "export", "--db", db, "--table", "scores", "--out", out)
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).num_rows == 5
    assert _table(db, "SELECT count(*) FROM scores") == [(5,)]
    assert not list(tmp_path.rglob("pwned*"))


@pytest.mark.slow
def test_a_second_writer_gets_one_clear_error(tmp_path):
    """Two real processes: one holds the store open for writing, the other runs `features build`."""
    db = tmp_path / "f.duckdb"
    job = _job(tmp_path / "a", score_frame(_docs(5, "news", 0.8)))
    hold = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(db)!r}); "
                             "print('ready', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == "ready"
        proc = subprocess.run([sys.executable, "-c", "from altsignal.cli import app; app()", "features", "build",
                               "--scores", str(job), "--db", str(db)],
                              capture_output=True, text=True, timeout=300, env=dict(os.environ))
    finally:
        hold.communicate("")
    assert proc.returncode == EXIT_STORE, proc.stderr
    assert f"feature store {db} is in use by another process (PID {hold.pid})" in proc.stderr
    assert "Traceback" not in proc.stderr
    res = _build(job, db)  # once the other process is gone, the same command works
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("damage", ["truncated", "junk", "empty"])
def test_a_damaged_store_file_is_named_with_exit_3(tmp_path, damage):
    db = tmp_path / "f.duckdb"
    assert _build(_job(tmp_path / "a", score_frame(_docs(5, "news", 0.8))), db).exit_code == 0
    data = db.read_bytes()
    db.write_bytes({"truncated": data[: len(data) // 2], "junk": b"not a database" * 500, "empty": b""}[damage])
    for args in (["show", "--db", db], ["build", "--scores", tmp_path / "a", "--db", db]):
        res = _cli("features", *args)
        assert res.exit_code == EXIT_STORE, res.output
        assert f"feature store {db} is damaged or not a DuckDB file" in res.output
        assert "Traceback" not in res.output
    with pytest.raises(StoreDamagedError, match=str(db)):  # a truncated file may open, then fail on a read
        FeatureProvider(db, market_source=None, macro_source=None).daily()


def test_missing_score_files_and_store_are_named(tmp_path):
    res = _build(tmp_path / "nothing" / "*.parquet", tmp_path / "f.duckdb")
    assert res.exit_code == EXIT_USAGE and "no Parquet files at" in res.output
    (tmp_path / "empty").mkdir()
    assert "no Parquet files at" in _build(tmp_path / "empty", tmp_path / "f.duckdb").output
    res = _cli("features", "show", "--db", tmp_path / "absent.duckdb")
    assert res.exit_code == EXIT_USAGE and f"feature store {tmp_path / 'absent.duckdb'} does not exist" in res.output
    res = _build(_job(tmp_path / "a", score_frame(_docs(5, "news", 0.8))), tmp_path)  # --db is a folder
    assert res.exit_code == EXIT_USAGE and f"cannot open feature store {tmp_path}" in res.output


def test_empty_looking_reads_are_errors(tmp_path):
    db = tmp_path / "f.duckdb"
    assert _build(_job(tmp_path / "a", score_frame(_docs(40, "news", 0.8))), db).exit_code == 0
    fp = FeatureProvider(db, market_source=None, macro_source=None)
    try:
        for frequency in ("monthly", "daily"):
            with pytest.raises(UsageError, match=r"start 2016-12-31 is after end 2016-09-01"):
                fp.panel("2016-12-31", "2016-09-01", frequency=frequency)
        with pytest.raises(UsageError, match=r"unknown sources \['tweets'\]: the feature store has \['all', 'news'\]"):
            fp.panel("2016-09-01", "2016-12-31", sources=["tweets"])
        with pytest.raises(UsageError, match="unknown sources"):
            fp.daily("2016-09-01", "2016-12-31", sources="nws")
        assert len(fp.panel("2016-09-01", "2016-12-31", sources=["news"])) == 4  # a valid request still works
    finally:
        fp.close()
    res = _cli("features", "show", "--db", db, "--source", "tweets")
    assert res.exit_code == EXIT_USAGE and "unknown sources ['tweets']" in res.output


# --- issue 30: a failed command creates no store; outputs never overwrite outputs or inputs --------------

def test_a_failed_build_creates_no_store(tmp_path):
    res = _build(tmp_path / "missing", tmp_path / "f.duckdb")
    assert res.exit_code == EXIT_USAGE and "no Parquet files" in res.output
    assert list(tmp_path.iterdir()) == []


def test_an_output_equal_to_another_output_or_an_input_is_refused(tmp_path):
    scores = _job(tmp_path / "job", pd.DataFrame(score_frame(_docs(3, "news", 0.6))))
    res = _build(scores, tmp_path / "f.duckdb", "--rejects", tmp_path / "f.duckdb")
    assert res.exit_code == EXIT_USAGE and "--rejects" in res.output and "is also --db" in res.output
    assert not (tmp_path / "f.duckdb").exists()
    res = _cli("data", "load", "sample:news", "--out", tmp_path / "d.parquet", "--rejects", tmp_path / "d.parquet")
    assert res.exit_code == EXIT_USAGE and "is also --out" in res.output and not (tmp_path / "d.parquet").exists()
    assert _build(scores, tmp_path / "f.duckdb").exit_code == 0
    res = _cli("features", "export", "--db", tmp_path / "f.duckdb", "--out", tmp_path / "f.duckdb")
    assert res.exit_code == EXIT_USAGE and "is also --db" in res.output


def test_rollback_forgets_later_rows_and_builds_and_reads_at_the_earlier_build_are_unchanged(tmp_path):
    first = pd.DataFrame(score_frame(_docs(20, "news", 0.6)))
    later = pd.DataFrame(score_frame(_docs(5, "news", 0.2, start="2016-12-12T14:00Z", prefix="late-")))
    later["ingested_at"] = pd.Timestamp("2016-12-20T00:00Z")
    t1, t2 = pd.Timestamp("2016-12-05T00:00Z"), pd.Timestamp("2016-12-21T00:00Z")
    with FeatureStore(tmp_path / "f.duckdb") as store:
        store.add_scores(first)
        store.build(t1)
        want = store.daily(as_of=t1)
        store.add_scores(later)
        store.build(t2)
        with pytest.raises(UsageError, match="no build at"):
            store.rollback(pd.Timestamp("2016-12-10T00:00Z"))
        removed = store.rollback(t1)
        assert removed["scores"] == 5 and removed["builds"] == 1
        assert store.last_build() == t1
        pd.testing.assert_frame_equal(store.daily(), want)
        store.add_scores(later)
        store.build(t2)  # a full build after the rollback
        assert store.last_build() == t2 and len(store.daily()) > len(want)
