"""Task families: the optimizees f(θ) a rule is trained and evaluated on.

Each family's module registers it by name (``l2o.tasks.registry``); ``make_family(name, **settings)``
builds one. Adding a family is adding a module to this folder that calls ``register_family``: every module
here is imported below, so it registers itself.
"""

import importlib
import pkgutil

from l2o.tasks.base import SPLITS, Params, Task, TaskFamily, split_generator
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig, MLPFamily
from l2o.tasks.module import ModuleFamily, ModuleTask
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily, QuadraticTask
from l2o.tasks.registry import FamilyEntry, families, family, make_family, register_family
from l2o.tasks.scaled import ParamScaledTask, ScaledTask, log_uniform_param_scales, log_uniform_scales

for _module in pkgutil.iter_modules(__path__):  # every family's module, so that each registers itself
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "SPLITS", "Params", "Task", "TaskFamily", "split_generator", "make_family", "register_family", "families",
    "family", "FamilyEntry", "QuadraticConfig", "QuadraticFamily", "QuadraticTask", "ImageMLPFamily", "MLPConfig",
    "MLPFamily", "ParamScaledTask", "ScaledTask", "log_uniform_param_scales", "log_uniform_scales",
    "ModuleFamily", "ModuleTask",
]
