"""Adam whose learning rate adapts by hypergradient descent (Baydin et al. 2018, "Online Learning Rate Adaptation
with Hypergradient Descent"), against fixed Adam: 10,000 steps on the first 4 test problems of one task of the long
suite (sigmoid MLP, ReLU MLP, or the unseen tanh MLP on Fashion-MNIST); the readings of tail.py.

The rate is one number per problem, moved multiplicatively by the cosine between this step's gradient and the last
update: log lr <- log lr - kappa * cos(g_t, u_{t-1}). The cosine is scale-free, so kappa is the log-rate's change per
step when every update overshoots (cosine 1). A positive mean cosine says the last steps went too far (the loss along
them rose), a negative one that they could have gone further: the greedy signal. The question this answers: does a
hand-made rate that adapts to the task meet the 10,000-step bar on all three tasks, where no fixed rate does (Adam's
best rate is 0.003, 0.01 and 0.001 on them)? If it does, it is a base for the learned factor that can find a task's
own rate late in a run.

Usage: python docs/general/trials/hypergradient.py sigmoid|relu|unseen [NAME ...] (one to three minutes a run on one
core). Output of the runs made is in hypergradient.txt."""
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import tail  # noqa: E402

from l2o.meta.unroll import unroll  # noqa: E402
from l2o.rules.baselines import Adam, AdamState  # noqa: E402
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig  # noqa: E402

torch.set_num_threads(1)


class HDState(NamedTuple):
    adam: AdamState
    last: dict  # the last update, divided by its rate (Adam's direction)
    log_lr: torch.Tensor  # (problems,), or one per tensor
    cos: torch.Tensor  # (problems,): the cosine's moving average over about 1,000 steps (a reading, not used)


@dataclass(frozen=True)
class HypergradientAdam(Adam):
    kappa: float = 0.01  # the log-rate's step per unit cosine
    lo: float = 1e-4  # the rate stays in [lo, hi]
    hi: float = 0.1
    target: float = 0.0  # the cosine the rate steers to: log lr -= kappa (cos - target)
    per_tensor: bool = False  # one rate per parameter tensor (cosine over its coordinates), else one per problem
    name: str = "adam-hd"

    def init(self, params):
        n = next(iter(params.values())).shape[0]
        start = lambda: torch.full((n,), math.log(self.lr))  # noqa: E731
        return HDState(Adam.init(self, params), {k: torch.zeros_like(v) for k, v in params.items()},
                       {k: start() for k in params} if self.per_tensor else start(), torch.zeros(n))

    def update(self, grads, state, *, inplace=False):
        dot = {k: (g * state.last[k]).flatten(1).sum(1) for k, g in grads.items()}
        gg = {k: (g * g).flatten(1).sum(1) for k, g in grads.items()}
        ll = {k: (u * u).flatten(1).sum(1) for k, u in state.last.items()}
        bounds = math.log(self.lo), math.log(self.hi)
        if self.per_tensor:
            log_lr = {k: (state.log_lr[k] - self.kappa * (dot[k] / (gg[k] * ll[k]).sqrt().clamp_min(1e-30)
                                                          - self.target)).clamp(*bounds) for k in grads}
        cos = sum(dot.values()) / (sum(gg.values()) * sum(ll.values())).sqrt().clamp_min(1e-30)
        if not self.per_tensor:
            log_lr = (state.log_lr - self.kappa * (cos - self.target)).clamp(*bounds)
        direction, adam = Adam.update(Adam(1.0, self.beta1, self.beta2, self.eps), grads, state.adam)
        rate = lambda k, u: (log_lr[k] if self.per_tensor else log_lr).exp().view(-1, *[1] * (u.dim() - 1))  # noqa: E731
        return {k: u * rate(k, u) for k, u in direction.items()}, HDState(adam, direction, log_lr, 0.999 * state.cos + 0.001 * cos)


TASKS = {"sigmoid": lambda: ImageMLPFamily(MLPConfig()),
         "relu": lambda: ImageMLPFamily(MLPConfig(activation="relu")),
         "unseen": lambda: ImageMLPFamily(MLPConfig(hidden=(32, 32, 32), activation="tanh"), dataset="fashion-mnist")}
RULES = {"adam_.001": Adam(0.001), "adam_.003": Adam(0.003), "adam_.01": Adam(0.01),
         "cos_.01": HypergradientAdam(0.01, kappa=0.0), "cos_.001": HypergradientAdam(0.001, kappa=0.0),
         "hd_.01_k.01_c.02": HypergradientAdam(0.01, kappa=0.01, target=0.02),
         "hd_.01_k.01_c.05": HypergradientAdam(0.01, kappa=0.01, target=0.05),
         "hd_.01_k.01": HypergradientAdam(0.01, kappa=0.01),
         "hd_.01_k.003": HypergradientAdam(0.01, kappa=0.003),
         "hd_.01_k.03": HypergradientAdam(0.01, kappa=0.03),
         "hd_.003_k.01": HypergradientAdam(0.003, kappa=0.01),
         "hdt_.01_k.01": HypergradientAdam(0.01, kappa=0.01, per_tensor=True),
         "hdt_.01_k.03": HypergradientAdam(0.01, kappa=0.03, per_tensor=True)}

if __name__ == "__main__":
    task_name, names = sys.argv[1], sys.argv[2:] or list(RULES)
    task = TASKS[task_name]().sample("test", 0, 4)
    for name in names:
        t0 = time.time()
        rule = RULES[name]
        with torch.no_grad():
            run = unroll(rule, task, 10_000)
        L = torch.as_tensor(run.losses)
        extra = ""
        if isinstance(run.state, HDState):
            rates = run.state.log_lr if isinstance(run.state.log_lr, dict) else {"all": run.state.log_lr}
            extra = f"  mean cosine {run.state.cos.mean():.3g}  rate at the end " + "; ".join(
                f"{k} " + " ".join(f"{r:.2g}" for r in v.exp().tolist()) for k, v in rates.items())
        print(f"{task_name:8s} {name:14s} {tail(L)}  at 1000 {L[900:1000].mean():.3g}  at 5000 "
              f"{L[4900:5000].mean():.3g}{extra}  ({time.time() - t0:.0f} s)", flush=True)
