"""How much room the art bar leaves: tuned Adam (lr 0.316) at step 128 against the lowest loss Adam reaches in 1,000
steps, and against rules that adapt each pixel's step by the sign agreement of successive gradients (Rprop, Riedmiller
and Braun 1993; and Adam's step times such a factor), on the 2 validation images of each art setting.

Usage: python docs/art/trials/room.py [--test] train64|new128 [NAME ...] (the candidates below, all by default); with
--test, on the suite's 50 test photos of the setting instead (docs/art/tasks/*/results.json: the same problems), with
the standard error over photos. The lines are printed, the caller writes them to room.txt beside this file. About
5 s per 128 steps at 64×64 and 25 s at 128×128 on one core for 2 images (the 1,000-step runs: 8× that; the 50 test
photos: 25× that)."""
import sys
import time
from dataclasses import asdict

import torch

from l2o.experiments.art import Settings, eval_tasks
from l2o.meta.unroll import unroll
from l2o.rules import Adam, SignAgreement
from l2o.tasks.registry import make_family

torch.set_num_threads(1)
TUNED = 0.316228  # the suite's tuned rate in both settings (docs/art/tasks/*/tuning.json)


class Rprop:
    """Rprop without weight backtracking (iRprop−): a per-coordinate step, × up on agreement, × down on a sign
    change (that step's move skipped), moved by the gradient's sign alone."""

    name = "rprop"

    def __init__(self, step: float, up: float = 1.2, down: float = 0.5, lo: float = 1e-6, hi: float = 1.0):
        self.step, self.up, self.down, self.lo, self.hi = step, up, down, lo, hi

    def init(self, params):
        return ({k: torch.full_like(p, self.step) for k, p in params.items()},
                {k: torch.zeros_like(p) for k, p in params.items()})

    def update(self, grads, state, **kwargs):
        steps, last = state
        agree = {k: g * last[k] for k, g in grads.items()}
        steps = {k: torch.where(a > 0, steps[k] * self.up, torch.where(a < 0, steps[k] * self.down, steps[k]))
                 .clamp(self.lo, self.hi) for k, a in agree.items()}
        grads = {k: torch.where(agree[k] < 0, torch.zeros_like(g), g) for k, g in grads.items()}
        return {k: -steps[k] * g.sign() for k, g in grads.items()}, (steps, grads)


CANDIDATES = {  # name: (rule, steps); "x sign": the factor compares each gradient with the last one (decay 0)
    "adam 0.316 (tuned)": (lambda: Adam(TUNED), 128),
    "adam 0.316, 1000 steps": (lambda: Adam(TUNED), 1000),
    "adam 0.1, 1000 steps": (lambda: Adam(0.1), 1000),
    "adam 0.306": (lambda: Adam(0.969 * TUNED), 128),  # the factor factor-last learned (factor_check.txt)
    "adam 0.316 x sign 1.05/0.9": (lambda: SignAgreement(Adam(TUNED), 1.05, 0.9, decay=0.0), 128),
    "adam 0.316 x sign 1.1/0.7": (lambda: SignAgreement(Adam(TUNED), 1.1, 0.7, decay=0.0), 128),
    "adam 0.316 x sign 1.2/0.5": (lambda: SignAgreement(Adam(TUNED), 1.2, 0.5, decay=0.0), 128),
    "adam 0.1 x sign 1.1/0.7": (lambda: SignAgreement(Adam(0.1), 1.1, 0.7, decay=0.0), 128),
    "adam 0.316 x agreement^0.7": (lambda: SignAgreement(Adam(TUNED), 1.2, 0.5, 0.7), 128),  # dbd_path.py's best
    "rprop 0.003": (lambda: Rprop(0.003), 128),
    "rprop 0.01": (lambda: Rprop(0.01), 128),
    "rprop 0.03": (lambda: Rprop(0.03), 128),
}
SETTINGS = dict(zip(("train64", "new128"), eval_tasks(Settings()).values()))  # the suite's two settings

if __name__ == "__main__":
    args = sys.argv[1:]
    test = args[:1] == ["--test"]
    setting, names = args[test], args[test + 1:] or list(CANDIDATES)
    split, problems = ("test", 50) if test else ("validation", 2)
    task = make_family("art", **asdict(SETTINGS[setting])).sample(split, 0, problems)
    for name in names:
        make, steps = CANDIDATES[name]
        t0 = time.time()
        with torch.no_grad():
            per_problem = torch.as_tensor(unroll(make(), task, steps).losses)
        losses = per_problem.mean(1)
        if test:
            sem = per_problem[-1].std() / problems**0.5
            print(f"{setting:8s} {split} ({problems} photos) {name:28s} step {steps} {losses[-1]:.4f} ± {sem:.4f}  "
                  f"({time.time() - t0:.0f} s)", flush=True)
            continue
        marks = [m for m in (16, 32, 64, 128, 256, 512, 1000) if m <= steps]
        print(f"{setting:8s} {name:28s} " + "  ".join(f"step {m} {losses[m]:.4f}" for m in marks)
              + f"  least {losses.min():.4f} at step {int(losses.argmin())}  ({time.time() - t0:.0f} s)", flush=True)
