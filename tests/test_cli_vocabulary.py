"""One CLI vocabulary (docs/configuration.md, "CLI vocabulary"): command groups, ``--out``, one set of column options.

Every spelling used before still works until 0.2: it is hidden from ``--help``, prints one
``deprecated:`` line naming the new spelling, and reaches the command with exactly the arguments
the new spelling gives. The commands' work is replaced by a recorder that stops the command (exit
2) as soon as it is called, so each case costs a parse, not a training run.
"""
from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from altsignal.cli import app
from core.errors import UsageError


class _Stop(UsageError):
    """Raised by the recorder: the command got as far as the work it was asked to do."""


def _plain(value):
    """``value`` if it compares by content, else its type's name (a fresh Rejects, a generator...)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value if type(value).__eq__ is not object.__eq__ else type(value).__name__


# (old spelling, new spelling, the function the command hands its work to, stand-ins for what runs before it)
EXPLAIN_STUBS = {"nlp.models.artifact.load_classifier": lambda path: None,
                 "nlp.models.explain.explain": lambda *a, **k: None,
                 "nlp.models.explain.format_table": lambda ex: ""}
LOAD = ["data", "load", "{csv}", "--source", "news", "--rejects", "{tmp}/r.jsonl", "-o", "{tmp}/d.parquet",
        "--id-col", "id", "--text-col", "headline", "--time-col", "at"]


def _load(new_flag: str, old_flag: str, value: str) -> tuple[list[str], list[str]]:
    """``data load`` with one column option in its old spelling; the others in the new one."""
    new = [a for i, a in enumerate(LOAD) if new_flag not in (a, LOAD[i - 1])] + [new_flag, value]
    return [*new[:-2], old_flag, value], new


CASES = {
    "finetune": (["finetune", "-o", "{tmp}/m", "--epochs", "1"], ["models", "finetune", "-o", "{tmp}/m", "--epochs", "1"],
                 "nlp.models.finetune.finetune", {}),
    "eval": (["eval", "sample:labeled", "-o", "{tmp}/e"], ["models", "eval", "sample:labeled", "-o", "{tmp}/e"],
             "nlp.evaluate.evaluate", {}),
    "explain": (["explain", "Profit rose.", "-m", "{tmp}/m"], ["models", "explain", "Profit rose.", "-m", "{tmp}/m"],
                "nlp.models.artifact.load_classifier", {}),
    "fetch-mpnet": (["fetch-mpnet", "-o", "{tmp}/mp"], ["models", "fetch-mpnet", "-o", "{tmp}/mp"],
                    "nlp.models.mpnet.fetch_mpnet", {}),
    "explain --png": (["models", "explain", "Up.", "--png", "{tmp}/x.png"], ["models", "explain", "Up.", "--out", "{tmp}/x.png"],
                      "nlp.models.explain.attribution_png", EXPLAIN_STUBS),
    "data splits --out-dir": (["data", "splits", "--out-dir", "{tmp}/s"], ["data", "splits", "--out", "{tmp}/s"],
                              "nlp.splits.write_manifest", {}),
    **{f"data load {old}": (*_load(new, old, value), "nlp.readers.documents.iter_documents", {})
       for old, new, value in (("--doc-id", "--id-col", "id"), ("--text", "--text-col", "headline"),
                               ("--published-at", "--time-col", "at"), ("--entities", "--entities-col", "tickers"),
                               ("--title", "--title-col", "headline"), ("--publisher", "--publisher-col", "source"),
                               ("--url", "--url-col", "link"))},
}


def _invoke(args: list[str], **fill):
    return CliRunner().invoke(app, [a.format(**fill) for a in args], env={"COLUMNS": "250"})


@pytest.mark.parametrize("name", CASES)
def test_old_spelling_is_deprecated_and_does_the_same(name, tmp_path, monkeypatch):
    old, new, target, stubs = CASES[name]
    for where, stub in stubs.items():
        monkeypatch.setattr(where, stub)
    calls = []

    def record(*args, **kwargs):
        calls.append(_plain([args, kwargs]))
        raise _Stop("stop")

    monkeypatch.setattr(target, record)
    csv = tmp_path / "in.csv"
    csv.write_text("id,headline,at,tickers,source,link\n1,Up.,2020-01-02T10:00:00Z,AAPL,wire,http://x\n")
    fill = {"tmp": tmp_path, "csv": csv}
    got_new, got_old = _invoke(new, **fill), _invoke(old, **fill)
    assert got_new.exit_code == got_old.exit_code == 2, (got_new.output, got_old.output)
    assert "error: stop" in got_new.output and "deprecated" not in got_new.output
    deprecation = [line for line in got_old.output.splitlines() if line.startswith("deprecated:")]
    assert len(deprecation) == 1 and "0.2" in deprecation[0], got_old.output
    assert len(calls) == 2 and calls[0] == calls[1]


def _help(*command: str) -> str:
    res = _invoke([*command, "--help"])
    assert res.exit_code == 0, res.output
    return res.output


def _shows(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def _commands(*group: str) -> set[str]:
    """The commands a group's --help lists (rich draws one per row: ``│ name  description``)."""
    return set(re.findall(r"^│ (\w\S*) ", _help(*group), flags=re.M))


