"""Ken French, S&P 500 and market-feature loaders: real shared files, packaged data, bad input."""
from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from signals.market import (
    FrenchFormatError,
    french_known_at,
    load_french,
    load_sp500,
    market_features,
    parse_french_csv,
)


def test_daily_from_shared_folder(shared_datasets):
    d = load_french("daily", shared_datasets / "fama_french")
    assert list(d.columns) == ["Mkt-RF", "SMB", "HML", "RMW", "CMA", "Mom", "RF"]
    assert d["Mkt-RF"].count() == 13971 and d["Mom"].count() == 24290
    assert d.loc["2018-12-31", "Mkt-RF"] == pytest.approx(0.0090)
    assert d.loc["1963-07-01", "RF"] == pytest.approx(0.00012)
    assert d.index.min() == pd.Timestamp("1926-11-03") and d.index.is_monotonic_increasing


def test_monthly_from_shared_folder_matches_packaged(shared_datasets):
    m = load_french("monthly", shared_datasets / "fama_french")
    assert m.loc["1963-07-31", "Mkt-RF"] == pytest.approx(-0.0039)
    assert m.index.max() == pd.Timestamp("2018-12-31")
    p = load_french("monthly", "packaged")
    assert list(p.columns) == ["Mkt-RF", "SMB", "HML", "Mom", "RF"]
    both = m.join(p, how="inner", suffixes=("", "_pk")).loc["1990":"2016"]
    # Different CRSP vintages: nearly identical, never the same series shifted or in percent.
    assert (both["Mkt-RF"] - both["Mkt-RF_pk"]).abs().median() < 5e-4
    assert np.corrcoef(both["HML"], both["HML_pk"])[0, 1] > 0.97


def test_packaged_daily_is_a_clear_error():
    with pytest.raises(ValueError, match="no daily Ken French data"):
        load_french("daily", "packaged")


def test_url_path_reads_the_library_zip(tmp_path, shared_datasets):
    # The online code path (library *_CSV.zip files under a base URL), served from file://.
    for stem in ("F-F_Research_Data_5_Factors_2x3", "F-F_Momentum_Factor"):
        with zipfile.ZipFile(tmp_path / f"{stem}_CSV.zip", "w") as zf:
            zf.write(shared_datasets / "fama_french" / f"{stem}.CSV", f"{stem}.csv")
    via_url = load_french("monthly", tmp_path.as_uri() + "/")
    pd.testing.assert_frame_equal(via_url, load_french("monthly", shared_datasets / "fama_french"))


GOOD = "Header text\n\n,Mkt-RF,RF\n202001,   1.00,   0.10\n202002,  -99.99,   0.12\n\n Annual Factors: January-December \n,Mkt-RF,RF\n  2020,   5.00,   1.00\n\nCopyright 2021 Kenneth R. French\n"


def test_parser_sections_missing_codes_and_percent():
    sec = parse_french_csv(GOOD, "good")
    assert set(sec) == {"monthly", "annual"}
    assert np.isnan(sec["monthly"].loc["2020-02-29", "Mkt-RF"])
    assert sec["annual"].loc["2020-12-31", "Mkt-RF"] == 5.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("title\n202001, 1.0\n", "before any column row"),
        (",A,B\n202001, 1.0\n", "1 values for 2 columns"),
        (",A\n202001, x\n", "non-numeric"),
        (",A\n202001, 1.0\n20200102, 1.0\n", "daily date '20200102' inside a monthly section"),
        (",A\n\n", "has no data rows"),
        (",A\n202001, 1\n202001, 2\n", "duplicate date"),
        ("just text\n", "no data section"),
        (",A,A\n202001,1,2\n", "bad column row"),
        (",A\n202013, 1.0\n", "invalid monthly date"),
    ],
)
def test_parser_rejects_malformed_sections(text, message):
    with pytest.raises(FrenchFormatError, match=message):
        parse_french_csv(text, "bad.csv")


def test_known_at_is_period_end_close():
    idx = pd.DatetimeIndex(["2016-09-14", "2016-12-30"])
    assert list(french_known_at(idx)) == [pd.Timestamp("2016-09-14 20:00Z"), pd.Timestamp("2016-12-30 21:00Z")]


def test_market_features_packaged_monthly():
    f = market_features("monthly", "packaged")
    assert {"Mkt-RF_ret_1m", "Mkt-RF_ret_12m", "SP500_rv_21d", "known_at"} <= set(f.columns)
    row = f.loc["2016-12-31"]
    m = load_french("monthly", "packaged")["Mkt-RF"]
    assert row["Mkt-RF_ret_3m"] == pytest.approx((1 + m.loc["2016-10-31":"2016-12-31"]).prod() - 1)
    assert 0.03 < row["SP500_rv_21d"] < 0.3
    assert (f["known_at"] >= f.index.tz_localize("America/New_York").tz_convert("UTC")).all()


def test_market_features_daily_from_shared(shared_datasets):
    f = market_features("daily", shared_datasets / "fama_french")
    assert f["Mkt-RF_rv_21d"].loc["2018-12"].between(0.1, 0.6).all()
    r = load_french("daily", shared_datasets / "fama_french")["SMB"].loc[:"2018-12-31"].tail(21)
    assert f.loc["2018-12-31", "SMB_ret_1m"] == pytest.approx((1 + r).prod() - 1)


def test_sp500_shared_and_packaged_agree(shared_datasets):
    shared = load_sp500(shared_datasets / "vix_and_market" / "^GSPC.csv")
    packaged = load_sp500("packaged")
    both = shared.join(packaged, how="inner", suffixes=("", "_pk"))
    assert len(both) > 4000
    assert (both["close"] - both["close_pk"]).abs().max() < 0.01
