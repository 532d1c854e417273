"""``altsignal run --config <toml>``: the whole pipeline (see timing.pipeline)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from timing.pipeline import DEFAULT_RUN_CONFIG, STAGES

    @app.command("run")
    def run(
        config: Path = typer.Option(DEFAULT_RUN_CONFIG, "--config", "-c", exists=True, dir_okay=False,
                                    help="Run config TOML (default: the embedded offline default)."),
        output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Override the config's output_dir."),
        force: list[str] = typer.Option([], "--force", help=f"Recompute a stage even if cached: {', '.join(STAGES)}."),
    ) -> None:
        """Score documents, build point-in-time features, run the timing backtest, write the report."""
        from timing.pipeline import load_run_config
        from timing.pipeline import run as run_pipeline

        cfg = load_run_config(config)
        if output_dir is not None:
            cfg = cfg.model_copy(update={"output_dir": output_dir})
        report = run_pipeline(cfg, force=tuple(force))
        typer.echo(f"report: {report}")