def test_groups_show_the_new_names_and_hide_the_old():
    assert _commands() == {"data", "models", "score", "features", "timing", "research", "run", "replay", "rollback"}
    assert _commands("models") == {"finetune", "eval", "explain", "fetch-mpnet", "train-sestm"}


@pytest.mark.parametrize("command, new, old", [
    (("data", "splits"), "--out", "--out-dir"),
    (("models", "explain"), "--out", "--png"),
    *[(("data", "load"), new, old) for new, old in (
        ("--id-col", "--doc-id"), ("--text-col", "--text"), ("--time-col", "--published-at"),
        ("--entities-col", "--entities"), ("--title-col", "--title"), ("--publisher-col", "--publisher"),
        ("--url-col", "--url"))],
])
def test_options_show_the_new_name_and_hide_the_old(command, new, old):
    text = _help(*command)
    assert _shows(text, new) and not _shows(text, old)


@pytest.mark.parametrize("command", [
    ("data", "splits"), ("data", "load"), ("score",), ("models", "finetune"), ("models", "eval"),
    ("models", "explain"), ("models", "fetch-mpnet"), ("models", "train-sestm"), ("features", "export"), ("research", "sample-calls"),
    ("research", "lexicon"), ("research", "tearsheet"), ("research", "market"), ("research", "events"),
    ("research", "stocknet"), ("research", "books"),
])
def test_every_command_that_writes_takes_out(command):
    text = _help(*command)
    assert _shows(text, "--out") and _shows(text, "-o")


def test_score_and_data_load_share_the_column_options():
    score, load = _help("score"), _help("data", "load")
    for flag in ("--id-col", "--text-col", "--time-col", "--entities-col", "--entity-sep", "--title-col",
                 "--timezone", "--time-format", "--encoding", "--earliest", "--latest", "--source"):
        assert _shows(score, flag) and _shows(load, flag), flag


def test_eval_numeric_has_score_numeric_help():
    from altsignal.cli_options import NUMERIC_HELP

    flat = lambda text: " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())  # noqa: E731 - rich wraps the help
    assert flat(NUMERIC_HELP) in flat(_help("models", "eval")) and flat(NUMERIC_HELP) in flat(_help("score"))


def test_model_cards_print_recorded_commands_in_todays_spelling():
    from nlp.models.card import _current

    assert _current("altsignal finetune -o m --teacher t") == "altsignal models finetune -o m --teacher t"
    assert _current("altsignal eval fpb:50agree:test -o e") == "altsignal models eval fpb:50agree:test -o e"
    assert _current("altsignal models eval x") == "altsignal models eval x" and _current(None) is None
