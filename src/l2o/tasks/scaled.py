"""Scale augmentation: the same problems with their objectives or their parameters rescaled.

``ScaledTask(task, scale)`` is ``task`` with problem i's loss multiplied by ``scale[i] > 0``. The
landscape (its minima, the path a scale-free optimizer takes) is unchanged; only the size of every
gradient is. A learned rule meta-trained on scaled copies of its problems cannot rely on the absolute
size of the gradients it sees; the hope is that it learns to normalise them per coordinate, as RMSprop
and Adam do, and so carries over to problems whose gradients are smaller or larger than its training
problems'. On the MNIST MLPs it did not (docs/mnist.md, trials g and h).

``ParamScaledTask(task, scale)`` reparametrises instead: the rule optimises θ' with θ = c ⊙ θ', so
problem f becomes θ' ↦ f(c ⊙ θ') started from θ_0 / c, with one factor c > 0 per coordinate. The
losses along the way are the network's own, but each coordinate's gradient is multiplied by c and its
curvature by c², so no fixed step size suits every coordinate: the rule has to adapt each coordinate's
step to what it observes there (Lv, Jiang and Li's "random scaling"). The shipped ``mnist``
optimizer was meta-trained with c ~ log-uniform[1/3, 3]; docs/mnist.md compares it with the same
recipe without rescaling.

References:
    Lv, Jiang and Li 2017, "Learning Gradient Descent: Better Generalization and Longer Horizons"
    (random scaling of the training functions' parameters, f(cθ)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from l2o.tasks.base import Params, Task, narrow


def _generator(spread: float, seed: int) -> torch.Generator:
    if not (math.isfinite(spread) and spread >= 1.0):
        raise ValueError(f"the scale spread must be a finite number >= 1, got {spread}")
    return torch.Generator().manual_seed(int(seed))


def _log_uniform(shape, spread: float, gen: torch.Generator) -> Tensor:
    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.exp((2.0 * u - 1.0) * math.log(spread)).float()


def log_uniform_scales(num_problems: int, spread: float, seed: int) -> Tensor:
    """``num_problems`` factors drawn log-uniformly from [1/spread, spread] with ``seed``."""
    return _log_uniform(num_problems, spread, _generator(spread, seed))


def log_uniform_param_scales(params: Params, spread: float, seed: int) -> Params:
    """One factor per coordinate of ``params``, drawn log-uniformly from [1/spread, spread] with ``seed``."""
    gen = _generator(spread, seed)
    return {name: _log_uniform(params[name].shape, spread, gen) for name in sorted(params)}


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

    def narrow(self, start: int, length: int) -> "ScaledTask":
        return ScaledTask(narrow(self.task, start, length), self.scale[start:start + length])


class ParamScaledTask:
    """``task`` reparametrised as θ = c ⊙ θ': losses f(c ⊙ θ'), started from θ_0 / c."""

    def __init__(self, task: Task, scale: Params):
        theta0 = task.init_params()
        if set(scale) != set(theta0):
            raise ValueError(f"need one scale tensor per parameter {sorted(theta0)}, got {sorted(scale)}")
        scale = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in scale.items()}
        for name, value in scale.items():
            if value.shape != theta0[name].shape:
                raise ValueError(f"scale of {name!r} has shape {tuple(value.shape)}, "
                                 f"the parameter {tuple(theta0[name].shape)}")
            if not bool(torch.isfinite(value).all() and (value > 0).all()):
                raise ValueError(f"scales of {name!r} must be finite and positive")
        self.task = task
        self.scale = {k: v.to(theta0[k].device) for k, v in scale.items()}
        self.num_problems = task.num_problems

    def to(self, device: str | torch.device) -> "ParamScaledTask":
        return ParamScaledTask(self.task.to(device), {k: v.to(device) for k, v in self.scale.items()})

    def init_params(self) -> Params:
        return {k: v / self.scale[k] for k, v in self.task.init_params().items()}

    def loss(self, params: Params, step: int) -> Tensor:
        return self.task.loss({k: v * self.scale[k] for k, v in params.items()}, step)

    def narrow(self, start: int, length: int) -> "ParamScaledTask":
        return ParamScaledTask(narrow(self.task, start, length),
                               {k: v[start:start + length] for k, v in self.scale.items()})
