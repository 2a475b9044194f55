"""Adam with a step-count decay, lr (1 + t/tau)^(-power), against fixed Adam: 10,000 steps of the MNIST MLP (sigmoid
or ReLU) on its first 4 test problems; the mean loss over the last 1,000 steps and windows at steps 1,000 and 5,000.
Usage: python docs/general/trials/schedules.py sigmoid|relu (about a minute a run on one core). An exploration of
whether a hand schedule would meet the 10,000-step bar on both MLPs; the output of both is in schedules.txt."""
import sys, time
from dataclasses import dataclass
import torch
from l2o.rules.baselines import Adam
from l2o.meta.unroll import unroll
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
torch.set_num_threads(1)

@dataclass(frozen=True)
class DecayAdam(Adam):
    tau: float = 1000.0
    power: float = 0.5
    name: str = "adam"
    def update(self, grads, state, *, inplace=False):
        t = state.step + 1
        f = (1 + t / self.tau) ** -self.power
        u, s = Adam.update(self, grads, state)
        return {k: v * f for k, v in u.items()}, s

act = sys.argv[1]
fam = ImageMLPFamily(MLPConfig(activation=act))
task = fam.sample("test", 0, 4)
for name, rule in [("adam .01", Adam(0.01)), ("adam .003", Adam(0.003)),
                   ("dec .01 t1k p.5", DecayAdam(0.01, tau=1000, power=0.5)),
                   ("dec .03 t1k p.5", DecayAdam(0.03, tau=1000, power=0.5)),
                   ("dec .01 t1k p1", DecayAdam(0.01, tau=1000, power=1.0)),
                   ("dec .01 t3k p1", DecayAdam(0.01, tau=3000, power=1.0)),
                   ("dec .03 t300 p1", DecayAdam(0.03, tau=300, power=1.0))]:
    t0 = time.time()
    with torch.no_grad():
        L = unroll(rule, task, 10000).losses  # (steps+1, problems)
    L = torch.as_tensor(L)
    print(f"{act} {name:18s} last1000 {L[-1000:].mean():.3g}  at 1000 {L[900:1000].mean():.3g} at 5000 {L[4900:5000].mean():.3g}  {time.time()-t0:.0f}s", flush=True)
