"""Which problems an episode of meta-training draws: a seed per (run seed, episode), and the augmentations
applied to them.

Episode e of a run with seed s draws its training problems from the family's "train" stream with
``problem_seed(s, e)``: a stream per run seed, the same on a resume, so a run is a function of its settings.
Several processes (``l2o.meta.distributed``) draw the same batch and each optimises its ``part`` of it, so the
problems of an episode never depend on the number of processes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from l2o.tasks.base import Task, TaskFamily, narrow
from l2o.tasks.scaled import ParamScaledTask, ScaledTask, log_uniform_param_scales, log_uniform_scales

SEED_STRIDE = 1_000_003  # episodes between the streams of consecutive run seeds
PARAM_SCALE_OFFSET = 2**40


def problem_seed(seed: int, episode: int) -> int:
    """The seed of the training problems of ``episode`` in a run seeded ``seed``."""
    if episode < 0 or seed < 0:
        raise ValueError(f"seed and episode must be >= 0, got {seed}, {episode}")
    return episode + seed * SEED_STRIDE


def training_task(family: TaskFamily, cfg, episode: int, *, part: tuple[int, int] | None = None,
                  device: str | torch.device = "cpu") -> tuple[Task, Tensor | None]:
    """The episode's batch of ``cfg.problems`` training problems, augmented as ``cfg`` says, on ``device``;
    and the problems' objective scales (None without objective-scale augmentation). ``part`` = (first, number):
    only those problems of the batch, each exactly as in the whole batch."""
    seed = problem_seed(cfg.seed, episode)
    task = family.sample("train", seed, cfg.problems)
    scale = None
    if cfg.scale_spread > 1.0:  # objective-scale augmentation; the meta-loss divides it out
        scale = log_uniform_scales(cfg.problems, cfg.scale_spread, seed)
        task = ScaledTask(task, scale)
        scale = scale.to(device)
    if cfg.param_scale_spread > 1.0:  # parameter-scale augmentation: f(c ⊙ θ'), from θ_0 / c
        task = ParamScaledTask(task, log_uniform_param_scales(
            task.init_params(), cfg.param_scale_spread, seed + PARAM_SCALE_OFFSET))
    if part is not None:
        task = narrow(task, *part)
        scale = scale[part[0]:part[0] + part[1]] if scale is not None else None
    task = task.to(device)
    if getattr(cfg, "warm_start", ""):  # started where K steps of a baseline got to (after narrowing: per problem)
        from l2o.rules.baselines import BASELINES
        from l2o.tasks.warm import SELF, WarmStartedTask, parse, warm_up_steps

        name, lr, _ = parse(cfg.warm_start)
        if name != SELF:  # "self": the training loop runs the rule itself first
            task = WarmStartedTask(task, BASELINES[name](lr=lr), warm_up_steps(cfg.warm_start, seed))
    return task, scale
