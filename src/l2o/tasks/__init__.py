"""Task families: the optimizees f(θ) a rule is trained and evaluated on.

Each family's module registers it by name (``l2o.tasks.registry``); ``make_family(name, **settings)``
builds one. Adding a family is adding a module that calls ``register_family`` (and, inside this package,
importing it below).
"""

from l2o.tasks.base import SPLITS, Params, Task, TaskFamily, split_generator
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig, MLPFamily
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily, QuadraticTask
from l2o.tasks.registry import FamilyEntry, families, family, make_family, register_family
from l2o.tasks.scaled import ParamScaledTask, ScaledTask, log_uniform_param_scales, log_uniform_scales

__all__ = [
    "SPLITS", "Params", "Task", "TaskFamily", "split_generator", "make_family", "register_family", "families",
    "family", "FamilyEntry", "QuadraticConfig", "QuadraticFamily", "QuadraticTask", "ImageMLPFamily", "MLPConfig",
    "MLPFamily", "ParamScaledTask", "ScaledTask", "log_uniform_param_scales", "log_uniform_scales",
]
