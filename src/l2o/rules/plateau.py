"""A rule's steps, cut per parameter tensor wherever that tensor's gradient stops shrinking: ``Plateau(rule)``.

A hand-designed controller for long runs that needs no loss, no horizon and no step count. For each parameter
tensor it keeps s, the mean squared gradient averaged over about 1/(1 − ``beta``) steps (bias-corrected, as Adam's
second moment). Every ``window`` steps it compares s with the least value s had at an earlier check: if s has not
fallen below ``ratio`` times it for ``patience`` checks in a row, the gradient has stopped shrinking (the loss has
stopped falling, or the steps' own noise dominates it) and that tensor's steps are multiplied by ``factor`` from
then on (the least value restarts from s). With ``reference="last"`` s is compared with its value at the last check
instead of its least one, so that a spike (s jumping up, then falling back) counts as one stalled check, not as
stalled checks until s is back below its pre-spike least value. Where the gradient keeps shrinking, as it does
while the loss keeps falling, it never acts, so a rate that suits a task is kept; where it stalls, as Adam's does
at a rate too large for the task, the rate comes down. In the spirit of
``torch.optim.lr_scheduler.ReduceLROnPlateau``, which needs the loss.

    rule = Plateau(LSTMRule(...))                 # or any rule, learned or hand-designed
    rule = Plateau({"name": "adam", "lr": 0.01})  # by settings, as read from a checkpoint

The controller's decisions are discrete and read detached gradients, so it passes no meta-gradient; a learned
rule inside it trains as it would alone. Its state is per tensor (one number per problem), so ``LearnedOptimizer``
keeps it per parameter like the wrapped rule's. ``docs/general/trials/plateau.py`` is the exploration that chose
its defaults on the validation problems of the ``general`` mixture.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from l2o.rules.wrapper import Wrapper
from l2o.tasks.base import Params


class PlateauState(NamedTuple):
    inner: Any  # the wrapped rule's state
    count: dict  # name -> (B,) steps seen
    sq: dict  # name -> (B,) the moving average of the tensor's mean squared gradient (not bias-corrected)
    best: dict  # name -> (B,) the reference: the least bias-corrected average at a check since the last cut, or
    # (reference "last") its value at the last check; inf before any
    waited: dict  # name -> (B,) checks in a row without the fall asked for
    log_rate: dict  # name -> (B,) the log of the factor on the wrapped rule's steps (0: as the rule makes them)


class Plateau(Wrapper):
    name = "plateau"
    State = PlateauState

    def __init__(self, rule, window: int = 1000, ratio: float = 0.8, patience: int = 2, factor: float = 0.5,
                 beta: float = 0.999, reference: str = "least", *, implementation: str = "auto"):
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        if reference not in ("least", "last"):
            raise ValueError(f"reference must be 'least' or 'last', got {reference!r}")
        super().__init__(rule, implementation)
        self.window, self.ratio, self.patience = window, float(ratio), patience
        self.factor, self.beta = float(factor), float(beta)
        self.reference = reference

    def init(self, params: Params) -> PlateauState:
        def per(value: float) -> dict:
            return self._per_problem(params, value)

        return PlateauState(self.rule.init(params), per(0.0), per(0.0), per(math.inf), per(0.0), per(0.0))

    def update(self, grads: Params, state: PlateauState, *, inplace: bool = False) -> tuple[Params, PlateauState]:
        updates, inner = self.rule.update(grads, state.inner, inplace=inplace)
        count, sq, best, waited, log_rate, out = {}, {}, {}, {}, {}, {}
        for k, g in grads.items():
            g2 = g.detach().reshape(g.shape[0], -1).float().pow(2).mean(1)
            count[k] = state.count[k] + 1
            sq[k] = self.beta * state.sq[k] + (1 - self.beta) * g2
            s = sq[k] / (1 - self.beta ** count[k])
            check = torch.remainder(count[k], self.window) == 0
            stalled = check & (s > self.ratio * state.best[k])
            w = torch.where(check, torch.where(stalled, state.waited[k] + 1, torch.zeros_like(s)), state.waited[k])
            cut = w >= self.patience
            waited[k] = torch.where(cut, torch.zeros_like(w), w)
            log_rate[k] = state.log_rate[k] + cut.to(s.dtype) * math.log(self.factor)
            kept = s if self.reference == "last" else torch.where(cut, s, torch.minimum(state.best[k], s))
            best[k] = torch.where(check, kept, state.best[k])
            u = updates[k]
            out[k] = u * log_rate[k].exp().to(u.dtype).view(-1, *[1] * (u.dim() - 1))
        return out, self._fresh(inner, state, (count, sq, best, waited, log_rate), inplace)

    def rates(self, state: PlateauState) -> dict[str, Tensor]:
        """Each tensor's factor on the wrapped rule's steps, (B,) per name: 1 until a cut."""
        return {k: v.exp() for k, v in state.log_rate.items()}

    def config(self) -> dict:
        out = {"name": self.name, "rule": self.rule.config(), "window": self.window, "ratio": self.ratio,
               "patience": self.patience, "factor": self.factor, "beta": self.beta}
        if self.reference != "least":  # only where it is not the default: results saved before the option matched
            out["reference"] = self.reference  # their settings as they are
        return out
