"""Token attributions for one prediction: integrated gradients on the input embeddings (captum).

Decisions: the IG baseline replaces every non-special token by ``[PAD]`` (keeping ``[CLS]``,
``[SEP]`` and positions), the target is the predicted class unless one is named, and word
pieces are summed back into whole words so the table reads as the sentence does. Attributions
are on the uncalibrated logit; a temperature rescales them all by one factor.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import UsageError


@dataclass
class Explanation:
    text: str
    label: str  # the class explained
    proba: dict[str, float]  # calibrated probabilities of every class
    words: list[str]
    attributions: list[float]  # per word, summed over its pieces and embedding dims
    convergence_delta: float  # IG completeness error (small = enough steps)


def _merge_pieces(tokens: list[str], scores: np.ndarray, special: set[str]) -> tuple[list[str], list[float]]:
    words: list[str] = []
    attr: list[float] = []
    for tok, s in zip(tokens, scores):
        if tok in special:
            continue
        if tok.startswith("##") and words:
            words[-1] += tok[2:]
            attr[-1] += float(s)
        else:
            words.append(tok)
            attr.append(float(s))
    return words, attr


def explain(sm, text: str, target: str | None = None, n_steps: int = 50) -> Explanation:
    """Integrated-gradients attributions of ``text``'s prediction by the loaded model ``sm``."""
    from captum.attr import LayerIntegratedGradients

    if not isinstance(text, str) or not text.strip():
        raise UsageError("explain needs a non-empty text")
    labels = list(sm.meta.labels)
    if target is not None and target not in labels:
        raise UsageError(f"unknown target label {target!r}; expected one of {labels}")
    tok = sm.tokenizer
    enc = tok(text, truncation=True, max_length=sm.meta.max_length, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    model = sm.model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    proba = torch.softmax(logits / sm.meta.temperature, dim=-1)[0]
    t_idx = labels.index(target) if target else int(proba.argmax())

    special_ids = set(tok.all_special_ids)
    base_ids = ids.clone()
    keep = torch.tensor([[i in special_ids for i in ids[0].tolist()]])
    base_ids[~keep] = tok.pad_token_id

    def forward(input_ids, attention_mask):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attr, delta = lig.attribute(
        ids, baselines=base_ids, additional_forward_args=(mask,), target=t_idx,
        n_steps=n_steps, return_convergence_delta=True,
    )
    scores = attr.sum(dim=-1)[0].detach().numpy()
    words, word_attr = _merge_pieces(tok.convert_ids_to_tokens(ids[0]), scores, set(tok.all_special_tokens))
    return Explanation(
        text=text,
        label=labels[t_idx],
        proba={l: float(p) for l, p in zip(labels, proba)},
        words=words,
        attributions=word_attr,
        convergence_delta=float(delta.abs().max()),
    )


def attribution_png(ex: Explanation, path: str | Path) -> Path:
    """Horizontal bar chart of word attributions (green pushes toward the explained class)."""
    from core.plots import subplots

    path = Path(path)
    n = len(ex.words)
    fig, ax = subplots(figsize=(6, max(2.0, 0.28 * n + 1)))
    colors = ["#2a9d55" if a >= 0 else "#c0392b" for a in ex.attributions]
    ax.barh(range(n), ex.attributions, color=colors)
    ax.set_yticks(range(n), ex.words, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"integrated-gradients attribution to '{ex.label}'")
    ax.set_title(f"{ex.label} (p = {ex.proba[ex.label]:.2f})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path


def format_table(ex: Explanation):
    """A rich Table of the words and their attributions."""
    from rich.table import Table

    probs = ", ".join(f"{l} {p:.3f}" for l, p in ex.proba.items())
    table = Table(title=f"explaining '{ex.label}'  ({probs}; IG delta {ex.convergence_delta:.3g})")
    table.add_column("#", justify="right")
    table.add_column("word")
    table.add_column("attribution", justify="right")
    scale = max((abs(a) for a in ex.attributions), default=1.0) or 1.0
    for i, (w, a) in enumerate(zip(ex.words, ex.attributions)):
        bar = ("+" if a >= 0 else "-") * int(round(10 * abs(a) / scale))
        style = "green" if a >= 0 else "red"
        table.add_row(str(i), w, f"[{style}]{a:+.4f} {bar}[/{style}]")
    return table

