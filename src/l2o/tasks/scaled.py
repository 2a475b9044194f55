"""Objective-scale augmentation: the same problems with each objective multiplied by a constant.

``ScaledTask(task, scale)`` is ``task`` with problem i's loss multiplied by ``scale[i] > 0``. The
landscape (its minima, the path a scale-free optimizer takes) is unchanged; only the size of every
gradient is. A learned rule meta-trained on scaled copies of its problems cannot rely on the absolute
size of the gradients it sees; the hope is that it learns to normalise them per coordinate, as RMSprop
and Adam do, and so carries over to problems whose gradients are smaller or larger than its training
problems'. On the MNIST MLPs it did not (docs/mnist.md, trials g and h).

References:
    Lv, Jiang and Li 2017, "Learning Gradient Descent: Better Generalization and Longer Horizons"
    (random scaling of the training functions; they scale the parameters, f(cθ), where this scales f).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from l2o.tasks.base import Params, Task


def log_uniform_scales(num_problems: int, spread: float, seed: int) -> Tensor:
    """``num_problems`` factors drawn log-uniformly from [1/spread, spread] with ``seed``."""
    if not (math.isfinite(spread) and spread >= 1.0):
        raise ValueError(f"the scale spread must be a finite number >= 1, got {spread}")
    gen = torch.Generator().manual_seed(int(seed))
    u = torch.rand(num_problems, generator=gen, dtype=torch.float64)
    return torch.exp((2.0 * u - 1.0) * math.log(spread)).float()


class ScaledTask:
    """``task`` with problem i's objective multiplied by ``scale[i]``."""

    def __init__(self, task: Task, scale: Tensor):
        scale = torch.as_tensor(scale, dtype=torch.float32)
        if scale.shape != (task.num_problems,):
            raise ValueError(f"need one scale per problem ({task.num_problems}), got shape {tuple(scale.shape)}")
        if not bool(torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("scales must be finite and positive")
        self.task, self.scale = task, scale
        self.num_problems = task.num_problems

    def to(self, device: str | torch.device) -> "ScaledTask":
        return ScaledTask(self.task.to(device), self.scale.to(device))

    def init_params(self) -> Params:
        return self.task.init_params()

    def loss(self, params: Params, step: int) -> Tensor:
        return self.task.loss(params, step) * self.scale
