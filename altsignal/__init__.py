"""The application layer: everything that runs the pipeline rather than models it.

The CLI root and its subcommands (``altsignal.commands``), the run config that composes every
section (``altsignal.run_config``), the pipeline's stages and their cache (``altsignal.stages``,
``altsignal.stage_cache``), the backtest run (``altsignal.orchestrator``), daily operation
(``altsignal.daily``) and the fitted model's decisions (``altsignal.operate``). It sits above
``timing`` and may import every package; no package imports it.
"""
