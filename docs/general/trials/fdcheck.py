"""The meta-gradient of the `fade` trial's rule against finite differences, over one short truncation.

    python docs/general/trials/fdcheck.py        # output: docs/general/trials/fdcheck.txt

One sigmoid-MLP problem (MNIST, minibatches of 32), 12 steps of the rule (moment inputs, the learned factor on
Adam's step, fading with τ = 100) with its output layer scaled to 1 so that the factor is not 1 everywhere;
J = Σ_t log f(θ_t). The gradient of J with respect to six of the output layer's weights, first-order (the
gradients' dependence on φ dropped, as in the paper), second-order, and by central differences (h = 1e-2).
"""

import torch

from l2o.meta.unroll import unroll
from l2o.rules.lstm import LSTMConfig, LSTMRule
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig

torch.set_num_threads(1)
torch.manual_seed(0)
cfg = LSTMConfig(moments=(0.5, 0.9, 0.99, 0.999), gradient_input=False, direct=True, learn_direct=False,
                 correction="scale", correction_scale=2.3, output_scale=0.01, output_init=1.0,
                 correction_decay=100.0, moment_eps=1e-6)
rule = LSTMRule(cfg, implementation="torch")
task = ImageMLPFamily(MLPConfig(batch_size=32)).sample("train", 0, 1)
T, H, N = 12, 1e-2, 6


def objective(second_order: bool) -> torch.Tensor:
    return unroll(rule, task, T, meta=True, second_order=second_order).losses[1:].clamp_min(1e-30).log().sum()


weight = rule.out.weight
grads = {}
for second in (False, True):
    rule.zero_grad()
    objective(second).backward()
    grads[second] = weight.grad.detach().flatten()[:N].clone()
fd = torch.zeros(N)
with torch.no_grad():
    w = weight.view(-1)
    for i in range(N):
        w[i] += H
        up = objective(False).item()
        w[i] -= 2 * H
        down = objective(False).item()
        w[i] += H
        fd[i] = (up - down) / (2 * H)
print(f"one sigmoid-MLP problem, {T} steps, {N} output weights, central differences h = {H}")
for name, g in (("first-order", grads[False]), ("second-order", grads[True])):
    cos = (g @ fd / (g.norm() * fd.norm())).item()
    print(f"{name:13s} cosine with finite differences {cos:+.3f}   norm ratio {(g.norm() / fd.norm()).item():.3f}")
