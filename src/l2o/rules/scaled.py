"""A rule's updates multiplied by a constant factor: ``ScaledRule(rule, factor)``.

A diagnostic more than an optimizer: does a learned rule fall behind a tuned baseline because its steps are too
small or too large? (``docs/cifar/recipes/scale_check.py`` and ``docs/art/trials/scale_check.py`` ask it of the
shipped ``conv`` and ``art``.) The wrapped rule's state is its own; only the updates it returns are scaled, so
the factor never reaches its inputs.
"""

from __future__ import annotations

from typing import Any

from l2o.tasks.base import Params


class ScaledRule:
    name = "scaled"

    def __init__(self, rule, factor: float):
        factor = float(factor)
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor}")
        self.rule, self.factor = rule, factor

    def init(self, params: Params) -> Any:
        return self.rule.init(params)

    def update(self, grads: Params, state: Any, **kwargs) -> tuple[Params, Any]:
        updates, state = self.rule.update(grads, state, **kwargs)
        return {k: v * self.factor for k, v in updates.items()}, state

    def config(self) -> dict:
        return {"name": self.name, "factor": self.factor, "rule": self.rule.config()}
