"""What the `factor-last` trial's learned factor does: its rule's step is Adam's (lr 0.316) times exp(2.3 tanh(LSTM
output)) per pixel, so its update divided by tuned Adam's on the same gradients is that factor. Printed at some steps
of a 128-step run on the 2 validation images of a setting: the geometric mean over pixels, the 5th and 95th
percentiles, and how often the two updates differ in sign.

Usage: python docs/art/trials/factor_check.py train64|new128 [CHECKPOINT] (default: the trial's best weights); the
lines are printed, the caller writes them to factor_check.txt beside this file. Under a minute on one core."""
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from l2o.checkpoint import load_rule
from l2o.experiments.art import Settings, eval_tasks
from l2o.rules.baselines import Adam
from l2o.tasks.registry import make_family

torch.set_num_threads(1)
SETTINGS = dict(zip(("train64", "new128"), eval_tasks(Settings()).values()))  # the suite's two settings
MARKS = (1, 2, 4, 8, 16, 32, 64, 128)

if __name__ == "__main__":
    setting = sys.argv[1]
    path = sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent / "factor-last" / "train" / "best.safetensors"
    rule = load_rule(path).eval()
    adam = Adam(0.316228, eps=rule.cfg.moment_eps)  # the rule's direct term: tuned Adam with the rule's ε
    task = make_family("art", **asdict(SETTINGS[setting])).sample("validation", 0, 2)
    params = task.init_params()
    state, adam_state = rule.init(params), adam.init(params)
    for t in range(1, 129):
        p = {k: v.detach().requires_grad_() for k, v in params.items()}
        grads = dict(zip(p, torch.autograd.grad(task.loss(p).sum(), list(p.values()))))
        with torch.no_grad():
            updates, state = rule.update(grads, state)
            reference, adam_state = adam.update(grads, adam_state)
            ratio = (updates["image"] / reference["image"]).flatten()
            ratio = ratio[reference["image"].flatten().abs() > 1e-6]
            if t in MARKS:
                log = ratio.abs().log()
                print(f"{setting:8s} step {t:3d}: factor geometric mean {log.mean().exp():.3f}, 5th-95th percentile "
                      f"{log.quantile(0.05).exp():.3f}-{log.quantile(0.95).exp():.3f}, opposite sign "
                      f"{(ratio < 0).float().mean():.3f}", flush=True)
            params = {k: v + updates[k] for k, v in params.items()}
