"""Relevance of a document's entities: headline and cashtag above a passing mention above a tag,
and a list of many tickers below a story about one."""
import pandas as pd
import pytest

from signals.relevance import relevance


def _rel(text, entities, source="news", title=None) -> dict[str, float]:
    docs = pd.DataFrame({"doc_id": ["d"], "source": [source], "text": [text], "entities": [entities], "title": [title]})
    return dict(zip(*relevance(docs)[["entity", "relevance"]].T.values))


def test_ordering_of_prominent_mentioned_and_tagged():
    head = _rel("AAPL raises its dividend", ["AAPL"])["AAPL"]
    body = _rel("Dividend news today. " + "Markets were mixed. " * 10 + "Among them AAPL raised its payout.", ["AAPL"])["AAPL"]
    tagged = _rel("Dividend news today, markets mixed", ["AAPL"])["AAPL"]
    assert head == pytest.approx(1.0) and body == pytest.approx(0.7) and tagged == pytest.approx(0.4)
    assert head > body > tagged


def test_cashtag_is_prominent_and_lists_spread_attention():
    one = _rel("loving my $TSLA calls", ["TSLA"], source="social")["TSLA"]
    many = _rel("movers: $TSLA $AAPL $MSFT $AMZN $NFLX $GOOG $FB $NVDA $AMD $INTC",
                ["TSLA", "AAPL", "MSFT", "AMZN", "NFLX", "GOOG", "FB", "NVDA", "AMD", "INTC"], source="social")
    assert one == pytest.approx(1.0)
    assert all(v < 0.35 for v in many.values()) and len(many) == 10
    two = _rel("AAPL and MSFT both beat", ["AAPL", "MSFT"])
    assert 0.35 < two["AAPL"] == two["MSFT"] < one


def test_ticker_must_be_a_word_and_title_counts_for_untitled_lead():
    # "ON" the ticker is not the word "on"; the title decides prominence when there is one
    assert _rel("shares rose on strong demand", ["ON"])["ON"] == pytest.approx(0.4)
    assert _rel("long story body without the name", ["ON"], title="ON Semiconductor beats")["ON"] == pytest.approx(1.0)
    assert _rel("the call", ["XYZ"], source="transcript")["XYZ"] == pytest.approx(1.0)  # the call's own company
    assert _rel("no entities here", []) == {}
