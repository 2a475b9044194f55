"""Adam whose rate halves when the gradient stops shrinking: a plateau rule that needs no loss, no horizon and no step
count, against fixed Adam, over 10,000 steps of the mixture's members on 4 **validation** problems (the long suite's
test tasks are not used to design it).

Every ``window`` steps it compares s = the sum over the problem's coordinates of Adam's second moment v (an average
of the squared gradient over about 1,000 steps) with its value at the last check: if s has not fallen below
``ratio`` times it, the gradient is no longer shrinking (the loss has stopped falling, or the steps' noise dominates
it), and the rate is multiplied by ``factor``. Where the loss keeps falling (as on the ReLU MLP at lr 0.01, whose
loss falls tenfold every couple of thousand steps) the rate stays. The question: does it find each task's rate
where no fixed rate is best on all (the hypergradient trial's greedy signal did not)? ``StationaryAdam`` (the st_
rules) tries another signal: whether a window's gradients sum like noise.

Usage: python docs/general/trials/plateau.py mlp_deep_tanh|mlp_relu|mlp_sigmoid|fashion_relu [NAME ...] (about a
minute a run on one core); output in plateau.txt."""
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import tail  # noqa: E402

from l2o.experiments.general import MEMBERS  # noqa: E402
from l2o.meta.unroll import unroll  # noqa: E402
from l2o.rules.baselines import Adam, AdamState  # noqa: E402

torch.set_num_threads(1)


class PlateauState(NamedTuple):
    adam: AdamState
    reference: torch.Tensor  # (problems,): s at the last check, or its least value at any check ("best")
    waited: torch.Tensor  # (problems,): checks in a row without the fall asked for
    log_rate: torch.Tensor  # (problems,)
    cuts: torch.Tensor  # (problems,): how many times the rate was cut (a reading)
    first_cut: torch.Tensor  # (problems,): the step of the first cut, 0 if none (a reading)


@dataclass(frozen=True)
class PlateauAdam(Adam):
    window: int = 1000
    ratio: float = 0.5  # s must fall below ratio x its value at the last check, else the rate is cut
    factor: float = 0.5
    patience: int = 1  # checks in a row without the fall before a cut
    reference: str = "last"  # compare with s at the last check, or with its least value so far ("best"; reset by a cut)
    per_tensor: bool = False  # s, the check and the rate per parameter tensor (the readings: the first tensor's)
    name: str = "adam-plateau"

    def init(self, params):
        n = next(iter(params.values())).shape[0]
        k = len(params) if self.per_tensor else 1
        return PlateauState(Adam.init(self, params), torch.full((n, k), math.inf), torch.zeros(n, k),
                            torch.full((n, k), math.log(self.lr)), torch.zeros(n, k), torch.zeros(n, k))

    def update(self, grads, state, *, inplace=False):
        direction, adam = Adam.update(Adam(1.0, self.beta1, self.beta2, self.eps), grads, state.adam)
        _, reference, waited, log_rate, cuts, first = state
        if adam.step % self.window == 0:
            per = torch.stack([v.flatten(1).sum(1) for v in adam.exp_avg_sq.values()], 1) / (1 - self.beta2 ** adam.step)
            s = per if self.per_tensor else per.sum(1, keepdim=True)
            stalled = s > self.ratio * reference
            waited = torch.where(stalled, waited + 1, torch.zeros_like(waited))
            cut = waited >= self.patience
            waited = torch.where(cut, torch.zeros_like(waited), waited)
            log_rate = log_rate + cut * math.log(self.factor)
            first = torch.where(cut & (cuts == 0), torch.full_like(first, adam.step), first)
            cuts = cuts + cut
            if self.reference == "last":
                reference = s
            else:
                reference = torch.where(cut, s, torch.minimum(reference, s))
        rate = log_rate.exp()
        return ({k: u * rate[:, i if self.per_tensor else 0].view(-1, *[1] * (u.dim() - 1))
                 for i, (k, u) in enumerate(direction.items())},
                PlateauState(adam, reference, waited, log_rate, cuts, first))


class StationaryState(NamedTuple):
    adam: AdamState
    total: dict  # name -> the sum of the window's gradients (as the parameters)
    squares: torch.Tensor  # (problems,): the sum of the window's squared gradient norms
    log_rate: torch.Tensor  # (problems,)
    cuts: torch.Tensor  # (problems,)
    readings: list  # W·S at each check, (problems,) each (a reading)


