"""Where Adam's 10,000-step tail goes: variants of Adam at lr 0.01 that damp its late spikes, on the 8 held-out
test problems of the long suite (`l2o long`: MNIST MLP 784-20-10, sigmoid or ReLU). Prints the mean loss over the
last 1,000 steps (the headline of docs/long), the median over problems of that window, and the largest mean loss of
a 10-step window in it (a spike). Usage: python docs/general/trials/spikes.py sigmoid|relu [NAME ...] (about 3 minutes
a run on one core); the output is in spikes.txt. An exploration for the `general` recipe (docs/general.md)."""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from l2o.meta.unroll import unroll
from l2o.rules.baselines import Adam, AdamState
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig

sys.path.insert(0, str(Path(__file__).parent))
from tail import tail  # noqa: E402

torch.set_num_threads(1)


@dataclass(frozen=True)
class AMSGrad(Adam):
    """Adam with v the running maximum of its average (Reddi et al. 2018): a coordinate's step cannot grow because
    its gradients got small for a while."""
    name: str = "adam"

    def update(self, grads, state, *, inplace=False):
        u, s = Adam.update(self, grads, state)
        v = {k: torch.maximum(s.exp_avg_sq[k], state.exp_avg_sq[k]) for k in grads}
        t = s.step
        bc2 = (1 - self.beta2**t) ** 0.5
        step = self.lr / (1 - self.beta1**t)
        return {k: -step * s.exp_avg[k] / (v[k].sqrt() / bc2 + self.eps) for k in grads}, AdamState(t, s.exp_avg, v)


@dataclass(frozen=True)
class ClipAdam(Adam):
    """Adam whose normalised step m̂/√v̂ is clipped to [-c, c] per coordinate."""
    clip: float = 1.0
    name: str = "adam"

    def update(self, grads, state, *, inplace=False):
        u, s = Adam.update(self, grads, state)
        return {k: v.clamp(-self.clip * self.lr, self.clip * self.lr) for k, v in u.items()}, s


VARIANTS = {
    "adam": Adam(0.01),
    "amsgrad": AMSGrad(0.01),
    "beta2_.9999": Adam(0.01, beta2=0.9999),
    "clip_1": ClipAdam(0.01, clip=1.0),
    "eps_1e-4": Adam(0.01, eps=1e-4),
    "eps_1e-5": Adam(0.01, eps=1e-5),
    "eps_1e-6": Adam(0.01, eps=1e-6),
}

act = sys.argv[1]
names = sys.argv[2:] or list(VARIANTS)
task = ImageMLPFamily(MLPConfig(activation=act)).sample("test", 0, 8)
for name in names:
    t0 = time.time()
    with torch.no_grad():
        losses = unroll(VARIANTS[name], task, 10000).losses
    print(f"{act:8s} {name:12s} {tail(losses)}  ({time.time() - t0:.0f} s)", flush=True)
