"""A rule's steps halved per parameter tensor each time that tensor's gradient spikes: ``SpikeCut(rule)``.

A hand-designed controller for long runs that needs no loss, no horizon and no step count. A rate that is too large
for a task late in a run often shows as spikes: a few hundred steps in which one problem's loss jumps by orders of
magnitude and comes back down. A spike shows in the gradient first. For each parameter tensor the controller keeps
two moving averages of its mean squared gradient, a fast one (decay ``fast``, about 10 steps) and a slow one (decay
``slow``, about 1,000 steps), both bias-corrected as Adam's second moment. When the fast one exceeds ``threshold``
times the slow one, after the first ``warmup`` steps and at most once per ``cooldown`` steps, that tensor's steps are
multiplied by ``factor`` from then on. A rule whose gradient never jumps is never cut, so a rate that suits a task
is kept: wrapped around Adam at lr 0.01 it never cuts on the MNIST ReLU or tanh MLPs (validation problems,
``docs/general/trials/spike_cut.txt``). Unlike gradient clipping, which limits one step, the cut is permanent: a
spike says the rate is too large for this stage of the run.

    rule = SpikeCut(LSTMRule(...))                 # or any rule, learned or hand-designed
    rule = SpikeCut({"name": "adam", "lr": 0.01})  # by settings, as read from a checkpoint

The controller's decisions are discrete and read detached gradients, so it passes no meta-gradient; a learned
rule inside it trains as it would alone. Its state is per tensor (one number per problem), so ``LearnedOptimizer``
keeps it per parameter like the wrapped rule's. ``docs/general/trials/spike_cut.py`` is the exploration that chose
its defaults on validation problems of the ``general`` mixture and of the conv net.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from l2o.rules.wrapper import Wrapper
from l2o.tasks.base import Params


class SpikeCutState(NamedTuple):
    inner: Any  # the wrapped rule's state
    count: dict  # name -> (B,) steps seen
    fast: dict  # name -> (B,) the fast moving average of the tensor's mean squared gradient (not bias-corrected)
    slow: dict  # name -> (B,) the slow one (not bias-corrected)
    since: dict  # name -> (B,) steps since the last cut (``cooldown`` at the start)
    log_rate: dict  # name -> (B,) the log of the factor on the wrapped rule's steps (0: as the rule makes them)


class SpikeCut(Wrapper):
    name = "spike_cut"
    State = SpikeCutState

    def __init__(self, rule, threshold: float = 10.0, factor: float = 0.5, warmup: int = 1000, cooldown: int = 500,
                 fast: float = 0.9, slow: float = 0.999, *, implementation: str = "auto"):
        if not threshold > 1:
            raise ValueError(f"threshold must be > 1, got {threshold}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        for label, value in (("warmup", warmup), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{label} must be an integer >= 0, got {value!r}")
        if not 0 <= fast < slow < 1:
            raise ValueError(f"the decays must satisfy 0 <= fast < slow < 1, got fast={fast}, slow={slow}")
        super().__init__(rule, implementation)
        self.threshold, self.factor, self.fast, self.slow = float(threshold), float(factor), float(fast), float(slow)
        self.warmup, self.cooldown = warmup, cooldown

    def init(self, params: Params) -> SpikeCutState:
        def per(value: float) -> dict:
            return self._per_problem(params, value)

        return SpikeCutState(self.rule.init(params), per(0.0), per(0.0), per(0.0), per(float(self.cooldown)),
                             per(0.0))

    def update(self, grads: Params, state: SpikeCutState, *, inplace: bool = False) -> tuple[Params, SpikeCutState]:
        updates, inner = self.rule.update(grads, state.inner, inplace=inplace)
        count, fast, slow, since, log_rate, out = {}, {}, {}, {}, {}, {}
        for k, g in grads.items():
            g2 = g.detach().reshape(g.shape[0], -1).float().pow(2).mean(1)
            count[k] = state.count[k] + 1
            fast[k] = self.fast * state.fast[k] + (1 - self.fast) * g2
            slow[k] = self.slow * state.slow[k] + (1 - self.slow) * g2
            f = fast[k] / (1 - self.fast ** count[k])
            s = slow[k] / (1 - self.slow ** count[k])
            cut = (count[k] > self.warmup) & (f > self.threshold * s) & (state.since[k] >= self.cooldown)
            since[k] = torch.where(cut, torch.zeros_like(f), state.since[k] + 1)
            log_rate[k] = state.log_rate[k] + cut.to(f.dtype) * math.log(self.factor)
            u = updates[k]
            out[k] = u * log_rate[k].exp().to(u.dtype).view(-1, *[1] * (u.dim() - 1))
        return out, self._fresh(inner, state, (count, fast, slow, since, log_rate), inplace)

    def rates(self, state: SpikeCutState) -> dict[str, Tensor]:
        """Each tensor's factor on the wrapped rule's steps, (B,) per name: 1 until a cut."""
        return {k: v.exp() for k, v in state.log_rate.items()}

    def cuts(self, state: SpikeCutState) -> dict[str, Tensor]:
        """How many cuts each tensor has taken, (B,) integers per name."""
        return {k: (v / math.log(self.factor)).round().long() for k, v in state.log_rate.items()}

    def config(self) -> dict:
        return {"name": self.name, "rule": self.rule.config(), "threshold": self.threshold, "factor": self.factor,
                "warmup": self.warmup, "cooldown": self.cooldown, "fast": self.fast, "slow": self.slow}