@dataclass(frozen=True)
class StationaryAdam(Adam):
    """Adam whose rate halves where a window's gradients sum like noise: per problem, S = |Σ_t g_t|² / (W Σ_t |g_t|²)
    over the window's W steps is about 1/W for independent zero-mean gradients (a stationary iterate, the steps'
    noise dominating) and about 1 for a gradient that keeps its direction; cut where W·S < ``threshold`` (a test of
    stationarity in the spirit of Lang, Xiao and Zhang 2019, "Using Statistics to Automate Stochastic Optimization")."""
    window: int = 1000
    threshold: float = 3.0
    factor: float = 0.5
    name: str = "adam-stationary"

    def init(self, params):
        n = next(iter(params.values())).shape[0]
        return StationaryState(Adam.init(self, params), {k: torch.zeros_like(p) for k, p in params.items()},
                               torch.zeros(n), torch.full((n,), math.log(self.lr)), torch.zeros(n), [])

    def update(self, grads, state, *, inplace=False):
        direction, adam = Adam.update(Adam(1.0, self.beta1, self.beta2, self.eps), grads, state.adam)
        _, total, squares, log_rate, cuts, readings = state
        total = {k: total[k] + g for k, g in grads.items()}
        squares = squares + sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
        if adam.step % self.window == 0:
            ws = sum(t.flatten(1).pow(2).sum(1) for t in total.values()) / squares
            cut = ws < self.threshold
            log_rate = log_rate + cut * math.log(self.factor)
            cuts, readings = cuts + cut, readings + [ws]
            total, squares = {k: torch.zeros_like(t) for k, t in total.items()}, torch.zeros_like(squares)
        rate = log_rate.exp()
        return ({k: u * rate.view(-1, *[1] * (u.dim() - 1)) for k, u in direction.items()},
                StationaryState(adam, total, squares, log_rate, cuts, readings))


RULES = {"adam_.001": Adam(0.001), "adam_.003": Adam(0.003), "adam_.01": Adam(0.01),
         "pl_.01_r.5": PlateauAdam(0.01, ratio=0.5), "pl_.01_r.8": PlateauAdam(0.01, ratio=0.8),
         "pl_.01_r.3": PlateauAdam(0.01, ratio=0.3), "pl_.01_r.5_w500": PlateauAdam(0.01, ratio=0.5, window=500),
         "plb_.01_r.8_p2": PlateauAdam(0.01, ratio=0.8, patience=2, reference="best"),
         "plb_.01_r.8_p1": PlateauAdam(0.01, ratio=0.8, patience=1, reference="best"),
         "plb_.01_r.9_p2": PlateauAdam(0.01, ratio=0.9, patience=2, reference="best"),
         "plb_.01_r1_p2": PlateauAdam(0.01, ratio=1.0, patience=2, reference="best"),
         "plbt_.01_r.8_p2": PlateauAdam(0.01, ratio=0.8, patience=2, reference="best", per_tensor=True),
         "st_.01_t3": StationaryAdam(0.01, threshold=3.0), "st_.01_t10": StationaryAdam(0.01, threshold=10.0),
         "st_.01_w50_read": StationaryAdam(0.01, window=50, threshold=0.0)}

if __name__ == "__main__":
    member, names = sys.argv[1], sys.argv[2:] or list(RULES)
    task = MEMBERS[member][0](None).sample("validation", 0, 4)
    for name in names:
        t0 = time.time()
        with torch.no_grad():
            run = unroll(RULES[name], task, 10_000)
        L = torch.as_tensor(run.losses)
        extra = ""
        if isinstance(run.state, StationaryState):
            per = max(1, 1000 // RULES[name].window)  # the readings averaged over each 1,000 steps
            r = torch.stack(run.state.readings)
            r = r[: len(r) // per * per].reshape(-1, per, r.shape[1]).mean(1)
            extra = ("  cuts " + " ".join(f"{c:.0f}" for c in run.state.cuts.tolist()) + "  W·S per 1000 steps "
                     + "; ".join(" ".join(f"{v:.3g}" for v in w.tolist()) for w in r))
        if isinstance(run.state, PlateauState):
            extra = ("  cuts " + " ".join(f"{c:.0f}" for c in run.state.cuts[:, 0].tolist()) + "  first at step "
                     + " ".join(f"{c:.0f}" for c in run.state.first_cut[:, 0].tolist()))
            if run.state.cuts.shape[1] > 1:
                extra += "  cuts per tensor " + "; ".join(" ".join(f"{c:.0f}" for c in row) for row in run.state.cuts.tolist())
        print(f"{member:14s} {name:16s} {tail(L)}  at 1000 {L[900:1000].mean():.3g}  at 5000 "
              f"{L[4900:5000].mean():.3g}{extra}  ({time.time() - t0:.0f} s)", flush=True)
