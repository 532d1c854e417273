"""Temperature scaling (Guo et al. 2017): one scalar T so that softmax(logits / T) is calibrated.

Fitted on validation logits by minimising NLL with LBFGS over log T (keeps T > 0). A single
scalar never changes the argmax, so accuracy is untouched; only confidence moves. With every
model calibrated, ``p_pos - p_neg`` means the same across models and sources.
"""
from __future__ import annotations

import torch


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(logits / temperature)."""
    return float(torch.nn.functional.cross_entropy(logits.float() / temperature, labels.long()))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The temperature minimising validation NLL (1.0 when there is nothing to fit)."""
    logits = torch.as_tensor(logits, dtype=torch.float32).detach()
    labels = torch.as_tensor(labels).long()
    if len(labels) == 0:
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    # Guard against degenerate fits (e.g. perfectly separable tiny sets push T -> 0).
    return min(max(t, 0.05), 20.0)
