"""Shared by the tests of rules that look at all coordinates of one optimizee: a batch of problems side by
side must give what each problem gives alone."""

import torch

from l2o.meta import unroll


def assert_problems_stay_apart(rule, family, steps: int = 4, problems: int = 2) -> None:
    task = family.sample("test", 0, problems)
    together = unroll(rule, task, steps).params
    for b in range(problems):
        one = type(task)(task.cfg, task.data, {k: v[b:b + 1] for k, v in task.theta0.items()}, task.seed)
        one.batch = lambda step, b=b: tuple(t[b:b + 1] for t in task.batch(step))  # the same minibatches
        alone = unroll(rule, one, steps).params
        for k in together:
            torch.testing.assert_close(together[k][b:b + 1], alone[k], rtol=1e-5, atol=1e-7)
