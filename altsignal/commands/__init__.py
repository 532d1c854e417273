"""The subcommands of ``altsignal``, one module per group, each with a ``register(app)`` function
listed in pyproject's ``altsignal.commands`` entry points."""
