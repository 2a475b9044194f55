"""A rule's validation reading, as meta-training's: the mean log loss at step 128 on the 4 validation images.

Usage: python docs/art/trials/val_check.py train64|new128 RULE ... (RULE: a checkpoint path or a shipped name, or
"adam" for tuned Adam, lr 0.316). About 10 s per rule at 64×64 on one core."""
import sys
import time
from dataclasses import asdict

import torch
from room import SETTINGS, TUNED

from l2o.checkpoint import load_rule
from l2o.meta.unroll import unroll
from l2o.rules import Adam
from l2o.tasks.registry import make_family

torch.set_num_threads(1)


def validation_task(setting: str):
    """Meta-training's 4 validation images in ``setting`` (train64 or new128)."""
    return make_family("art", **asdict(SETTINGS[setting])).sample("validation", 0, 4)


def run_losses(name: str, task) -> torch.Tensor:
    """The losses (steps 0–128 × problems) of rule ``name`` on ``task``."""
    rule = Adam(TUNED) if name == "adam" else load_rule(name)
    with torch.no_grad():
        return torch.as_tensor(unroll(rule, task, 128).losses)


if __name__ == "__main__":
    setting, names = sys.argv[1], sys.argv[2:]
    task = validation_task(setting)
    for name in names:
        t0 = time.time()
        losses = run_losses(name, task)
        final = losses[-1]
        print(f"{setting:8s} {name}  step 128: mean log loss {final.log().mean():.5f}  mean loss {final.mean():.5f}"
              f"  (steps 16, 32, 64: {losses[16].mean():.4f} {losses[32].mean():.4f} {losses[64].mean():.4f}; "
              f"{time.time() - t0:.0f} s)", flush=True)
