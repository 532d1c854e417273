"""Progress bars on a terminal, one summary log line per stage everywhere else.

A redrawn bar is for a person watching a terminal; written to a log file or a CI console it
becomes thousands of lines of carriage returns. :class:`Progress` is tqdm (same arguments)
that draws only when stderr is a terminal; otherwise it counts silently and logs one line when
it closes, e.g. ``scoring: 1,200 doc in 14.2 s (84.5 doc/s)``.
"""
from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger(__name__)


class _Discard:
    """A file that drops what tqdm draws (tqdm still counts and times)."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class Progress(tqdm):
    """``tqdm(...)``, drawn only on a terminal; ``enabled=False`` turns off the bar and the line."""

    def __init__(self, iterable=None, *, enabled: bool = True, **kwargs) -> None:
        self._summary = enabled and not sys.stderr.isatty()
        if self._summary:
            kwargs["file"] = _Discard()
            kwargs.pop("dynamic_ncols", None)  # needs a real terminal to measure
        super().__init__(iterable, disable=not enabled, **kwargs)

    def close(self) -> None:
        if self._summary and not self.disable:  # tqdm sets disable once closed: one line only
            d = self.format_dict
            n, secs, unit = d["n"], d["elapsed"], d["unit"]
            rate = "" if not (n and secs) else f" ({n / secs:,.1f} {unit}/s)" if n >= secs else f" ({secs / n:,.1f} s/{unit})"
            log.info("%s: %s %s in %.1f s%s", self.desc or "progress", f"{n:,}", unit, secs, rate)
        super().close()


# Libraries whose own progress bars, load reports and deprecation notices say nothing a user of
# altsignal can act on; ``--verbose`` lets them through again.
THIRD_PARTY_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub", "peft", "torch", "datasets")


def quiet_third_party(verbose: bool) -> None:
    """Silence third-party progress bars, INFO logs and Future/Deprecation warnings (unless ``verbose``).

    Called once by the CLI's root callback; importing altsignal as a library changes nothing,
    since a library must not reconfigure its host's logging. Environment variables are used for
    the bars so that nothing heavy is imported before a command needs it.
    """
    import os
    import warnings

    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # by category, not module: a warning is attributed to its caller's frame, often not the library's
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
