"""Tuned Adam (lr 0.316) against simple variants of itself on the 2 validation images of each art setting (the
images its rate was tuned on), 128 steps: a rate schedule over the 128 steps (decaying, or growing), another β1 or β2.
Does a hand-made change of Adam beat it at step 128, the measure the `art` optimizer misses by 1.4 % and 5.5 %?
Usage: python docs/art/trials/adam_variants.py train64|new128 [NAME ...] (the variants below, all by default);
the lines are printed, the caller writes them to adam_variants.txt beside this file. About 5 s a variant at
64×64 and 25 s at 128×128 on one core."""
import math
import sys
import time
from dataclasses import asdict

import torch

from l2o.experiments.art import Settings, eval_tasks
from l2o.meta.unroll import unroll
from l2o.rules.baselines import Adam
from l2o.tasks.registry import make_family

torch.set_num_threads(1)
T = 128  # the setting's steps


class Scheduled:
    """Adam's (``rule``'s) updates times ``f(t)`` at step t (0, 1, ...: the steps its state has counted)."""

    name = "scheduled"

    def __init__(self, rule: Adam, f):
        self.rule, self.f = rule, f

    def init(self, params):
        return self.rule.init(params)

    def update(self, grads, state, **kwargs):
        factor = self.f(state.step)
        updates, state = self.rule.update(grads, state, **kwargs)
        return {k: v * factor for k, v in updates.items()}, state


def linear(t):
    return 1 - t / T


def cosine(t):
    return 0.5 * (1 + math.cos(math.pi * t / T))


TUNED = 0.316228  # the suite's tuned rate in both settings (docs/art/tasks/*/tuning.json)
VARIANTS = {
    "adam 0.316 (tuned)": lambda: Adam(TUNED),
    "adam 0.5": lambda: Adam(0.5),
    "0.316, linear decay to 0": lambda: Scheduled(Adam(TUNED), linear),
    "0.5, linear decay to 0": lambda: Scheduled(Adam(0.5), linear),
    "1, linear decay to 0": lambda: Scheduled(Adam(1.0), linear),
    "0.5, cosine decay": lambda: Scheduled(Adam(0.5), cosine),
    "1, cosine decay": lambda: Scheduled(Adam(1.0), cosine),
    "0.5, linear decay to 0.1": lambda: Scheduled(Adam(0.5), lambda t: 1 - 0.8 * t / T),
    "0.316, growing to 0.632": lambda: Scheduled(Adam(TUNED), lambda t: 1 + t / T),
    "0.2, growing to 0.6": lambda: Scheduled(Adam(0.2), lambda t: 1 + 2 * t / T),
    "0.316, beta1 0.95": lambda: Adam(TUNED, beta1=0.95),
    "0.316, beta1 0.8": lambda: Adam(TUNED, beta1=0.8),
    "0.316, beta2 0.99": lambda: Adam(TUNED, beta2=0.99),
    "0.316, beta2 0.9": lambda: Adam(TUNED, beta2=0.9),
    "0.2, beta2 0.99": lambda: Adam(0.2, beta2=0.99),
}
SETTINGS = dict(zip(("train64", "new128"), eval_tasks(Settings()).values()))  # the suite's two settings

if __name__ == "__main__":
    setting, names = sys.argv[1], sys.argv[2:] or list(VARIANTS)
    task = make_family("art", **asdict(SETTINGS[setting])).sample("validation", 0, 2)
    for name in names:
        t0 = time.time()
        with torch.no_grad():
            losses = torch.as_tensor(unroll(VARIANTS[name](), task, T).losses).mean(1)
        print(f"{setting:8s} {name:26s} step 16 {losses[16]:.4f}  32 {losses[32]:.4f}  64 {losses[64]:.4f}  "
              f"128 {losses[128]:.4f}  ({time.time() - t0:.0f} s)", flush=True)
