"""Task families by name: each family's module registers itself, and ``make_family`` and the CLI read the
registry, so adding a family means adding a file (or, outside this package, registering it in your code
or through the ``l2o.families`` entry point group) — never editing a chain of cases.

    @register_family("quadratic", config=QuadraticConfig, flag_prefix="quadratic-")
    def _quadratic(config: QuadraticConfig, data_dir=None) -> QuadraticFamily:
        return QuadraticFamily(config)

``config``: the family's settings dataclass (its fields become ``make_family`` keywords and the CLI's
``--{flag_prefix}{field}`` flags); families that share a dataclass share its flags. ``needs_data``: the
family reads a dataset that ``l2o data NAME`` fetches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from l2o.tasks.base import TaskFamily


@dataclass(frozen=True)
class FamilyEntry:
    name: str
    build: Callable[..., TaskFamily]  # build(config, data_dir=None) -> the family
    config: type  # the settings dataclass
    flag_prefix: str  # the CLI's flags for its settings: --{flag_prefix}{field}
    needs_data: bool = False
    description: str = ""


_FAMILIES: dict[str, FamilyEntry] = {}
_plugins_loaded = False


def register_family(name: str, *, config: type, flag_prefix: str, needs_data: bool = False, description: str = ""):
    """Decorator: register ``build(config, data_dir=None)`` as the family ``name``."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config must be a dataclass, got {config!r}")

    def decorate(build: Callable[..., TaskFamily]) -> Callable[..., TaskFamily]:
        if name in _FAMILIES and _FAMILIES[name].build is not build:
            raise ValueError(f"a task family named {name!r} is already registered")
        _FAMILIES[name] = FamilyEntry(name, build, config, flag_prefix, needs_data, description)
        return build

    return decorate


def _load_plugins() -> None:
    """Families that other installed packages declare under the ``l2o.families`` entry point group."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="l2o.families"):
        ep.load()  # importing the module registers its families


def families() -> dict[str, FamilyEntry]:
    """Every registered family, by name."""
    _load_plugins()
    return dict(_FAMILIES)


def family(name: str) -> FamilyEntry:
    known = families()
    if name not in known:
        raise ValueError(f"unknown task family {name!r}; available: {', '.join(sorted(known))}")
    return known[name]


def make_family(name: str, *, data_dir=None, **config: Any) -> TaskFamily:
    """Build a task family from its name and settings (as written by ``family.config()``); ``data_dir``
    is where the data step put the datasets (default: $L2O_DATA or ~/.cache/l2o/data)."""
    entry = family(name)
    try:
        settings = entry.config(**config)
    except TypeError as e:
        fields = ", ".join(f.name for f in dataclasses.fields(entry.config))
        raise ValueError(f"task family {name!r} takes the settings {fields}: {e}") from None
    return entry.build(settings, data_dir=data_dir)
