"""Entity resolution: cashtags, explicit tickers, company names via the alias table."""
from __future__ import annotations

import pytest

from nlp.entities import EntityResolver, cashtags, company_aliases, load_alias_table, normalize_ticker, stocknet_aliases


@pytest.fixture(scope="module")
def resolver() -> EntityResolver:
    return EntityResolver.default()


def test_cashtags_with_share_classes():
    assert cashtags("Buying $AAPL and $BRK-A, selling $RDS.B; $5 lunch, $ 15, price$X, $lol") == ["AAPL", "BRK-A", "RDS-B"]
    assert normalize_ticker("$brk.b") == "BRK-B"


def test_company_names_from_alias_table_and_sample_companies(resolver):
    found = resolver.from_text([
        "Apple and Microsoft beat estimates",
        "Ridgeline Oil & Gas to sell East Texas assets",  # a sample company's former name
        "Lumisil Semiconductor Corp. unveils LX9",
        "apple pie sales soar",  # not the company: matching is case-sensitive
        "Fed holds rates steady",
    ])
    assert found == [["AAPL", "MSFT"], ["RDLP"], ["LMSL"], [], []]


def test_explicit_tickers_win_and_unresolved_is_market_wide(resolver):
    out = resolver.resolve(
        ["$NWE rallies after Apple deal", "Apple rallies", "Stocks slide as oil falls"],
        [["nwe"], None, []],
    )
    assert out == [["NWE"], ["AAPL"], []]


def test_alias_builder_strips_legal_suffixes():
    assert company_aliases("The Coca-Cola Company") == ["The Coca-Cola Company", "The Coca-Cola", "Coca-Cola Company", "Coca-Cola"]
    assert company_aliases("Exxon Mobil Corporation") == ["Exxon Mobil Corporation", "Exxon Mobil"]


def test_user_file_extends_the_table(tmp_path):
    extra = tmp_path / "mine.csv"
    extra.write_text("# my additions\nticker,alias\nnwe,Northwind Energy\n")
    r = EntityResolver(load_alias_table(extra=[extra], include_stocknet=False))
    assert r.from_text(["Northwind Energy cuts guidance"]) == [["NWE"]]


def test_stocknet_table_is_read_in_place(shared_datasets):
    table = stocknet_aliases()
    assert len(table["ticker"].unique()) == 88
    by = table.groupby("ticker")["alias"].apply(set)
    assert "Chevron" in by["CVX"] and "RDS-B" in by.index and "Berkshire Hathaway" in by["BRK-A"]
    r = EntityResolver(table)
    assert r.from_text(["Chevron and Pfizer report"]) == [["CVX", "PFE"]]
