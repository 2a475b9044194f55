"""The shipped `art` optimizer's updates multiplied by a constant factor, on the 2 validation images of each setting
(the images the baselines' learning rates were tuned on), 128 steps: is its step size what keeps it behind tuned
Adam? Usage:
    python docs/art/trials/scale_check.py [FACTOR ...]
Output: scale_check.txt beside this file (mean loss over the 2 images at steps 16, 32, 64 and 128)."""
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.experiments.art import Settings, eval_tasks
from l2o.meta.unroll import unroll
from l2o.rules.baselines import Adam
from l2o.rules.scaled import ScaledRule
from l2o.tasks.registry import make_family

torch.set_num_threads(1)
settings = {f"{name} ({c.size}×{c.size})": c for name, c in eval_tasks(Settings()).items()}  # the suite's two
rule = checkpoint.load_rule("art").eval()
lines = []
for name, cfg in settings.items():
    task = make_family("art", **asdict(cfg)).sample("validation", 0, 2)
    runs = {f"art × {f}": ScaledRule(rule, float(f)) for f in (sys.argv[1:] or ["0.7", "1", "1.4", "2"])}
    runs["Adam (lr 0.316, tuned)"] = Adam(lr=0.316228)
    for label, r in runs.items():
        with torch.no_grad():
            losses = torch.as_tensor(unroll(r, task, 128).losses).mean(1)
        line = (f"{name:20s} {label:24s} step 16 {losses[16]:.4f}  32 {losses[32]:.4f}  64 {losses[64]:.4f}  "
                f"128 {losses[128]:.4f}")
        print(line, flush=True)
        lines.append(line)
Path(__file__).with_name("scale_check.txt").write_text("\n".join(lines) + "\n")
