"""Bad input on the scoring side (issue 11): each case ends as a clear error (exit 2, nothing
written) or as rejects with reasons, and no row is lost: rows in = scored + rejected.

Reader cases run without a model; job and CLI cases use the tiny model of scoring_support.
"""
from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)
from typer.testing import CliRunner

from altsignal.cli import app
from core.errors import UsageError
from core.rejects import Rejects
from nlp.readers.documents import get_preset, iter_documents, read_documents
from nlp.readers.records import expand_paths
from nlp.scoring.job import read_scores

HEADER = "doc_id,published_at,tickers,headline,publisher,url"
NEWS = get_preset("sample:news").mapping
SOCIAL = get_preset("sample:social").mapping


def _row(i: int, text: str | None = None, when: str = "2020-06-02T10:00:00-04:00", doc_id: str | None = None) -> str:
    return f"{doc_id or f'n{i:02d}'},{when},AAPL,{text or f'Apple shares rise on iPhone demand note {i}'},Desk,u"


def _csv(path: Path, rows: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join([HEADER, *rows]) + "\n").encode(encoding))
    return path


def _jsonl(path: Path, records: list[dict | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def _post(i: int, **over) -> dict:
    return {"id": f"p{i}", "created_at": "2020-06-02T14:00:00Z", "user": "u", "text": f"$AAPL looks strong {i}"} | over


def _read(path, mapping=NEWS, source="news", **over):
    rejects = Rejects()
    docs = read_documents(path, mapping.model_copy(update=over), source, rejects)
    return docs, rejects


def _reasons(rejects: Rejects) -> list[str]:
    return [r.reason for r in rejects.items]


# --- reader: rows -------------------------------------------------------------------------------

def test_implausible_years_are_rejected_at_read_time_with_a_configurable_range(tmp_path):
    times = ["0001-01-01T10:00:00Z", "1800-01-01T10:00:00Z", "9999-12-31T10:00:00Z", "2090-01-01T10:00:00Z"]
    rows = [_row(i) for i in range(6)] + [_row(6 + i, when=t) for i, t in enumerate(times)]
    path = _csv(tmp_path / "times.csv", rows)
    docs, rejects = _read(path)
    assert len(docs) == 6 and len(rejects) == 4 and len(docs) + len(rejects) == len(rows)
    assert [r.line for r in rejects.items] == [8, 9, 10, 11]
    assert _reasons(rejects)[:2] == ["implausible published_at: before 1990-01-01T00:00:00+00:00 (see --earliest)"] * 2
    assert all(r.startswith("implausible published_at: after") for r in _reasons(rejects)[2:])
    wide, rejects = _read(path, earliest=date(1700, 1, 1), latest=date(2100, 1, 1))
    assert len(wide) == 8 and len(rejects) == 2  # 1800 and 2090 now plausible; 0001 and 9999 still not


def test_a_json_escaped_lone_surrogate_rejects_only_its_row(tmp_path):
    records = [json.dumps(_post(i)) for i in range(9)]
    records[4] = records[4].replace("strong", "strong \\ud800")  # an escape, not a raw byte
    docs, rejects = _read(_jsonl(tmp_path / "s.jsonl", records), SOCIAL, "social")
    assert len(docs) == 8 and len(rejects) == 1
    assert rejects.items[0].line == 5 and "lone surrogate" in rejects.items[0].reason
    pair = _jsonl(tmp_path / "pair.jsonl", [json.dumps(_post(0)).replace("strong", "\\ud83d\\ude80")])
    docs, rejects = _read(pair, SOCIAL, "social")  # a valid surrogate pair is an emoji: kept
    assert len(docs) == 1 and not len(rejects) and "\U0001F680" in docs["text"][0]


def test_an_unbalanced_quote_costs_one_row_not_the_rows_it_would_swallow(tmp_path):
    rows = [_row(i) for i in range(20)]
    # The quote opened in row 5 closes inside row 6: one merged record with the right field count,
    # which plain CSV parsing scores silently as 19 rows.
    rows[5] = _row(5, text='"Apple says supply is tight')
    rows[6] = _row(6, text='Shares "jump" on the news')
    rows[9] = _row(9, text='"A quoted headline, with a comma\nand a second line"')  # legitimate: kept whole
    docs, rejects = _read(_csv(tmp_path / "q.csv", rows))
    assert len(docs) == 19 and len(rejects) == 1
    assert rejects.items[0].line == 7 and "unbalanced quote" in rejects.items[0].reason
    assert "n06" in set(docs["doc_id"]) and "and a second line" in docs.set_index("doc_id").at["n09", "text"]
    # An opening quote that never closes would otherwise swallow every row to the end of the file.
    rows = [_row(i) for i in range(10)]
    rows[3] = _row(3, text='"never closed')
    docs, rejects = _read(_csv(tmp_path / "q2.csv", rows))
    assert len(docs) == 9 and [r.line for r in rejects.items] == [5]


def test_wrong_column_types_become_rejects_with_reasons(tmp_path):
    records = [_post(i) for i in range(6)]
    records[2]["text"] = 1000
    docs, rejects = _read(_jsonl(tmp_path / "t.jsonl", records), SOCIAL, "social")
    assert len(docs) == 5 and _reasons(rejects) == ["wrong type: text must be a string, got int"]
    assert "1000" not in set(docs["text"])

    frame = pd.DataFrame({"doc_id": [f"n{i}" for i in range(6)], "published_at": "2020-06-02T10:00:00-04:00",
                          "tickers": [np.nan] + [1.5] * 5, "headline": [f"Apple headline {i}" for i in range(6)],
                          "publisher": "Desk", "url": "u"})
    frame.to_parquet(tmp_path / "floats.parquet")
    docs, rejects = _read(tmp_path / "floats.parquet")  # used to crash in the entity parser
    assert len(docs) == 1 and len(rejects) == 5
    assert set(_reasons(rejects)) == {"wrong type: tickers must be a ticker string or a list of tickers, got float"}
    frame.assign(tickers="AAPL", headline=range(6)).to_parquet(tmp_path / "ints.parquet")
    docs, rejects = _read(tmp_path / "ints.parquet")
    assert len(docs) == 0 and set(_reasons(rejects)) == {"wrong type: headline must be a string, got int"}


def test_nul_bytes_and_control_characters_in_ids_are_rejected(tmp_path):
    records = [_post(i) for i in range(5)]
    records[1]["id"] = "p1\u0000x"
    records[3]["id"] = "p3\tx"
    records[4]["text"] = "$AAPL \u0000\u0001 binary"
    docs, rejects = _read(_jsonl(tmp_path / "nul.jsonl", records), SOCIAL, "social")
    assert list(docs["doc_id"]) == ["p0", "p2"]
    assert sorted(r.split(":")[0] for r in _reasons(rejects)) == ["invalid doc_id", "invalid doc_id", "invalid text"]


def test_utf16_with_a_byte_order_mark_is_read_and_latin1_needs_an_encoding(tmp_path):
    rows = [_row(i) for i in range(5)]
    rows[2] = _row(2, text="Café Société profits rise")
    docs, rejects = _read(_csv(tmp_path / "u16.csv", rows, "utf-16"))
    assert len(docs) == 5 and not len(rejects) and "Café" in docs["text"][2]

    latin = _csv(tmp_path / "l1.csv", rows, "latin-1")
    docs, rejects = _read(latin)
    assert len(docs) == 4 and _reasons(rejects)[0].startswith("undecodable bytes: not valid utf-8 text")
    assert "--encoding" in _reasons(rejects)[0]
    docs, rejects = _read(latin, encoding="latin-1")
    assert len(docs) == 5 and "Société" in docs["text"][2]

    no_bom = tmp_path / "u16le.csv"
    no_bom.write_bytes(("\n".join([HEADER, *rows]) + "\n").encode("utf-16-le"))
    with pytest.raises(UsageError, match="UTF-16") as err:
        _read(no_bom)
    assert "utf-16-le" in err.value.hint


def test_binary_bytes_in_a_csv_become_row_rejects(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "bin.csv"
    path.write_bytes(f"{HEADER}\n{_row(0)}\n".encode() + rng.integers(1, 256, 3000, dtype=np.uint8).tobytes()
                     + f"\n{_row(1)}\n".encode())
    docs, rejects = _read(path)
    assert list(docs["doc_id"]) == ["n00", "n01"] and len(rejects) >= 1
    assert all(r.startswith(("malformed CSV row", "undecodable bytes")) for r in _reasons(rejects))


def test_the_csv_field_limit_follows_max_chars(tmp_path):
    rows = [_row(0), _row(1, text="word " * 40_000)]  # 200,000 characters > csv's default 131,072
    path = _csv(tmp_path / "big.csv", rows)
    rejects = Rejects()
    assert sum(len(d) for d in iter_documents(path, NEWS, "news", rejects)) == 1
    assert "longer than 131,072 characters (raise --max-chars" in rejects.items[0].reason
    rejects = Rejects()
    assert sum(len(d) for d in iter_documents(path, NEWS, "news", rejects, max_field_chars=300_000)) == 2


def test_empty_and_header_only_files_give_no_rows_and_no_rejects(tmp_path):
    for name, content in (("empty.csv", ""), ("header.csv", HEADER + "\n"), ("empty.jsonl", ""),
                          ("blank.jsonl", "\n  \n")):
        (tmp_path / name).write_text(content)
        mapping, source = (NEWS, "news") if name.endswith(".csv") else (SOCIAL, "social")
        docs, rejects = _read(tmp_path / name, mapping, source)
        assert len(docs) == 0 and len(rejects) == 0, name
    res = CliRunner().invoke(app, ["score", "--input", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "cannot infer the column mapping" in _error(res)
    assert not (tmp_path / "o").exists()


def test_a_glob_that_matches_nothing_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no CSV/JSONL/Parquet file matches"):
        expand_paths(str(tmp_path / "nothing-*.csv"))


# --- CLI: options and output folders --------------------------------------------------------------

def _score(model: Path, inp, out, *extra):
    args = ["score", "--input", str(inp), "--out", str(out), "--model", str(model), "--source", "news",
            "--numeric", "fp32", "--threads", "1", "--quiet", *extra]
    return CliRunner().invoke(app, args)


def _error(res) -> str:
    lines = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, res.output  # one clear line, no traceback
    assert "Traceback" not in res.output
    return lines[0]


def test_bad_options_are_one_line_exit_2_and_write_nothing(tiny_model, tmp_path):
    good = _csv(tmp_path / "good.csv", [_row(i) for i in range(3)])
    res = _score(tiny_model, tmp_path / "none-*.csv", tmp_path / "o1")
    assert res.exit_code == 2 and "none-*.csv" in _error(res)
    res = _score(tiny_model, good, tmp_path / "o2", "--timezone", "Mars/Olympus")
    assert res.exit_code == 2 and "Mars/Olympus" in _error(res)
    res = _score(tiny_model, good, tmp_path / "o3", "--encoding", "klingon")
    assert res.exit_code == 2 and "klingon" in _error(res)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    for out in (a_file, a_file / "sub"):
        res = _score(tiny_model, good, out)
        assert res.exit_code == 2 and "is a file, not a folder" in _error(res)
    assert a_file.read_text() == "mine"
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root writes anywhere: use a place no one can write in
        read_only = Path("/proc")
    res = _score(tiny_model, good, read_only / "out")
    assert res.exit_code == 2 and "cannot write in" in _error(res)
    (tmp_path / "o4").mkdir()
    (tmp_path / "o4" / "manifest.json").write_text("not json")
    res = _score(tiny_model, good, tmp_path / "o4")
    assert res.exit_code == 2 and "is not a scoring job's manifest" in _error(res)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "good.csv", "o4", "ro"]
    assert [p.name for p in (tmp_path / "o4").iterdir()] == ["manifest.json"]


def test_data_load_bad_options_are_one_line_exit_2(tmp_path):
    good = _csv(tmp_path / "good.csv", [_row(i) for i in range(3)])
    base = ["data", "load", str(good), "--source", "news", "--id-col", "doc_id", "--text-col", "headline",
            "--time-col", "published_at", "--out", str(tmp_path / "d.parquet"), "--rejects", str(tmp_path / "r")]
    for option, value in (("--timezone", "Foo/Bar"), ("--encoding", "klingon")):
        res = CliRunner().invoke(app, [*base, option, value])
        assert res.exit_code == 2 and value in _error(res)
    res = CliRunner().invoke(app, [*base, "--earliest", "2021-01-01"])  # every row is before it
    assert res.exit_code == 0 and "0 documents" in res.output and "3  implausible published_at" in res.output


@pytest.fixture(scope="module")
def mixed_job(tiny_model, tmp_path_factory):
    """One job over a CSV holding a bit of everything, plus the rows-in count it was made with."""
    tmp = tmp_path_factory.mktemp("mixed")
    rows = [_row(i) for i in range(30)]
    rows[3] = _row(3, when="9999-12-31T10:00:00Z")
    rows[4] = _row(4, when="1800-01-01T10:00:00Z")
    rows[8] = _row(8, text='"Apple says supply is tight')
    rows[9] = _row(9, text='Shares "jump" on the news')
    rows[12] = _row(12, doc_id="n\x0012")
    rows[15] = _row(15, doc_id="n14")  # a duplicate id
    rows[20] = _row(20, text="<p></p>")  # nothing left to score once HTML is stripped
    rows[25] = _row(25, when="2020-06-02 10:00:00")  # naive, and no --timezone
    inp = _csv(tmp / "mixed.csv", rows)
    with open(inp, "ab") as fh:  # one latin-1 line in a UTF-8 file
        fh.write((_row(30, text="Café Société profits rise") + "\n").encode("latin-1"))
    out = tmp / "out"
    res = _score(tiny_model, inp, out)
    assert res.exit_code == 0, res.output
    return inp, out, len(rows) + 1, res.output


@pytest.mark.slow
def test_every_row_is_scored_or_rejected_with_a_reason(mixed_job):
    _, out, rows_in, output = mixed_job
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]
    rejected = c["docs_rejected"] + c["reader_rejects"]
    assert c["docs_scored"] + rejected == rows_in and rejected == 8
    assert f"rejected {rejected}" in output and "not valid utf-8 text" in output and "pass --encoding" in output
    reasons = [json.loads(line)["reason"].split(":")[0] for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert sorted(reasons) == sorted(["implausible published_at"] * 2 + [
        "naive published_at without a declared zone", "malformed CSV row", "invalid doc_id", "duplicate doc_id",
        "empty text", "undecodable bytes"])


@pytest.mark.slow
def test_scores_folder_reads_with_plain_pandas_and_a_touched_input_resumes(tiny_model, mixed_job):
    inp, out, _, _ = mixed_job
    plain = pd.read_parquet(out / "scores")  # no source= partition key clashing with the column
    assert len(plain) == 23 and set(plain["source"]) == {"news"}
    pd.testing.assert_frame_equal(plain, read_scores(out))
    os.utime(inp)  # a new mtime, the same content: still the same job
    res = _score(tiny_model, inp, out)
    assert res.exit_code == 0 and "skipped 24 already scored" in res.output, res.output
    manifest = (out / "manifest.json").read_text()
    res = _score(tiny_model, inp, out, "--batch-tokens", "256")
    assert res.exit_code == 2 and "holds job" in _error(res)
    assert (out / "manifest.json").read_text() == manifest


@pytest.mark.slow
def test_an_unreadable_file_is_counted_and_named(tiny_model, tmp_path):
    (tmp_path / "in").mkdir()
    good = _csv(tmp_path / "in" / "a.csv", [_row(i) for i in range(4)])
    (tmp_path / "in" / "b.parquet").write_bytes(np.random.default_rng(0).bytes(3000))
    res = _score(tiny_model, good.parent, tmp_path / "out", "--id-col", "doc_id", "--text-col", "headline",
                 "--time-col", "published_at", "--entities-col", "tickers")
    assert res.exit_code == 0, res.output
    assert "scored 4 documents" in res.output and "rejected 1;" in res.output
    assert "skipped " + str(tmp_path / "in" / "b.parquet") in res.output


# --- issue 30: special files, inputs named twice, JSON text entities, impossible offsets, busy and full folders --

def test_a_fifo_or_other_special_file_is_refused_before_it_is_read(tiny_model, tmp_path):
    fifo = tmp_path / "p.csv"
    os.mkfifo(fifo)  # no writer: reading it would block forever
    with pytest.raises(UsageError, match="not a regular file"):
        expand_paths([fifo])
    res = _score(tiny_model, fifo, tmp_path / "o")
    assert res.exit_code == 2 and "not a regular file" in _error(res)
    assert not (tmp_path / "o").exists()


def test_the_same_input_twice_is_a_usage_error_and_no_manifest_is_left(tiny_model, tmp_path):
    good = _csv(tmp_path / "a.csv", [_row(i) for i in range(3)])
    res = CliRunner().invoke(app, ["score", "--input", str(good), "--input", str(tmp_path / "." / "a.csv"),
                                   "--out", str(tmp_path / "o"), "--model", str(tiny_model), "--source", "news",
                                   "--numeric", "fp32", "--quiet"])
    assert res.exit_code == 2 and "given twice" in _error(res)
    assert not (tmp_path / "o").exists()
    with pytest.raises(UsageError, match="given twice"):
        expand_paths([tmp_path, good])  # the folder holds it already


def test_score_out_equal_to_an_input_is_refused(tiny_model, tmp_path):
    good = _csv(tmp_path / "a.csv", [_row(i) for i in range(3)])
    res = _score(tiny_model, good, good)
    assert res.exit_code == 2 and "is also --input" in _error(res)
    assert good.read_text().startswith(HEADER)


def test_entities_written_as_json_text_are_a_list_or_a_reject(tmp_path):
    posts = [_post(0, tickers='["LMSL", "RDLP"]'), _post(1, tickers=["LMSL", "RDLP"]), _post(2, tickers="[LMSL"),
             _post(3, tickers='[1, 2]'), _post(4, tickers="LMSL")]
    docs, rejects = _read(_jsonl(tmp_path / "p.jsonl", posts), SOCIAL, "social", entities="tickers", cashtags=False)
    assert docs.set_index("doc_id")["entities"].map(list).to_dict() == {
        "p0": ["LMSL", "RDLP"], "p1": ["LMSL", "RDLP"], "p4": ["LMSL"]}
    assert [(r.line, r.column) for r in rejects.items] == [(3, "tickers"), (4, "tickers")]
    assert all("not a JSON list of tickers" in r.reason for r in rejects.items)


@pytest.mark.parametrize("when", ["2020-06-02T10:00:00+15:00", "2020-06-02T10:00:00-12:30", "2020-06-02T10:00:00+1400"])
def test_an_offset_no_zone_has_is_rejected(tmp_path, when):
    ok = when.endswith("+1400")
    docs, rejects = _read(_csv(tmp_path / "a.csv", [_row(0, when=when), _row(1)]))
    assert len(docs) == (2 if ok else 1) and len(rejects) == (0 if ok else 1)
    if not ok:
        assert "outside -12:00..+14:00" in rejects.items[0].reason


def test_a_second_job_writing_the_same_folder_meanwhile_is_refused(tiny_model, tmp_path):
    """Two jobs with other inputs into one --out: the second gets a clear error while the first
    holds the folder (it used to pass the manifest check before the first wrote its manifest)."""
    import fcntl

    out = tmp_path / "o"
    out.mkdir()
    with open(out / ".lock", "w") as held:  # the first job's lock, as run_job holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        res = _score(tiny_model, _csv(tmp_path / "ten.csv", [_row(i) for i in range(10)]), out)
    assert res.exit_code == 2 and "being written by another scoring job" in _error(res)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the second job's


def test_a_full_disk_is_a_clear_error_and_the_job_resumes_after(tiny_model, tmp_path, monkeypatch):
    import errno

    import nlp.scoring.job as job

    good = _csv(tmp_path / "a.csv", [_row(i) for i in range(6)])
    real = job._atomic_parquet

    def full(table, path):
        real(table, path.with_name(".x.tmp"))  # a temp file left behind, as a failed write does
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(job, "_atomic_parquet", full)
    res = _score(tiny_model, good, tmp_path / "o", "--chunk-rows", "2")
    assert res.exit_code == 2 and "no space left on the device holding" in _error(res)
    assert str(tmp_path / "o") in res.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    monkeypatch.setattr(job, "_atomic_parquet", real)
    res = _score(tiny_model, good, tmp_path / "o", "--chunk-rows", "2")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["status"] == "complete"
    assert len(read_scores(tmp_path / "o")["doc_id"].unique()) == 6


@pytest.mark.slow
def test_a_real_full_tmpfs_is_a_clear_error(tiny_model, tmp_path):
    """`--out` on a 12 KB tmpfs, in a private mount namespace (skipped where that is not allowed)."""
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm (a user mount namespace) is not permitted here")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    good = _csv(tmp_path / "a.csv", [_row(i, text="x " * 400 + str(i)) for i in range(40)])
    cmd = (f"mount -t tmpfs -o size=12k tmpfs {mnt} && {sys.executable} -c 'from altsignal.cli import app; app()' score "
           f"--input {good} --out {mnt}/job --model {tiny_model} --source news --numeric fp32 --quiet --no-cache "
           f"--chunk-rows 5; echo rc=$?; cat {mnt}/job/manifest.json")
    res = subprocess.run([unshare, "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=300)
    if "mount:" in res.stderr and "rc=" not in res.stdout:
        pytest.skip(f"tmpfs mount not permitted: {res.stderr.strip()}")
    assert "rc=2" in res.stdout, res.stdout + res.stderr
    assert "no space left on the device holding" in res.stderr and "this is a bug" not in res.stderr
    assert '"status": "running"' not in res.stdout
