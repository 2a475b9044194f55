"""Is the learned optimizers' gap at 128×128 the size of the gradients? A rule's validation reading (as
val_check.py's: the mean log loss at step 128 on the 4 validation images) with the task's loss multiplied by K, so
that every gradient is K times larger; the loss is divided by K again before it is read.

The task's loss is a mean over pixels and feature-map positions, so its gradient per pixel is smaller at 128×128
than at 64×64 (the root mean square at θ₀ is printed first, with the share of pixels whose gradient is large enough
for the paper's preprocessing to pass its log, |∇| ≥ e^−10; below that it passes −1 and e^10 ∇). Adam's step does not
change with K; a rule that reads the gradient's magnitude (the paper's log/sign preprocessing) does.

Usage: python docs/art/trials/scale_gap.py train64|new128 RULE K [K ...] (RULE: a checkpoint path, a shipped name,
or "adam" for tuned Adam, lr 0.316). Output: scale_gap.txt. About 60–100 s per K at 128×128 on one core."""
import math
import sys
import time

import torch
from val_check import run_losses, validation_task

from l2o.tasks.scaled import ScaledTask

torch.set_num_threads(1)

if __name__ == "__main__":
    setting, name, ks = sys.argv[1], sys.argv[2], [float(k) for k in sys.argv[3:]]
    task = validation_task(setting)
    live = {k: v.detach().requires_grad_(True) for k, v in task.init_params().items()}
    grads = torch.autograd.grad(task.loss(live, 0).sum(), list(live.values()))
    flat = torch.cat([g.flatten() for g in grads])
    above = float((flat.abs() >= math.exp(-10)).float().mean())  # the log/sign preprocessing's threshold (p = 10)
    print(f"{setting:8s} the gradient's root mean square per pixel at θ₀: {float(flat.pow(2).mean().sqrt()):.3g}; "
          f"{above:.1%} of the pixels at or above e^-10, where the preprocessing takes the log", flush=True)
    for k in ks:
        t0 = time.time()
        final = run_losses(name, ScaledTask(task, torch.full((task.num_problems,), k)))[-1] / k
        print(f"{setting:8s} {name}  loss x {k:g}: step 128: mean log loss {final.log().mean():.5f}  mean loss "
              f"{final.mean():.5f} ({time.time() - t0:.0f} s)", flush=True)
