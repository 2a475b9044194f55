"""The two-stage `conv` optimizer's updates multiplied by a constant factor, on 2 validation problems of the 5-class
task (classes 0–4, Fashion-MNIST stand-in), 1,000 steps: does it fall behind NAG late because its steps are too
small or too large? Usage: python docs/cifar/recipes/scale_check.py [FACTOR ...] (about 80 s of one core per factor
and problem). Output: docs/cifar/recipes/scale_check.txt."""
import sys

import torch

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.rules.baselines import NAG
from l2o.rules.scaled import ScaledRule
from l2o.tasks.conv import ConvConfig, ConvFamily

torch.set_num_threads(1)
task = ConvFamily(ConvConfig(dataset="fashion-mnist", labels=(0, 1, 2, 3, 4))).sample("validation", 0, 2)
rule = checkpoint.load_rule("docs/cifar/recipes/plain/train/lstm-long").eval()
runs = {f"LSTM × {f}": ScaledRule(rule, float(f)) for f in (sys.argv[1:] or ["0.5", "1", "2", "4"])}
runs["NAG (lr 0.00316, tuned)"] = NAG(lr=0.00316228)
for name, r in runs.items():
    with torch.no_grad():
        losses = torch.as_tensor(unroll(r, task, 1000).losses).mean(1)
    print(f"{name:26s} step 300 {losses[281:301].mean():.4f}  500 {losses[481:501].mean():.4f}  "
          f"700 {losses[681:701].mean():.4f}  1000 (mean of 981–1000) {losses[981:1001].mean():.4f}", flush=True)
