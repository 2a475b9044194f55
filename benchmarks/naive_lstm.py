"""The naive eager reference for the learned step: the paper's preprocessing in a few lines, two
nn.LSTMCell and an nn.Linear, as a straightforward implementation writes it. It shares no code with
``l2o.LSTMRule``: the speed benchmarks measure the library against it, and the tests check the library's
PyTorch and fused implementations against it."""

from __future__ import annotations

import math

import torch
from torch import nn


def preprocess(grad: torch.Tensor, p: float) -> torch.Tensor:
    """Andrychowicz et al. (2016), Appendix A: (log|∇|/p, sgn ∇) if |∇| ≥ e^−p, else (−1, e^p ∇)."""
    small = grad.abs() < math.exp(-p)
    magnitude = torch.where(small, torch.full_like(grad, -1.0), torch.log(grad.abs()) / p)
    sign = torch.where(small, grad * math.exp(p), torch.sign(grad))
    return torch.stack([magnitude, sign], dim=1)


class NaiveLSTMOptimizer(nn.Module):
    def __init__(self, hidden_size: int = 20, p: float = 10.0, output_scale: float = 0.1, preprocess: bool = True,
                 input_scale: float = 1.0):
        super().__init__()
        self.p, self.output_scale, self.preprocess, self.input_scale = p, output_scale, preprocess, input_scale
        self.cell1 = nn.LSTMCell(2 if preprocess else 1, hidden_size)
        self.cell2 = nn.LSTMCell(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, 1)

    @classmethod
    def like(cls, rule) -> "NaiveLSTMOptimizer":
        """A reference with the settings and weights of an ``l2o.LSTMRule`` of 2 layers."""
        cfg = rule.cfg
        return cls(cfg.hidden_size, cfg.p, cfg.output_scale, cfg.preprocess, cfg.input_scale).load_from(rule)

    def load_from(self, rule) -> "NaiveLSTMOptimizer":
        """Copy the weights of an ``l2o.LSTMRule`` (2 layers)."""
        self.cell1.load_state_dict(rule.cells[0].state_dict())
        self.cell2.load_state_dict(rule.cells[1].state_dict())
        self.out.load_state_dict(rule.out.state_dict())
        return self

    def forward(self, grad, state):
        (h1, c1), (h2, c2) = state
        x = preprocess(grad, self.p) if self.preprocess else (grad * self.input_scale)[:, None]
        h1, c1 = self.cell1(x, (h1, c1))
        h2, c2 = self.cell2(h1, (h2, c2))
        return self.out(h2).squeeze(-1) * self.output_scale, ((h1, c1), (h2, c2))
