"""Task families: the optimizees f(θ) a rule is trained and evaluated on."""

from l2o.tasks.base import SPLITS, Params, Task, TaskFamily, split_generator
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily, QuadraticTask

FAMILIES = {"quadratic": QuadraticFamily}


def make_family(name: str, **config) -> TaskFamily:
    """Build a task family from its name and settings (as written by ``family.config()``)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown task family {name!r}; available: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name](**config)


__all__ = [
    "SPLITS", "Params", "Task", "TaskFamily", "split_generator", "make_family",
    "QuadraticConfig", "QuadraticFamily", "QuadraticTask", "FAMILIES",
]
