"""The meta-objective: how a truncation's losses become the meta-loss, and how a validation run is scored.

    L(φ) = Σ_{t in truncation} w_t · mean_problems f(θ_t)          (Andrychowicz et al. 2016, eq. 3)

with f(θ_t) optionally divided by each training problem's objective scale (so that the meta-loss sees f
itself) and optionally on a log scale.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOSS_WEIGHTS = ("uniform", "last", "linear")
VAL_METRICS = ("final", "sum", "log_final", "log_tail")
TAIL = 0.25  # "log_tail": the last quarter of the steps


def loss_weights(cfg, truncation: int) -> Tensor:
    """w_t for the steps t = truncation·unroll + 1 … (truncation + 1)·unroll: "uniform" (the paper: all 1),
    "last" (only each truncation's last step) or "linear" (t / horizon)."""
    if cfg.loss_weights == "linear":
        return torch.arange(1, cfg.unroll + 1, dtype=torch.float32).add(truncation * cfg.unroll) / cfg.horizon
    w = torch.ones(cfg.unroll)
    if cfg.loss_weights == "last":
        w.zero_()[-1] = 1.0
    return w


def meta_loss(losses: Tensor, cfg, truncation: int, scale: Tensor | None = None) -> Tensor:
    """The meta-loss of one truncation from its recorded losses ``(unroll + 1, problems)`` (f(θ_start) first,
    which does not depend on this truncation's updates and is left out); ``scale``: the problems' objective
    scales, divided out."""
    losses = losses[1:] if scale is None else losses[1:] / scale
    losses = losses.clamp_min(1e-30).log() if cfg.log_loss else losses
    return (loss_weights(cfg, truncation).to(losses.device) * losses.mean(-1)).sum()


def score(losses: Tensor, metric: str) -> float:
    """Reduce per-step losses (steps + 1, problems) to one number; lower is better, NaN → inf."""
    if metric == "final":
        value = losses[-1].mean()
    elif metric == "sum":
        value = losses[1:].sum(0).mean()
    elif metric == "log_tail":  # as the long suite's headline: the mean over the last steps, not one step's loss
        tail = max(1, int(TAIL * (losses.shape[0] - 1)))
        value = losses[-tail:].mean(0).clamp_min(1e-30).log().mean()
    else:
        value = losses[-1].clamp_min(1e-30).log().mean()
    value = float(value)
    return value if math.isfinite(value) else math.inf
