"""Canonical splits: no normalized-text overlap, nested PhraseBank levels, stable committed manifests."""
import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.rejects import Rejects
from nlp import splits
from nlp.labeled_sets import load_labeled_set
from nlp.readers import phrasebank
from nlp.splits import SPLITS, SplitManifestError, assign_split, normalize_key

LEVELS = ["allagree", "75agree", "66agree", "50agree"]  # strictest first


def test_normalize_key_groups_near_duplicates():
    assert normalize_key("Operating profit rose to EUR 13.5 mn from EUR 9.7 mn in 2006 .") == \
        normalize_key("Operating profit rose to EUR 1.6 mn from EUR1 .1 mn in 2007.")
    assert normalize_key("Bank of \xc5land") == normalize_key("Bank of +\xe0land")  # mojibake-insensitive
    assert normalize_key("$COMDX: Metals https://t.co/abc") == normalize_key("$COMDX : metals https://t.co/XyZ9")
    assert normalize_key("profit rose") != normalize_key("profit fell")


def test_assignment_is_pinned(shared_datasets):
    # fixed forever: if these change, every committed split changes
    got = {k: assign_split(k) for k in ("operatingprofitrosetoeur0", "abc", "k6", "k12", "k20", "k22")}
    assert got == {"operatingprofitrosetoeur0": "test", "abc": "train", "k6": "test", "k12": "validation",
                   "k20": "test", "k22": "validation"}
    assert splits.build_manifest("fpb")["union"]["assignment_sha256"] == \
        "ff1a892c6fb9aa634889daeb7ae9e6068995199c79153649adc8cc57be52f49a"
    manifest = json.loads(splits.manifest_path("fpb").read_text())
    assert manifest["config"] == {"salt": "altsignal-split-v1", "test_pct": 10, "validation_pct": 10}
    assert manifest["normalization_version"] == splits.NORMALIZATION_VERSION == 1


@pytest.fixture(scope="module")
def fpb(shared_datasets):
    return {(lv, s): load_labeled_set(f"fpb:{lv}:{s}") for lv in LEVELS for s in SPLITS}


def test_fpb_no_key_overlap_between_splits(fpb):
    for lv in LEVELS:
        keys = {s: set(fpb[lv, s].text.map(normalize_key)) for s in SPLITS}
        assert not keys["train"] & keys["test"]
        assert not keys["train"] & keys["validation"]
        assert not keys["validation"] & keys["test"]


def test_fpb_levels_nest_in_every_split(fpb):
    for s in SPLITS:
        for strict, loose in zip(LEVELS, LEVELS[1:]):
            assert set(fpb[strict, s].text) <= set(fpb[loose, s].text), (strict, loose, s)
    assert len(fpb["allagree", "test"]) < len(fpb["50agree", "test"])


def test_fpb_counts_and_conflicts(fpb):
    manifest = splits.build_manifest("fpb")
    for lv in LEVELS:
        assert sum(len(fpb[lv, s]) for s in SPLITS) == manifest["levels"][lv]["rows_after_dedup"]
        for s in SPLITS:
            assert len(fpb[lv, s]) == manifest["levels"][lv]["splits"][s]["rows"]
        assert not any(fpb[lv, s].text.duplicated().any() for s in SPLITS)
    fifty = manifest["levels"]["50agree"]
    assert fifty["exact_duplicate_groups"] == 8 and fifty["conflicting_label_groups"] == 2
    assert [c["kept_label"] for c in fifty["conflicts_resolved"]] == ["positive", "positive"]
    assert {lv: manifest["levels"][lv]["exact_duplicate_groups"] for lv in LEVELS} == \
        {"allagree": 5, "75agree": 5, "66agree": 6, "50agree": 8}
    assert [c["lines"] for c in fifty["conflicts_resolved"]] == [[79, 80], [789, 790]]
    every = pd.concat([fpb["50agree", s] for s in SPLITS])
    raw = phrasebank.read_level("50agree", Rejects()).set_index("line")
    for line in (79, 789):
        rows = every[every.text == raw.at[line, "text"]]
        assert rows.label.tolist() == ["positive"]
    assert manifest["union"]["distinct_texts"] == 4838


def test_tfns_keeps_published_test_and_has_no_leak(shared_datasets):
    test = load_labeled_set("tfns:test")
    assert len(test) == 2388 and load_labeled_set("tfns:valid").equals(test)
    train, val = load_labeled_set("tfns:train"), load_labeled_set("tfns:validation")
    manifest = splits.build_manifest("tfns")
    assert len(train) + len(val) + manifest["train_rows_dropped_as_near_duplicates_of_test"] == 9543
    test_keys = set(test.key)
    assert not test_keys & set(train.key) and not test_keys & set(val.key) and not set(train.key) & set(val.key)
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.12


def test_committed_manifests_are_stable(shared_datasets, tmp_path):
    splits._build_cached.cache_clear()  # recompute from the files, not from this process's cache
    for name in splits.SETS:
        splits.verify_manifest(name)
        written = splits.write_manifest(name, tmp_path)
        assert written.read_text() == splits.manifest_path(name).read_text()


def test_changed_data_is_refused(shared_datasets, tmp_path, monkeypatch):
    for name in ("financial_phrasebank", "twitter_financial_news_sentiment"):
        shutil.copytree(shared_datasets / name, tmp_path / name)
    target = tmp_path / "financial_phrasebank" / "Sentences_AllAgree.txt"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes().replace(b"@neutral\n", b"@positive\n", 1))
    monkeypatch.setenv("ALTSIGNAL_DATASETS", str(tmp_path))
    with pytest.raises(SplitManifestError, match="Sentences_AllAgree.txt with sha256"):
        load_labeled_set("fpb:allagree:test")


def test_changed_code_is_refused(shared_datasets, tmp_path, monkeypatch):
    manifest = json.loads(splits.manifest_path("tfns").read_text())
    manifest["splits"]["test"]["rows"] += 1
    (tmp_path / "tfns.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(splits, "SPLITS_DIR", tmp_path)
    with pytest.raises(SplitManifestError, match=r"field\(s\) \['splits'\]"):
        splits.load_split("tfns", "test")


def test_cli_splits_check(shared_datasets):
    from altsignal.cli import app

    result = CliRunner().invoke(app, ["data", "splits", "--check"])
    assert result.exit_code == 0, result.output
    assert "fpb: manifest matches the data" in result.output
