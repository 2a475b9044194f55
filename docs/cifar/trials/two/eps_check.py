"""The previous `conv` optimizer (docs/cifar/recipes/second-unroll100/lstm-long, the first stage's weights) with another ε in its moment features (the features divide
by √v̂ + ε; meta-trained with ε = 1e-8), on 2 validation problems of the 2-class task (classes 0–1,
Fashion-MNIST stand-in), 1,000 steps, the weights unchanged: are its late spikes those of Adam with a tiny ε?
Usage: python docs/cifar/trials/two/eps_check.py [EPS ...]. Output: docs/cifar/trials/two/eps_check.txt."""
import sys
from dataclasses import replace

import torch

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.tasks.conv import ConvConfig, ConvFamily

torch.set_num_threads(1)
task = ConvFamily(ConvConfig(dataset="fashion-mnist", labels=(0, 1))).sample("validation", 0, 2)
for eps in sys.argv[1:] or ["1e-8", "1e-6"]:
    rule = checkpoint.load_rule("docs/cifar/recipes/second-unroll100/lstm-long").eval()
    for sub in rule.learned.values():
        sub.cfg = replace(sub.cfg, moment_eps=float(eps))
    with torch.no_grad():
        losses = torch.as_tensor(unroll(rule, task, 1000).losses).mean(1)
    print(f"LSTM, ε {eps:6s} " + "  ".join(f"{s} {losses[s - 19:s + 1].mean():.2e}" for s in (100, 300, 500, 700, 1000))
          + "   (mean of the 20 steps up to each)", flush=True)
