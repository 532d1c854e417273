"""Figures without pyplot.

altsignal draws every figure on a :class:`matplotlib.figure.Figure` of its own and saves it to a
file. No backend is chosen and no pyplot state is kept, so importing or running altsignal never
changes the matplotlib backend of a notebook or an application that uses it, and a figure is
freed like any object once dropped (no ``plt.close``).
"""
from __future__ import annotations

from matplotlib.figure import Figure

_FIGURE_KEYS = ("figsize", "dpi", "layout")


def subplots(*args, **kwargs):
    """``plt.subplots`` on a new, unmanaged figure: ``(figure, axes)``."""
    fig = Figure(**{k: kwargs.pop(k) for k in _FIGURE_KEYS if k in kwargs})
    return fig, fig.subplots(*args, **kwargs)
