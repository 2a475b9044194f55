"""The naive eager reference for the learned step: two nn.LSTMCell and an nn.Linear, as a straightforward
implementation of the paper writes it. Kept here as the baseline the library's fused step is measured
against (it is also what ``LSTMRule`` computes with ``use_kernel = False``)."""

from __future__ import annotations

import torch
from torch import nn

from l2o.rules.preprocess import log_sign


class NaiveLSTMOptimizer(nn.Module):
    def __init__(self, hidden_size: int = 20, p: float = 10.0, output_scale: float = 0.1):
        super().__init__()
        self.p, self.output_scale = p, output_scale
        self.cell1 = nn.LSTMCell(2, hidden_size)
        self.cell2 = nn.LSTMCell(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, 1)

    def load_from(self, rule) -> "NaiveLSTMOptimizer":
        """Copy the weights of an ``l2o.LSTMRule`` (2 layers, preprocessing on)."""
        self.cell1.load_state_dict(rule.cells[0].state_dict())
        self.cell2.load_state_dict(rule.cells[1].state_dict())
        self.out.load_state_dict(rule.out.state_dict())
        return self

    def forward(self, grad, state):
        (h1, c1), (h2, c2) = state
        h1, c1 = self.cell1(log_sign(grad, self.p), (h1, c1))
        h2, c2 = self.cell2(h1, (h2, c2))
        return self.out(h2).squeeze(-1) * self.output_scale, ((h1, c1), (h2, c2))
