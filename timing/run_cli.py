"""``altsignal run --config <toml>``: the whole pipeline (see timing.pipeline)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    # timing.pipeline (pandas, readers) is imported inside the command: `altsignal --help` and
    # every other command register this one without paying for it.
    @app.command("run")
    def run(
        config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                           show_default="the embedded offline default, timing/configs/run_default.toml",
                                           help="Run config TOML."),
        output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Override the config's output_dir."),
        force: list[str] = typer.Option([], "--force", help="Recompute a stage even if cached (an unknown name lists the stages)."),
    ) -> None:
        """Score documents, build point-in-time features, run the timing backtest, write the report."""
        from timing.pipeline import DEFAULT_RUN_CONFIG, load_run_config
        from timing.pipeline import run as run_pipeline

        cfg = load_run_config(config or DEFAULT_RUN_CONFIG)
        if output_dir is not None:
            cfg = cfg.model_copy(update={"output_dir": output_dir})
        report = run_pipeline(cfg, force=tuple(force))
        typer.echo(f"report: {report}")
