"""Difficulty of both halves of a split on the conv net itself: Adam (lr 0.00316, the 5-class task's tuned rate),
2 validation problems, 1,000 steps; prints, for each half, the summed loss over the steps (mean over the problems),
the mean loss at step 1,000 and over the last 100 steps. About 3 minutes of one core.
Usage: python docs/cifar/trials/balanced/split/halves.py 0,1,6,7,8   (the five-class half; the other is the rest)"""
import sys
import torch
from l2o.meta.unroll import unroll
from l2o.rules import make_rule
from l2o.tasks.conv import ConvConfig, ConvFamily
torch.set_num_threads(1)
five = tuple(int(k) for k in sys.argv[1].split(","))
for half in (five, tuple(k for k in range(10) if k not in five)):
    task = ConvFamily(ConvConfig(dataset="fashion-mnist", labels=half)).sample("validation", 0, 2)
    with torch.no_grad():
        losses = torch.as_tensor(unroll(make_rule("adam", lr=0.00316), task, 1000).losses)
    print(half, "summed", f"{losses.mean(1).sum():.2f}", "at 1000", f"{losses[-1].mean():.5f}",
          "last 100", f"{losses[-100:].mean():.5f}", flush=True)
