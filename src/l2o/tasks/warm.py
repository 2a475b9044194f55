"""Problems started deep into a run: meta-train a rule on the states a long optimisation reaches, without
unrolling the rule through all the steps before them.

``WarmStartedTask(task, rule, steps)`` is ``task`` after ``steps`` updates of a hand-designed ``rule`` (e.g. Adam
at lr 0.01): its θ_0 is where that rule got to, and its step t is the wrapped task's step ``steps + t`` (the
minibatches go on where the warm-up stopped). The learned rule starts there with a fresh state (its moments and
LSTM state from zero). The warm-up runs once, without gradients, when the task is made.

Meta-training uses it through ``TrainConfig.warm_start = "NAME:LR:MAX"``: each episode's problems are first
optimised by that baseline for K steps, K drawn uniformly from 0 … MAX by the episode's seed, so the episodes
cover the early and the late regime of runs up to MAX steps long while each meta-gradient sees only its
truncation. The learned rule then starts with a fresh state where the baseline stopped, which is not where its
own run would be: with Adam's, a fresh state's first steps are about lr per coordinate whatever the gradient, a
kick that a converged problem pays for (docs/general.md). ``"self:MAX"`` avoids that: the rule being trained
runs the first K steps itself (rounded down to whole truncations, without gradients) and keeps its state, so
meta-training sees a random window of its own run of up to MAX + horizon steps (``l2o.meta.train``; truncated
BPTT only). A problem's warm-up depends on that problem alone (the baselines treat the problems of a batch
independently), so a part of a batch (several processes) is warmed up after it is taken, as it would be in the
whole.
"""

from __future__ import annotations

import torch
from torch import Tensor

from l2o.tasks.base import Params, Task, narrow

SELF = "self"  # warm_start "self:MAX": the rule being trained warms the problems up itself (l2o.meta.train)


def parse(spec: str) -> tuple[str, float, int]:
    """``"NAME:LR:MAX"`` → (baseline name, learning rate, most warm-up steps), ``"self:MAX"`` → ("self", 0.0, most
    steps); a clear error otherwise."""
    from l2o.rules.baselines import BASELINES, from_spec

    head, _, most = spec.rpartition(":")
    baseline = None if head == SELF else from_spec(head)
    try:
        steps = int(most)
    except ValueError:
        steps = -1
    if (head != SELF and baseline is None) or steps < 0:
        raise ValueError(f"warm_start must be NAME:LR:MAX (NAME one of {', '.join(BASELINES)}, LR > 0, MAX >= 0 "
                         f"warm-up steps), e.g. adam:0.01:5000, or self:MAX; got {spec!r}")
    return (SELF, 0.0, steps) if baseline is None else (head.partition(":")[0], baseline.lr, steps)


def warm_up_steps(spec: str, seed: int) -> int:
    """The episode's K: uniform over 0 … MAX, a function of the problems' seed."""
    most = parse(spec)[2]
    gen = torch.Generator().manual_seed(seed * 7919 + 17)
    return int(torch.randint(0, most + 1, (1,), generator=gen))


class WarmStartedTask:
    """``task`` after ``steps`` updates of ``rule``."""

    def __init__(self, task: Task, rule, steps: int, *, _params: Params | None = None):
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.task, self.rule, self.steps = task, rule, steps
        self.num_problems = task.num_problems
        if _params is None:
            from l2o.meta.unroll import unroll

            with torch.no_grad():
                _params = unroll(rule, task, steps).params if steps else task.init_params()
            _params = {k: v.detach() for k, v in _params.items()}
        self._params = _params

    def to(self, device: str | torch.device) -> "WarmStartedTask":
        return WarmStartedTask(self.task.to(device), self.rule, self.steps,
                               _params={k: v.to(device) for k, v in self._params.items()})

    def init_params(self) -> Params:
        return self._params

    def loss(self, params: Params, step: int) -> Tensor:
        return self.task.loss(params, self.steps + step)

    def narrow(self, start: int, length: int) -> "WarmStartedTask":
        return WarmStartedTask(narrow(self.task, start, length), self.rule, self.steps,
                               _params={k: v[start:start + length] for k, v in self._params.items()})
