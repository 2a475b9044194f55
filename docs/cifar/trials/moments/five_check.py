"""Optimizers (run folders: their best validated weights) beside tuned NAG on 2 validation problems of the 5-class
task (classes 0–4, Fashion-MNIST stand-in for CIFAR-10), 1,000 steps: does a rule that sees momentum inputs keep
its lead past step 500, where the plain rule falls behind NAG? Usage:
    python docs/cifar/trials/moments/five_check.py RUN [RUN ...]
(about 80 s of one core per run and problem). Output: five_check.txt beside this file (the mean loss over the 20
steps up to each step shown, averaged over the 2 problems)."""
import sys
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.rules.baselines import NAG
from l2o.tasks.conv import ConvConfig, ConvFamily

torch.set_num_threads(1)
task = ConvFamily(ConvConfig(dataset="fashion-mnist", labels=(0, 1, 2, 3, 4))).sample("validation", 0, 2)
runs = {run: checkpoint.load_rule(run).eval() for run in sys.argv[1:]}
runs["NAG (lr 0.00316, tuned)"] = NAG(lr=0.00316228)
lines = []
for name, r in runs.items():
    with torch.no_grad():
        losses = torch.as_tensor(unroll(r, task, 1000).losses).mean(1)
    line = (f"{name:40s} step 200 {losses[181:201].mean():.4f}  300 {losses[281:301].mean():.4f}  "
            f"500 {losses[481:501].mean():.4f}  700 {losses[681:701].mean():.4f}  1000 {losses[981:1001].mean():.4f}")
    print(line, flush=True)
    lines.append(line)
Path(__file__).with_name("five_check.txt").write_text("\n".join(lines) + "\n")
