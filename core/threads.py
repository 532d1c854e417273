"""Thread settings, in one place: every command and job that sets torch's thread count comes here.

``torch.set_num_threads`` is process-wide, so it is set only where a caller asked for a number
(a config's ``threads``, a bench's ``--threads``); ``None`` or 0 leaves torch's own default.
"""
from __future__ import annotations


def set_threads(threads: int | None) -> None:
    if not threads:
        return
    import torch

    torch.set_num_threads(int(threads))
