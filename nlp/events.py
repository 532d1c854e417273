"""Event types for financial news headlines and social posts.

Commercial news analytics tag each story with what happened; this module does the same with a
small fixed taxonomy, regular expressions for formulaic text (Benzinga headlines) and nearest
hand-written prototypes in sentence-embedding space for the rest.

Taxonomy (:data:`EVENT_TYPES`; one line each, :data:`DEFINITIONS` holds the same text):

- ``earnings``: results and reporting: EPS/revenue reports, beats/misses, earnings previews and
  calendars, conference calls on results, sales/comps/production/AUM updates.
- ``guidance``: company outlook/guidance on its own: sees, raises, lowers, reaffirms or withdraws
  guidance (a results headline that also mentions guidance is ``earnings``).
- ``analyst_up``: analyst rating up: upgrade, raised price target, added to a buy/focus list,
  "top upgrades" lists.
- ``analyst_down``: analyst rating down: downgrade, lowered/cut price target, "top downgrades".
- ``analyst_other``: other analyst actions and named analysts'/pundits' calls: initiates,
  maintains, reiterates, a target without a direction, mixed "upgrades, downgrades" lists,
  TV pundits' picks.
- ``mna``: mergers and acquisitions: acquire, merger, takeover, divestiture of a business or asset,
  strategic/activist stakes.
- ``legal``: legal and regulatory: lawsuits, settlements, courts, SEC/DOJ/FTC actions,
  FDA decisions and designations, investigations, government/tax measures aimed at companies.
- ``management``: management and board change: CEO/CFO/director appointments, departures,
  searches, activist demands for new management or board seats.
- ``product_deal``: products, deals and operations: launches, contracts, partnerships,
  supply agreements, clinical-trial and exploration/operations results, patents.
- ``macro_market``: macro and market commentary and price/trading action: market updates and
  wraps, "stocks moving"/"biggest movers"/52-week-high/ex-dividend/screener lists, sector and
  commodity moves, single-stock price moves without a stated cause, halts, options activity,
  trading chatter, charts and ticker watch-lists.
- ``other``: anything else: offerings, dividends and buybacks, filings without content,
  opinion pieces without an event, unrelated or spam posts.

A price move with a stated cause takes the cause's type ("Down 2% Despite Strong Results" is
``earnings``); one without ("shares up 15% upon resumption") is ``macro_market``.

Rules (:data:`RULES`, :func:`rule_event`) are tried in order and the first match wins, so the
order is the precedence:

1. market-wide headers and lists ("Mid-Day Market Update: ...", "50 Biggest Movers From
   Yesterday", "Stocks Moving In ...") are ``macro_market`` whatever company news they quote, and
   "Earnings Scheduled For ..." calendars are ``earnings``;
2. analyst actions: a mixed "upgrades, downgrades" list is ``analyst_other``; then a rating change
   beats a target change (a downgrade that also lowers or raises the price target is
   ``analyst_down``); then raised/lowered targets; then initiates/maintains/reiterates/targets;
3. ``mna``, ``management``, ``legal`` (company events named in the text);
4. reported results (``earnings``), then guidance, then weaker earnings words;
5. price/trading action (``macro_market``), then products/deals (``product_deal``).

:class:`EventTyper` applies the rules first and types what they leave by the nearest prototype
sentence (:data:`PROTOTYPES`) by cosine similarity of packaged MiniLM embeddings
(:data:`nlp.models.PACKAGED_MINILM`, never a hub download), with ``other`` below ``min_similarity``.

The hand-labeled sample in ``corpora/events/`` (identifiers and labels only; the text is joined
from ``$ALTSIGNAL_DATASETS`` by :func:`load_labeled_events`) has a dev and a test split: rules,
prototypes and ``min_similarity`` were tuned on dev only; :func:`evaluate_events` scores a split.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from core.paths import CORPORA_DIR, datasets_dir
from nlp.models import PACKAGED_MINILM

EVENT_TYPES = ("earnings", "guidance", "analyst_up", "analyst_down", "analyst_other", "mna", "legal",
               "management", "product_deal", "macro_market", "other")

DEFINITIONS = {
    "earnings": "results and reporting: EPS/revenue reports, beats/misses, previews, calendars, results calls, sales/comps/production updates",
    "guidance": "company outlook on its own: sees, raises, lowers, reaffirms or withdraws guidance",
    "analyst_up": "analyst rating up: upgrade, raised price target, added to a buy/focus list",
    "analyst_down": "analyst rating down: downgrade, lowered/cut price target",
    "analyst_other": "other analyst actions: initiates, maintains, reiterates, target without direction, pundits' calls",
    "mna": "mergers and acquisitions: acquire, merger, takeover, divestiture, strategic/activist stakes",
    "legal": "legal and regulatory: lawsuits, settlements, courts, SEC/DOJ actions, FDA decisions, investigations",
    "management": "management and board change: appointments, departures, CEO searches, activist calls for new management",
    "product_deal": "products, deals and operations: launches, contracts, partnerships, trial and operations results, patents",
    "macro_market": "macro and market commentary and price/trading action: market updates, movers lists, sector moves, halts, options, charts, watch-lists",
    "other": "anything else: offerings, dividends, buybacks, bare filings, opinion without an event, unrelated posts",
}

DEFAULT_MIN_SIMILARITY = 0.25  # tuned on the dev split only: dev macro F1 0.79 on a plateau 0.2-0.3 (corpora/events/README.md)
LABELED_EVENTS = CORPORA_DIR / "events" / "labeled_events.csv"

_F = re.IGNORECASE
_PT = r"(?:PT|price[ -]?target|target)"
_RATING = (r"(?:strong buy|buy|sell|hold|neutral|overweight|underweight|equal[- ]weight|outperform|underperform|"
           r"market perform|sector perform|in-line|accumulate|reduce|positive|negative)")
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z.]{0,5}\b")


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, _F)


# (event type, compiled pattern, what it catches), in precedence order: the first match wins.
RULES: tuple[tuple[str, re.Pattern, str], ...] = (
    # 1. market-wide headers and lists: macro_market whatever they quote; earnings calendars
    ("macro_market", _rx(r"^\W*(?:UPDATE:\s*)?(?:Mid-Day|Mid-Morning|Mid-Afternoon|Morning|Pre-Market|After-Hours)\s+Market Update"
                         r"|^\W*Market (?:Wrap|Roundup|Update)|^\W*A Peek Into The Markets|\bon no news\b"
                         r"|\b(?:U\.?S\.?|European|Asian|global|world) (?:stocks|markets|equities|stock futures)\b"),
     "market update/wrap headers"),
    ("earnings", _rx(r"^\W*Earnings Scheduled For\b"), "earnings calendar lists"),
    ("macro_market", _rx(r"\b\d+\s+(?:Biggest\s+)?(?:Movers|(?:Mid-Day\s+)?(?:Gainers|Losers))\b"
                         r"|\bStocks Moving In\b|\bBiggest (?:Mid-Day )?(?:Movers|Gainers|Losers)\b|\bMicrocap Movers\b"),
     "'50 Biggest Movers From Yesterday', 'Stocks Moving In ...', gainers/losers lists"),
    # 2. analyst actions: mixed lists, rating change before target change, then the rest
    ("analyst_other", _rx(r"\bUpgrades,?\s+(?:and\s+)?Downgrades\b|\bPT Changes\b|\bPrice Target Changes\b"),
     "mixed upgrade/downgrade lists, lists of target changes"),
    ("analyst_down", _rx(r"\bdowngrade[sd]\b|\bdowngrade to\b|\bTop Downgrades\b"),
     "downgrades (a target change in the same headline does not matter)"),
    ("analyst_up", _rx(r"\bupgrade[sd]\b|\bupgrade to\b|\bTop Upgrades\b"), "upgrades"),
    ("analyst_down", _rx(rf"\b(?:lowers|lowered|cuts|cut|reduces|trims|lowerss)\b[^;]{{0,40}}\b{_PT}\b"
                         rf"|\b{_PT}\s+(?:lowered|cut|reduced|trimmed)\b"),
     "lowered/cut price targets"),
    ("analyst_up", _rx(rf"\b(?:raises|raised|increases|boosts|lifts|hikes)\b[^;]{{0,40}}\b{_PT}\b"
                       rf"|\b{_PT}\s+(?:raised|increased|boosted|lifted)\b|\badds?\b.{{0,60}}\b(?:focus|conviction|buy) list\b"
                       r"|\bOutperforms - Analyst Blog\b|\bZacks #1 Rank Additions\b"),
     "raised price targets, added to a focus/buy list"),
    ("analyst_other", _rx(rf"\binitiat(?:es|ed|ing)\s+(?:coverage|[^;]{{0,50}}\b(?:at|with)\s+(?:an?\s+)?{_RATING})|\binitiation\b|\bmaintains\b|\breiterates?\b|\breaffirms\b[^;]{{0,30}}\b(?:rating|buy|sell|hold)\b"
                          rf"|\b{_PT}\b|\b(?:Buy|Sell|Hold|Overweight|Underweight|Outperform|Neutral) rating\b"
                          r"|\baverage rating\b|\bFast Money Picks\b|\bMentioned (?:Positively|Negatively) On CNBC\b"),
     "initiates coverage, maintains, reiterates, price target without a direction, pundits' picks"),
    # 3. company events named in the text
    ("mna", _rx(r"\bto acquire\b|\bacquir(?:es|ed|ing)\b|\bacquisition of\b|\bmerger\b|\bmerge\b|\btakeover\b|\bbuyout\b"
                r"|\b(?:agrees?|deal|plans?|offers?|bid|could|would|set|moves?|talks) to buy\b|\bdivest(?:s|ed|iture)?\b|\bM&A\b|\bconsolidation\b|\b13D\b|\b\d+(?:\.\d+)?% stake\b|\bstake in\b"
                r"|\bsale of\b|\bpurchase of\b"),
     "'to acquire', acquisitions, mergers, divestitures, stakes"),
    ("management", _rx(r"\b(?:CEO|CFO|COO|CTO|chairman|chief executive|chief financial|president)\b.{0,60}"
                       r"\b(?:steps? down|stepping down|resigns?|resignation|retire[sd]?|to leave|leaves|departs?|departure|succeed|successor|search|interim|named|appointed)\b"
                       r"|\b(?:appoints?|names|elects?|hires?)\b.{0,60}\b(?:CEO|CFO|COO|CTO|chairman|president|VP|vice president|director|board|treasurer|officer|head)\b"
                       r"|\bboard of directors\b|\bnew (?:leadership|management|mgmt)\b|\bmgmt team\b|\bto retire\b"),
     "'CEO ... steps down', appointments, board changes"),
    ("legal", _rx(r"\blawsuits?\b|\bsues\b|\bsued\b|\bcourt\b|\bSEC\b|\bFTC\b|\bDOJ\b|\bJustice Department\b|\bFDA\b"
                  r"|\bsettle(?:s|d|ment)?\b|\binvestigation\b|\bprobe\b|\bclass action\b|\bantitrust\b|\bsubpoena\b"
                  r"|\bregulators?\b|\bviolat\w+\b|\bfined?\b|\bpenalty\b|\bBreakthrough Therapy\b"),
     "lawsuits, SEC/DOJ/FDA (FDA approval), settlements, investigations"),
    # 4. results, then guidance, then weaker earnings words
    ("earnings", _rx(r"\breports?\b[^;]{0,40}\b(?:Q[1-4]|[1-4]Q|first|second|third|fourth|quarter|quarterly|annual|FY|fiscal|\d{4})\b[^;]{0,40}\b(?:EPS|results|earnings|loss|income|sales|revenue)"
                     r"|\bQ[1-4]\s+(?:Adj\.?\s+)?(?:EPS|profit|loss|earnings|results|sales|revenue)\b|\b[1-4]Q\b"
                     r"|\bEPS\s+(?:of\s+)?\$?\(?[\d.]+\)?\s*(?:vs|misses|beats|up|down)|\bbeats?\b|\bmiss(?:es)?\b"
                     r"|\b(?:financial|quarter(?:ly)?)\s+results\b|\bearnings (?:beat|miss|top|preview|scorecard)\b|\bEarnings Preview\b"),
     "'reports Q3 EPS', beats/misses, quarterly results"),
    ("guidance", _rx(r"\bguidance\b|\boutlook\b|\b(?:sees|expects|forecasts|guides)\b[^;]{0,20}\b(?:FY|Q[1-4]|EPS|sales|revenue|\d{4})"),
     "guidance, outlook, 'sees FY18 EPS'"),
    ("earnings", _rx(r"\bearnings\b|\bEPS\b|\bresults\b|\bcomp(?:arable)? sales\b|\bassets under management\b|\bprelim(?:inary|\.)?\b"),
     "other earnings words"),
    # 5. price/trading action, then products/deals
    ("macro_market", _rx(r"\bshares? (?:are )?(?:up|down|swing|trading|fall|rise|jump|drop)|\b(?:up|down) \d+(?:\.\d+)?%|\b52[- ]?(?:week|wk)\b"
                         r"|\bhalted\b|\bspikes?\b|\bstocks? to watch\b|\bex[- ]dividend\b|\b(?:puts?|calls?) (?:purchased|sweep)\b|\boption alert\b"
                         r"|\bstocks? (?:with|in) the\b|\bTop \d+\b.{0,40}\bStocks\b|\bTop Performing\b|\bmarket news\b|\bnews summary\b"
                         r"|\bsector update\b|\bpre-?market\b|\bfutures\b|\bIPO\b"),
     "price moves without a stated cause, 52-week highs, halts, options, stocks-to-watch and screener lists"),
    ("product_deal", _rx(r"\blaunch(?:es|ed)?\b|\bintroduces?\b|\bunveils?\b|\bcontract\b|\bagreement\b|\bpartner(?:s|ship)?\b"
                         r"|\bcollaborat\w+\b|\bteams? up\b|\bMOU\b|\bselects?\b.{0,60}\bfor\b|\bprimary endpoints?\b|\bphase (?:I|II|III|[123])\b"
                         r"|\bpatent\b|\brecall\b|\bexpansion\b|\bdrilling\b"),
     "launches, contracts, partnerships, trials, patents"),
)


def rule_event(text: str) -> str | None:
    """The event type of the first rule in :data:`RULES` that matches ``text``, or None."""
    if not isinstance(text, str):
        return None
    text = _CASHTAG.sub("$TICKER", text)  # a ticker such as $BEAT or $DEAL is not a word
    for event_type, pattern, _ in RULES:
        if pattern.search(text):
            return event_type
    return None


# Short hand-written prototypes per type, for text the rules leave (mostly social posts).
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "earnings": (
        "Company reports quarterly earnings per share above analyst estimates",
        "Quarterly revenue and profit came in below expectations",
        "Earnings tomorrow morning, stock ran up ahead of the report",
        "The company posted record quarterly sales and user growth",
        "Earnings season preview: what to expect from the results",
    ),
    "guidance": (
        "Company raises its full-year guidance",
        "Company cuts its sales outlook for next year",
        "Management reaffirms fiscal year earnings forecast",
    ),
    "analyst_up": (
        "Analyst upgrades the stock to buy",
        "Broker raises its price target on the shares",
        "Stock upgraded to outperform at the bank",
    ),
    "analyst_down": (
        "Analyst downgrades the stock to sell",
        "Broker lowers its price target on the shares",
        "Stock downgraded to underperform",
    ),
    "analyst_other": (
        "Analyst initiates coverage with a neutral rating",
        "Bank maintains hold rating on the stock",
        "Analysts' consensus rating is buy with a price target",
        "TV stock picker says the stock is a buy",
    ),
    "mna": (
        "Company agrees to acquire rival in a cash and stock deal",
        "Merger talks between the two companies",
        "Takeover bid for the company",
        "Company sells its division to a private equity firm",
    ),
    "legal": (
        "Company sued in class action lawsuit",
        "Regulator opens investigation into the company",
        "Court rules against the company in patent case",
        "FDA approves the company's drug",
        "Government accuses company of spying and tax avoidance",
    ),
    "management": (
        "CEO steps down, company names interim chief executive",
        "Company appoints new chief financial officer",
        "Director to retire from the board",
    ),
    "product_deal": (
        "Company launches a new smartphone",
        "Company unveils new streaming device",
        "Company signs supply contract with partner",
        "Drug met primary endpoint in clinical trial",
        "Company now accepts payments with the new service",
        "New technology product is the next big thing",
    ),
    "macro_market": (
        "Stocks moving in today's pre-market session",
        "Stock market rallies as the Fed holds rates",
        "The stock broke out to a new 52-week high",
        "Watch for a pullback to support, chart looks weak",
        "Stocks to watch today: tickers on our watchlist",
        "Bought puts, took profit on the trade",
        "Sector stocks lead gains on the day",
        "Stock charts, percent change and message board updated",
        "Stock summary: last price, volume and percent change",
        "Free stock research and trade alerts on these tickers",
        "Technical indicator says the stock bounced off the intraday low",
        "The stock will crash, shorting the market",
    ),
    "other": (
        "Company announces public offering of common stock",
        "Board declares quarterly dividend and share buyback",
        "Check out my new music video",
        "Follow me for more giveaways",
        "Thank you, love this so much",
        "Opinion: why this company is worth owning",
        "Company files a current report",
    ),
}


_URL = re.compile(r"https?:\S*|\bhttp\S*|\S+\.(?:com|ly|co)/\S*")
_NOISE = re.compile(r"&(?:gt|lt|amp|quot);|[#@]|…|->|-&gt;")


def clean_for_embedding(text) -> str:
    """Text as the prototypes compare it: URLs, HTML entities and '#'/'@' marks removed, spaces collapsed."""
    text = _NOISE.sub(" ", _URL.sub(" ", "" if text is None else str(text)))
    return " ".join(text.split())


class EventTyper:
    """Event type per text: rules first (:func:`rule_event`), then the nearest prototype by cosine
    similarity, ``other`` when the best similarity is below ``min_similarity``.

    ``use_rules``/``use_prototypes`` turn either stage off (rules only: no match -> ``other``;
    prototypes only: every text by prototypes). ``fit`` is a no-op kept for the sklearn shape.
    """

    def __init__(self, model: str = PACKAGED_MINILM, min_similarity: float = DEFAULT_MIN_SIMILARITY,
                 prototypes: dict[str, Sequence[str]] | None = None, use_rules: bool = True,
                 use_prototypes: bool = True, batch_size: int = 64):
        self.model = model
        self.min_similarity = min_similarity
        self.prototypes = prototypes
        self.use_rules = use_rules
        self.use_prototypes = use_prototypes
        self.batch_size = batch_size

    def fit(self, texts=None, labels=None) -> "EventTyper":
        return self

    def _st(self):
        if getattr(self, "_st_", None) is None:
            from sentence_transformers import SentenceTransformer

            from nlp.models.artifact import resolve_base

            self._st_ = SentenceTransformer(resolve_base(self.model), device="cpu")
        return self._st_

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """Unit-normalised embeddings, batched (the same vectors ``predict(embeddings=...)`` takes)."""
        return self._st().encode([clean_for_embedding(t) for t in texts], batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    def _prototype_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_proto_", None) is None:
            protos = self.prototypes if self.prototypes is not None else PROTOTYPES
            unknown = set(protos) - set(EVENT_TYPES)
            if unknown:
                raise ValueError(f"prototypes for unknown event types {sorted(unknown)}; known: {EVENT_TYPES}")
            labels = np.array([t for t, sents in protos.items() for _ in sents])
            self._proto_ = (labels, self.encode([s for sents in protos.values() for s in sents]))
        return self._proto_

    def similarities(self, texts: Sequence[str] | None = None, embeddings=None) -> pd.DataFrame:
        """Best cosine similarity to each type's prototypes (rows = texts, columns = types with prototypes)."""
        labels, protos = self._prototype_matrix()
        emb = self._embeddings(texts, embeddings)
        sims = emb @ protos.T
        types = list(dict.fromkeys(labels))
        return pd.DataFrame({t: sims[:, labels == t].max(axis=1) for t in types})

    def _embeddings(self, texts, embeddings) -> np.ndarray:
        if embeddings is None:
            return self.encode(texts)
        emb = np.asarray(embeddings, dtype=np.float32)
        if texts is not None and len(emb) != len(texts):
            raise ValueError(f"{len(emb)} embeddings for {len(texts)} texts")
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.where(norms == 0, 1, norms)

    def predict_with_source(self, texts: Sequence[str], embeddings=None) -> pd.DataFrame:
        """One row per text: ``event_type``, ``how`` (rule | prototype | other) and ``similarity``
        (best prototype cosine; NaN where a rule decided or prototypes are off).

        ``embeddings``: precomputed embeddings of ``texts`` from the same encoder (``encode``), so a
        job that already embeds its documents does not embed twice; only rows the rules leave are
        encoded otherwise.
        """
        texts = ["" if t is None else str(t) for t in texts]
        n = len(texts)
        if embeddings is not None and len(embeddings) != n:
            raise ValueError(f"{len(embeddings)} embeddings for {n} texts")
        event = np.full(n, "other", dtype=object)
        how = np.full(n, "other", dtype=object)
        sim = np.full(n, np.nan)
        if self.use_rules:
            for i, t in enumerate(texts):
                r = rule_event(t)
                if r is not None:
                    event[i], how[i] = r, "rule"
        rest = np.flatnonzero(how != "rule")
        if self.use_prototypes and len(rest):
            emb = None if embeddings is None else np.asarray(embeddings)[rest]
            sims = self.similarities([texts[i] for i in rest], emb)
            best = sims.to_numpy().argmax(axis=1)
            score = sims.to_numpy().max(axis=1)
            sim[rest] = score
            ok = score >= self.min_similarity
            event[rest[ok]] = np.asarray(sims.columns)[best[ok]]
            how[rest[ok]] = "prototype"
        return pd.DataFrame({"event_type": event, "how": how, "similarity": sim})

    def predict(self, texts: Sequence[str], embeddings=None) -> list[str]:
        return self.predict_with_source(texts, embeddings)["event_type"].tolist()


