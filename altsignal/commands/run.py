"""``altsignal run --config <toml> [--set key=value ...]``: the whole pipeline (see altsignal.orchestrator);
``--as-of`` and ``altsignal replay``: daily operation (see altsignal.daily)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from altsignal.commands.timing import AllowFutureOpt, ExplainOpt, SetOpt, explain_override
from altsignal.renames import renamed_option
from core.errors import UsageError


def register(app: typer.Typer) -> None:
    # altsignal.orchestrator (pandas, readers) is imported inside the command: `altsignal --help` and
    # every other command register this one without paying for it.
    @app.command("run")
    def run(
        config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                           show_default="the embedded offline default, timing/configs/run_default.toml",
                                           help="Run config TOML."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (overrides the config's output_dir)."),
        output_dir: Path | None = typer.Option(None, "--output-dir", hidden=True),
        overrides: list[str] = SetOpt,
        force: list[str] = typer.Option([], "--force", help="Recompute a stage even if cached (an unknown name lists the stages)."),
        as_of: str | None = typer.Option(None, "--as-of", help="Daily operation instead of the backtest: add the documents "
                                         "known since the last run, build, allocate, check health (ISO instant with a "
                                         "zone, or 'now'). Exit 4 on a health breach."),
        allow_future: bool = AllowFutureOpt,
        explain: str | None = ExplainOpt,
    ) -> None:
        """Score documents, build point-in-time features, run the timing backtest, write the report;
        with --as-of, one day of operation on <out>/daily (altsignal.daily)."""
        cfg = _config(config, out, output_dir, [*overrides, *explain_override(explain, "timing.")])
        if as_of is not None:
            if force:
                raise UsageError("--force applies to the backtest run, not to --as-of")
            from altsignal.daily import run_day
            from core.instants import parse_instant

            _exit_on_breach(run_day(cfg, parse_instant(as_of, "--as-of", now_ok=True), allow_future=allow_future))
            return
        from altsignal.orchestrator import run as run_pipeline

        report = run_pipeline(cfg, force=tuple(force))
        typer.echo(f"report: {report}")

    @app.command("rollback")
    def rollback(
        to: str = typer.Option(..., "--to", help="The --as-of of an earlier completed daily run (ISO instant with "
                               "its zone, as `altsignal run --as-of` took it)."),
        config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                           show_default="timing/configs/run_default.toml", help="Run config TOML."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (overrides the config's output_dir)."),
        overrides: list[str] = SetOpt,
    ) -> None:
        """Roll the daily store in <out>/daily back to the state after an earlier run: later builds,
        documents, scores, allocations, health rows and day batches are removed (altsignal.daily.rollback)."""
        from altsignal.daily import rollback as roll_back
        from core.instants import parse_instant

        cfg = _config(config, out, None, overrides)
        done = roll_back(cfg, parse_instant(to, "--to"))
        typer.echo(f"rolled {cfg.output_dir}/daily back to {done['as_of']}: removed {done['runs_removed']} run(s), "
                   f"{done['batches_removed']} batch folder(s), store rows {done['store']}")

    @app.command("replay")
    def replay(
        start: datetime = typer.Option(..., "--start", formats=["%Y-%m-%d"], help="First session date to replay."),
        end: datetime = typer.Option(..., "--end", formats=["%Y-%m-%d"], help="Last session date to replay."),
        config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                           show_default="timing/configs/run_default.toml", help="Run config TOML."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (overrides the config's output_dir)."),
        overrides: list[str] = SetOpt,
    ) -> None:
        """Simulate daily operation: one `altsignal run --as-of` per session between --start and --end,
        each at the session's cutoff, documents released by their arrival time."""
        from altsignal.daily import replay as run_replay

        cfg = _config(config, out, None, overrides)
        records = run_replay(cfg, start, end)
        breaches = [r["as_of"] for r in records if r["health"] == "breach"]
        typer.echo(f"replayed {len(records)} sessions into {cfg.output_dir}/daily; health breaches on "
                   f"{len(breaches)}: {', '.join(breaches[:5])}{' ...' if len(breaches) > 5 else ''}")


def _config(config: Path | None, out: Path | None, output_dir: Path | None, overrides: list[str]):
    from altsignal.run_config import DEFAULT_RUN_CONFIG, load_run_config

    out = renamed_option(out, output_dir, "--out", "--output-dir")
    cfg = load_run_config(config or DEFAULT_RUN_CONFIG, overrides)
    return cfg if out is None else cfg.model_copy(update={"output_dir": out})


def _exit_on_breach(record: dict) -> None:
    from core.errors import EXIT_HEALTH

    docs = sum(v["documents"] for v in record["documents"].values())
    typer.echo(f"as of {record['as_of']}: {docs} new documents, {record['store']['rows_added']} rows added, "
               f"health {record['health']} ({record['health_report']})")
    for a in record["allocation"]:
        typer.echo(f"  {a['factor']:7s} weight {a['weight']:+.3f}  trade {a['trade']:+.3f}")
    if record["health"] == "breach":
        raise typer.Exit(EXIT_HEALTH)
