"""Meta-gradient estimators: how a truncation of an episode turns into a gradient for the rule's weights φ.

An estimator holds whatever it carries from one truncation to the next (for truncated BPTT: θ and the
rule's state); ``estimate`` fills the ``.grad`` of the rule's parameters and returns the truncation's
meta-loss, detached, for the loop's bookkeeping. The training loop (``l2o.meta.train``) owns everything
else — the schedule, clipping, the decision to skip a non-finite step, the meta-optimizer, EMA, validation —
so another estimator (PES, evolution strategies) is a new class here, not a new branch there.

    carry = estimator.start(rule, task)
    for k in range(truncations):
        loss, carry = estimator.estimate(rule, task, carry, k, objective)

``objective(losses, k)``: the meta-loss of truncation k from its recorded losses (``l2o.meta.objective``).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn

from l2o.meta.unroll import unroll
from l2o.rules.base import detach
from l2o.tasks.base import Task

Objective = Callable[[Tensor, int], Tensor]


class GradientEstimator(Protocol):
    name: str

    def start(self, rule: nn.Module, task: Task) -> Any:
        """What the first truncation of an episode on ``task`` starts from."""

    def estimate(self, rule: nn.Module, task: Task, carry: Any, truncation: int,
                 objective: Objective) -> tuple[Tensor, Any]:
        """Fill the rule's parameters' ``.grad`` with the meta-gradient estimate of ``truncation`` (leave them
        empty if the meta-loss is not finite); return the meta-loss (detached) and the next carry."""


class TruncatedBPTT:
    """Truncated backpropagation through time (Andrychowicz et al. 2016): unroll ``unroll`` steps
    differentiably, back-propagate the meta-loss through them, carry θ and the state on, detached."""

    name = "tbptt"

    def __init__(self, unroll: int, second_order: bool = False):
        self.unroll, self.second_order = unroll, second_order

    def start(self, rule: nn.Module, task: Task) -> tuple[dict, Any]:
        params = task.init_params()
        return params, rule.init(params)

    def estimate(self, rule, task, carry, truncation, objective):
        params, state = carry
        out = unroll(rule, task, self.unroll, params=params, state=state, start=truncation * self.unroll,
                     meta=True, second_order=self.second_order)
        loss = objective(out.losses, truncation)
        if bool(torch.isfinite(loss)):
            loss.backward()
        return loss.detach(), (detach(out.params), detach(out.state))