def read_labels(path: Path | str = LABELED_EVENTS) -> pd.DataFrame:
    """The labeled identifiers (dataset, row_key, event_type, split), without text."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_labeled_events(split: str | None = None, path: Path | str = LABELED_EVENTS) -> pd.DataFrame:
    """The hand-labeled sample with its text joined from the shared datasets.

    Columns ``text, dataset, row_key, event_type, split``; ``split`` = dev | test | None (both).
    Raises FileNotFoundError naming ``$ALTSIGNAL_DATASETS`` when the datasets are not there.
    """
    labels = read_labels(path)
    if split is not None:
        if split not in ("dev", "test"):
            raise ValueError(f"split must be 'dev', 'test' or None, got {split!r}")
        labels = labels[labels["split"] == split]
    root = datasets_dir()
    files = {"dated_news": root / "dated_news" / "analyst_ratings_processed_partial_to2018.parquet",
             "dated_social": root / "dated_social" / "stocknet_tweets.parquet"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the labeled events join their text from the shared datasets, but {', '.join(missing)} "
            f"is missing (datasets folder: {root}); set ALTSIGNAL_DATASETS to the folder that holds "
            "dated_news/ and dated_social/")
    news = pd.read_parquet(files["dated_news"], columns=["source_row", "headline"])
    news = pd.DataFrame({"dataset": "dated_news", "row_key": news["source_row"].astype(str), "text": news["headline"]})
    soc = pd.read_parquet(files["dated_social"], columns=["tweet_id", "text"]).drop_duplicates("tweet_id")
    soc = pd.DataFrame({"dataset": "dated_social", "row_key": soc["tweet_id"].astype(str), "text": soc["text"]})
    texts = pd.concat([news, soc], ignore_index=True).drop_duplicates(["dataset", "row_key"])
    out = labels.merge(texts, on=["dataset", "row_key"], how="left", validate="one_to_one")
    lost = out["text"].isna()
    if lost.any():
        raise ValueError(f"{int(lost.sum())} labeled rows not found in the datasets, e.g. "
                         f"{out.loc[lost, ['dataset', 'row_key']].head(3).to_dict('records')}")
    return out[["text", "dataset", "row_key", "event_type", "split"]].reset_index(drop=True)


# ---------------------------------------------------------------- evaluation

PREDICTORS = ("majority", "rules", "prototypes", "rules+prototypes")


def predict_all(frame: pd.DataFrame, typer: EventTyper | None = None, majority: str = "macro_market",
                embeddings=None) -> dict[str, list[str]]:
    """Predictions of each predictor in :data:`PREDICTORS` for ``frame['text']`` (embedding once).

    ``majority``: the class the majority baseline always predicts (the dev split's most frequent).
    """
    typer = typer or EventTyper()
    texts = frame["text"].tolist()
    emb = typer.encode(texts) if embeddings is None else embeddings
    proto_only = EventTyper(typer.model, typer.min_similarity, typer.prototypes, use_rules=False)
    proto_only._st_ = typer._st()
    rules_only = EventTyper(typer.model, typer.min_similarity, typer.prototypes, use_prototypes=False)
    return {
        "majority": [majority] * len(texts),
        "rules": rules_only.predict(texts),
        "prototypes": proto_only.predict(texts, embeddings=emb),
        "rules+prototypes": typer.predict(texts, embeddings=emb),
    }


def evaluate_events(frame: pd.DataFrame, typer: EventTyper | None = None, majority: str = "macro_market",
                    predictions: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Per-type precision/recall/F1/support of each predictor on a labeled frame (text, event_type).

    Rows: predictor x (each event type, then ``macro avg``, ``weighted avg``, ``accuracy``); the
    accuracy row holds accuracy in every metric column.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    preds = predictions if predictions is not None else predict_all(frame, typer, majority)
    y = frame["event_type"].tolist()
    rows = []
    for name, p in preds.items():
        pr, rc, f1, sup = precision_recall_fscore_support(y, p, labels=list(EVENT_TYPES), zero_division=0)
        for i, t in enumerate(EVENT_TYPES):
            rows.append((name, t, pr[i], rc[i], f1[i], int(sup[i])))
        for avg in ("macro", "weighted"):
            present = [t for t in EVENT_TYPES if t in set(y)]
            a = precision_recall_fscore_support(y, p, labels=present, average=avg, zero_division=0)
            rows.append((name, f"{avg} avg", a[0], a[1], a[2], len(y)))
        acc = accuracy_score(y, p)
        rows.append((name, "accuracy", acc, acc, acc, len(y)))
    return pd.DataFrame(rows, columns=["predictor", "event_type", "precision", "recall", "f1", "support"])


def events_eval_report(split: str, out: Path | str, min_similarity: float = DEFAULT_MIN_SIMILARITY,
                       model: str = PACKAGED_MINILM) -> dict:
    """Evaluate on one split of the labeled sample; write ``events_eval.md`` and ``events_eval.json`` under ``out``."""
    frame = load_labeled_events(split)
    dev_labels = read_labels()
    majority = dev_labels.loc[dev_labels["split"] == "dev", "event_type"].value_counts().idxmax()
    typer = EventTyper(model=model, min_similarity=min_similarity)
    emb = typer.encode(frame["text"].tolist())
    preds = predict_all(frame, typer, majority, emb)
    table = evaluate_events(frame, predictions=preds)
    by_dataset = {}
    for ds, part in frame.groupby("dataset"):
        sub = evaluate_events(part, predictions={k: [v[i] for i in part.index] for k, v in preds.items()})
        by_dataset[ds] = sub[sub["event_type"].isin(["macro avg", "accuracy"])].to_dict("records")
    how = typer.predict_with_source(frame["text"].tolist(), embeddings=emb)["how"].value_counts().to_dict()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"split": split, "n": len(frame), "min_similarity": min_similarity, "model": model,
               "majority_class": majority, "how": how,
               "counts": frame["event_type"].value_counts().reindex(EVENT_TYPES, fill_value=0).to_dict(),
               "macro_f1": {p: float(table[(table.predictor == p) & (table.event_type == "macro avg")]["f1"].iloc[0]) for p in preds},
               "accuracy": {p: float(table[(table.predictor == p) & (table.event_type == "accuracy")]["f1"].iloc[0]) for p in preds}}
    (out / "events_eval.json").write_text(json.dumps(
        {"summary": summary, "table": table.to_dict("records"), "by_dataset": by_dataset}, indent=2, default=float))
    wide = table.pivot(index="event_type", columns="predictor", values=["precision", "recall", "f1"])
    order = list(EVENT_TYPES) + ["macro avg", "weighted avg", "accuracy"]
    support = table[table.predictor == "rules"].set_index("event_type")["support"]
    lines = [f"# Event typing on the `{split}` split ({len(frame)} texts)", "",
             f"Encoder `{model}`, min_similarity {min_similarity}; majority baseline predicts `{majority}` "
             f"(dev's most frequent class). Rules+prototypes decided by: {how}.", "",
             "| event type | support | " + " | ".join(f"{p} P / R / F1" for p in PREDICTORS) + " |",
             "|---|---:|" + "---|" * len(PREDICTORS)]
    for t in order:
        cells = [" / ".join(f"{wide.loc[t, (m, p)]:.2f}" for m in ("precision", "recall", "f1")) for p in PREDICTORS]
        lines.append(f"| {t} | {int(support[t])} | " + " | ".join(cells) + " |")
    lines += ["", "Macro F1 and accuracy by dataset:", "", "| dataset | predictor | macro F1 | accuracy |", "|---|---|---:|---:|"]
    for ds, recs in by_dataset.items():
        for p in PREDICTORS:
            f = next(r["f1"] for r in recs if r["predictor"] == p and r["event_type"] == "macro avg")
            a = next(r["f1"] for r in recs if r["predictor"] == p and r["event_type"] == "accuracy")
            lines.append(f"| {ds} | {p} | {f:.3f} | {a:.3f} |")
    (out / "events_eval.md").write_text("\n".join(lines) + "\n")
    return summary
