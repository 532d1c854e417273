"""``altsignal run --config <toml> [--set key=value ...]``: the whole pipeline (see timing.orchestrator)."""
from __future__ import annotations

from pathlib import Path

import typer

from nlp.renames import renamed_option
from timing.cli import SetOpt


def register(app: typer.Typer) -> None:
    # timing.orchestrator (pandas, readers) is imported inside the command: `altsignal --help` and
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
    ) -> None:
        """Score documents, build point-in-time features, run the timing backtest, write the report."""
        from timing.orchestrator import run as run_pipeline
        from timing.run_config import DEFAULT_RUN_CONFIG, load_run_config

        out = renamed_option(out, output_dir, "--out", "--output-dir")
        cfg = load_run_config(config or DEFAULT_RUN_CONFIG, overrides)
        if out is not None:
            cfg = cfg.model_copy(update={"output_dir": out})
        report = run_pipeline(cfg, force=tuple(force))
        typer.echo(f"report: {report}")
