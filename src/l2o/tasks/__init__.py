"""Task families: the optimizees f(θ) a rule is trained and evaluated on."""

from l2o.tasks.base import SPLITS, Params, Task, TaskFamily, split_generator
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig, MLPFamily
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily, QuadraticTask
from l2o.tasks.scaled import ParamScaledTask, ScaledTask, log_uniform_param_scales, log_uniform_scales

# name -> the family's config dataclass; MNIST and Fashion-MNIST read their data from the data step
FAMILIES = {"quadratic": QuadraticConfig, "mnist": MLPConfig, "fashion-mnist": MLPConfig}


def make_family(name: str, *, data_dir=None, **config) -> TaskFamily:
    """Build a task family from its name and settings (as written by ``family.config()``); ``data_dir``
    is where the data step put the datasets (default: $L2O_DATA or ~/.cache/l2o/data)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown task family {name!r}; available: {', '.join(sorted(FAMILIES))}")
    if name == "quadratic":
        return QuadraticFamily(**config)
    return ImageMLPFamily(MLPConfig(**config), dataset=name, data_dir=data_dir)


__all__ = [
    "SPLITS", "Params", "Task", "TaskFamily", "split_generator", "make_family",
    "QuadraticConfig", "QuadraticFamily", "QuadraticTask", "FAMILIES", "ImageMLPFamily", "MLPConfig", "MLPFamily",
    "ParamScaledTask", "ScaledTask", "log_uniform_param_scales", "log_uniform_scales",
]
