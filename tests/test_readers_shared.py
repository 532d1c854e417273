"""Readers on the real shared datasets: row counts match each PROVENANCE.md exactly."""
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.rejects import Rejects
from nlp.readers import phrasebank, tfns
from nlp.readers.documents import PRESETS, iter_documents, load_preset, read_documents

# PROVENANCE.md: rows, positive, neutral, negative
FPB_COUNTS = {"50agree": (4846, 1363, 2879, 604), "66agree": (4217, 1168, 2535, 514),
              "75agree": (3453, 887, 2146, 420), "allagree": (2264, 570, 1391, 303)}
TFNS_COUNTS = {"train": (9543, 1442, 1923, 6178), "valid": (2388, 347, 475, 1566)}  # rows, bear, bull, neutral


@pytest.mark.parametrize("level", list(FPB_COUNTS))
def test_phrasebank_counts(shared_datasets, level):
    rejects = Rejects()
    df = phrasebank.read_level(level, rejects)
    rows, pos, neu, neg = FPB_COUNTS[level]
    assert len(rejects) == 0
    assert len(df) == rows
    assert df.label.value_counts().to_dict() == {"positive": pos, "neutral": neu, "negative": neg}
    assert df.line.tolist() == list(range(1, rows + 1))


def test_phrasebank_latin1_and_last_at(shared_datasets):
    df = phrasebank.read_level("50agree", Rejects())
    assert df.text.str.contains("\xe4").any()  # latin-1 letters decoded, not replaced
    assert not df.text.str.endswith("@").any()


@pytest.mark.parametrize("part", list(TFNS_COUNTS))
def test_tfns_counts(shared_datasets, part):
    rejects = Rejects()
    df = tfns.read_tfns(tfns.file_path(part), rejects)
    rows, bear, bull, neu = TFNS_COUNTS[part]
    assert len(rejects) == 0 and len(df) == rows
    assert df.label.value_counts().to_dict() == {"negative": bear, "positive": bull, "neutral": neu}
    assert df.text.str.contains("\n").sum() == {"train": 184, "valid": 43}[part]  # quoted newlines kept
    assert df.line.is_monotonic_increasing and df.line.max() > rows + 1  # physical lines, not record numbers


def test_dated_news(shared_datasets):
    path = shared_datasets / "dated_news" / "analyst_ratings_processed_partial_to2018.parquet"
    rejects = Rejects()
    docs = load_preset("news", rejects)
    raw = pq.read_table(path).to_pandas()
    assert len(rejects) == 0 and len(docs) == len(raw) == 7858
    assert docs.doc_id.is_unique and docs.source.eq("news").all()
    # ET strings with explicit -04:00/-05:00 offsets parse to the same instants as the provided UTC column
    assert raw.published_at.str.endswith("-04:00").any() and raw.published_at.str.endswith("-05:00").any()
    assert (docs.published_at.to_numpy() == raw.published_at_utc.to_numpy()).all()
    assert (docs.entities.str[0] == raw.ticker).all()


def test_dated_news_streaming_equals_whole(shared_datasets):
    preset = PRESETS["news"]
    now = pd.Timestamp("2026-01-01", tz="UTC")
    whole = read_documents(preset.path(), preset.mapping, "news", Rejects(), ingested_at=now)
    chunks = list(iter_documents(preset.path(), preset.mapping, "news", Rejects(), chunk_rows=1000, ingested_at=now))
    assert len(chunks) >= 8
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_stocknet_tweets(shared_datasets):
    rejects = Rejects()
    docs = load_preset("social", rejects)
    raw = pq.read_table(shared_datasets / "dated_social" / "stocknet_tweets.parquet",
                        columns=["published_at_utc", "ticker", "tweet_id"]).to_pandas()
    assert len(rejects) == 0 and len(docs) == 119641
    assert docs.tweet_id.nunique() == 96826 and docs.doc_id.is_unique
    assert (docs.published_at.to_numpy() == raw.published_at_utc.to_numpy()).all()  # Twitter layout, UTC
    assert docs.entities.str.len().eq(1).all() and docs.entities.str[0].nunique() == 87
    assert {"lang", "is_retweet"} <= set(docs.columns)


def test_maec_transcripts_known_at_end_of_call_day(shared_datasets):
    rejects = Rejects()
    docs = load_preset("transcripts", rejects)
    raw = pq.read_table(shared_datasets / "earnings_transcripts" / "maec_transcripts.parquet",
                        columns=["call_id", "call_date"]).to_pandas()
    assert len(rejects) == 0 and len(docs) == 3443 and docs.entities.str[0].nunique() == 1213
    local = docs.published_at.dt.tz_convert("America/New_York")
    assert (local.dt.strftime("%Y-%m-%d") == raw.call_date).all()
    assert (local.dt.strftime("%H:%M:%S.%f") == "23:59:59.999999").all()
    start = load_preset("transcripts", Rejects(), date_only="start_of_day", timezone="UTC")
    assert (start.published_at.dt.strftime("%Y-%m-%d %H:%M") == raw.call_date + " 00:00").all()
