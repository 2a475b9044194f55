"""The previous `conv` optimizer (docs/cifar/recipes/second-unroll100/lstm-long, the first stage's weights) with its updates multiplied by a constant factor, on 2
validation problems of the 2-class task (classes 0–1, Fashion-MNIST stand-in), 1,000 steps: does its loss rise
after step 500 because its late steps are too large? Usage: python docs/cifar/trials/two/scale_check.py
[FACTOR ...]. Output: docs/cifar/trials/two/scale_check.txt."""
import sys

import torch

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.rules.baselines import NAG
from l2o.rules.scaled import ScaledRule
from l2o.tasks.conv import ConvConfig, ConvFamily

torch.set_num_threads(1)
task = ConvFamily(ConvConfig(dataset="fashion-mnist", labels=(0, 1))).sample("validation", 0, 2)
rule = checkpoint.load_rule("docs/cifar/recipes/second-unroll100/lstm-long").eval()
runs = {f"LSTM × {f}": ScaledRule(rule, float(f)) for f in (sys.argv[1:] or ["0.5", "1"])}
runs["NAG (lr 0.316, tuned)"] = NAG(lr=0.316228)
for name, r in runs.items():
    with torch.no_grad():
        losses = torch.as_tensor(unroll(r, task, 1000).losses).mean(1)
    print(f"{name:24s} " + "  ".join(f"{s} {losses[s - 19:s + 1].mean():.2e}" for s in (100, 300, 500, 700, 1000))
          + "   (mean of the 20 steps up to each)", flush=True)
