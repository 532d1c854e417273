"""The embedded sample corpus (corpora/sample/) parses and matches what its README promises.

These checks guard the offline default run: every later stage reads these files, so a broken
quote, a naive timestamp or an unknown ticker here would surface far away. The counts in the
README are checked against the files so the documentation cannot drift.
"""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from core.paths import SAMPLE_DIR
from nlp.contracts import LABELS

NY = "America/New_York"
# The corpus window, in New York time: the first session day to the end of the last one.
START = pd.Timestamp("2016-06-01 00:00", tz=NY)
END = pd.Timestamp("2017-02-28 23:59:59", tz=NY)
OFFSET_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
UTC_Z_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CASHTAG = re.compile(r"\$([A-Za-z]{1,6})\b")
US_HOLIDAYS = ["2016-07-04", "2016-09-05", "2016-11-24", "2016-12-26", "2017-01-16", "2017-02-20"]


@pytest.fixture(scope="module")
def companies() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DIR / "companies.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def tickers(companies) -> set[str]:
    return set(companies["ticker"])


@pytest.fixture(scope="module")
def news() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DIR / "news.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def social() -> list[dict]:
    with open(SAMPLE_DIR / "social.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def transcripts() -> list[dict]:
    with open(SAMPLE_DIR / "transcripts.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def labeled() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DIR / "labeled_sentences.csv", dtype=str, keep_default_na=False)


def _in_window(ts: pd.Series) -> bool:
    return bool(((ts >= START) & (ts <= END)).all())


def _months(ts: pd.Series) -> set[str]:
    return set(ts.dt.tz_convert(NY).dt.strftime("%Y-%m"))


ALL_MONTHS = {p.strftime("%Y-%m") for p in pd.period_range("2016-06", "2017-02", freq="M")}


def test_companies(companies):
    assert list(companies.columns) == ["ticker", "company", "aliases"]
    assert 5 <= len(companies) <= 6
    assert companies["ticker"].is_unique
    assert companies["ticker"].str.fullmatch(r"[A-Z]{3,4}").all()
    for aliases in companies["aliases"]:
        assert all(a.strip() for a in aliases.split("|")), aliases


def test_news_shape_and_timestamps(news, tickers):
    assert list(news.columns) == ["doc_id", "published_at", "tickers", "headline", "publisher", "url"]
    assert len(news) >= 300
    assert news["doc_id"].is_unique
    assert (news["headline"].str.strip() != "").all()
    assert news["published_at"].str.match(OFFSET_TS).all(), "every published_at carries a UTC offset"
    ts = pd.to_datetime(news["published_at"], utc=True, format="ISO8601")
    assert _in_window(ts)
    assert _months(ts) == ALL_MONTHS
    et = ts.dt.tz_convert(NY)
    minutes = et.dt.hour * 60 + et.dt.minute
    assert (minutes < 9 * 60 + 30).sum() >= 20, "pre-market headlines"
    assert ((minutes >= 9 * 60 + 30) & (minutes < 16 * 60)).sum() >= 50, "intraday headlines"
    assert (minutes >= 16 * 60).sum() >= 20, "after-close headlines"
    assert (et.dt.day_of_week >= 5).sum() >= 5, "weekend headlines"
    assert set(US_HOLIDAYS) <= set(et.dt.strftime("%Y-%m-%d")), "holiday headlines"


def test_news_entities(news, companies, tickers):
    listed = [t for cell in news["tickers"] if cell for t in cell.split(";")]
    assert set(listed) <= tickers
    assert (news["tickers"].str.count(";") == 1).sum() >= 3, "a few two-ticker headlines"
    untagged = news.loc[news["tickers"] == "", "headline"]
    aliases = [a for cell in companies["aliases"] for a in cell.split("|")]
    named = untagged[untagged.apply(lambda h: any(a in h for a in aliases))]
    market_wide = len(untagged) - len(named)
    assert len(named) >= 20, "untagged headlines that name a company (alias resolution)"
    assert 0.10 <= market_wide / len(news) <= 0.20, "about 15% market-wide headlines"


def test_social(social, tickers):
    assert len(social) >= 400
    assert all(set(p) == {"id", "created_at", "user", "text"} for p in social)
    assert len({p["id"] for p in social}) == len(social)
    assert all(UTC_Z_TS.match(p["created_at"]) for p in social)
    ts = pd.to_datetime(pd.Series([p["created_at"] for p in social]), utc=True)
    assert _in_window(ts)
    assert _months(ts) == ALL_MONTHS
    texts = [p["text"] for p in social]
    tags = [CASHTAG.findall(t) for t in texts]
    assert {t.upper() for ts_ in tags for t in ts_} <= tickers
    assert sum(len(set(t)) >= 2 for t in tags) >= 5, "posts with two cashtags"
    assert sum(t.startswith("RT @") for t in texts) >= 20, "retweets"
    reposted = [re.sub(r"^RT @\w+: ", "", t) for t in texts]
    assert len(reposted) - len(set(reposted)) >= 30, "duplicates: retweets and double posts"
    assert sum(not t.strip() for t in texts) in (2, 3), "empty / whitespace-only posts"
    assert sum(0 < len(t.strip()) <= 2 for t in texts) == 1, "one extremely short post"
    assert sum("&amp;" in t or "&gt;" in t or "&lt;" in t for t in texts) >= 3, "HTML entities"
    assert sum(bool(re.search(r"[À-ÿ\u3040-\u30ff\u4e00-\u9fff]", t)) for t in texts) >= 3


def test_transcripts(transcripts, tickers):
    assert len(transcripts) >= 4
    assert all(
        set(c) == {"call_id", "ticker", "company", "call_start", "title", "text"} for c in transcripts
    )
    assert len({c["call_id"] for c in transcripts}) == len(transcripts)
    per_ticker = pd.Series([c["ticker"] for c in transcripts]).value_counts()
    assert set(per_ticker.index) <= tickers
    assert (per_ticker >= 2).sum() >= 2, "at least two companies with two quarters each"
    for c in transcripts:
        assert OFFSET_TS.match(c["call_start"]), c["call_id"]
        assert START <= pd.Timestamp(c["call_start"]) <= END
        lines = c["text"].split("\n")
        assert "Prepared Remarks:" in lines and "Questions and Answers:" in lines, c["call_id"]
        assert lines.index("Prepared Remarks:") < lines.index("Questions and Answers:")
        assert "Operator" in lines
        headers = [ln for ln in lines if " -- " in ln]
        assert any(re.fullmatch(r"[^-]+ -- Chief Executive Officer", h) for h in headers)
        assert any(re.fullmatch(r"[^-]+ -- Chief Financial Officer", h) for h in headers)
        assert any(re.fullmatch(r"[^-]+ -- [^-]+ -- Analyst", h) for h in headers)
        # Speaker headers stand alone between blank lines, as the readers expect.
        for i, ln in enumerate(lines):
            if ln in headers or ln == "Operator":
                assert lines[i - 1] == "" and lines[i + 1] == "", (c["call_id"], ln)
        body = " ".join(
            ln for ln in lines
            if ln and ln not in headers and ln not in ("Operator", "Prepared Remarks:", "Questions and Answers:")
        )
        n_sentences = len(re.findall(r"[.!?](?:\s|$)", body))
        assert 60 <= n_sentences <= 150, (c["call_id"], n_sentences)


def test_labeled_sentences(labeled):
    assert list(labeled.columns) == ["text", "label"]
    assert len(labeled) >= 180
    assert (labeled["text"].str.strip() != "").all()
    assert labeled["text"].is_unique
    assert set(labeled["label"]) == set(LABELS)
    shares = labeled["label"].value_counts(normalize=True)
    assert (shares >= 0.20).all(), shares.to_dict()


def test_readme_counts_match_files(news, social, transcripts, labeled, companies):
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" in readme
    for name, n in [
        ("companies.csv", len(companies)),
        ("news.csv", len(news)),
        ("social.jsonl", len(social)),
        ("transcripts.jsonl", len(transcripts)),
        ("labeled_sentences.csv", len(labeled)),
    ]:
        assert re.search(rf"`{re.escape(name)}` \| {n} ", readme), f"README count for {name} is not {n}"
