"""What the rules that wrap another rule share: ``Plateau``, ``SpikeCut`` and ``SignAgreement`` scale a rule's steps
by a factor each keeps in its own state, a NamedTuple whose first field is the wrapped rule's state and whose other
fields are dicts by parameter name (so that ``LearnedOptimizer`` can keep it per parameter)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from l2o.rules.base import implementation_of
from l2o.tasks.base import Params


class Wrapper(nn.Module):
    State: type  # the subclass's NamedTuple: (inner, then dicts by parameter name)

    def __init__(self, rule, implementation: str):
        super().__init__()
        from l2o.rules import make_rule  # the wrapped rule given by its settings (as read from a checkpoint)

        self.rule = make_rule(**rule, implementation=implementation) if isinstance(rule, dict) else rule

    @staticmethod
    def _per_problem(params: Params, value: float) -> dict:
        """One number per problem and parameter tensor, ``value`` everywhere: (B,) per name, float32 whatever the
        parameters' dtype (counts stay exact to 2^24 steps)."""
        return {k: torch.full((p.shape[0],), value, dtype=torch.float32, device=p.device) for k, p in params.items()}

    def _fresh(self, inner: Any, state, fresh: tuple[dict, ...], inplace: bool):
        """The new state from the wrapped rule's and the wrapper's new buffers; in place, the old buffers take the new
        values (matched by name, whatever order the gradients come in), so that LearnedOptimizer need not re-split
        the state each step."""
        if inplace:
            for old, new in zip(state[1:], fresh):
                for k in new:
                    old[k].copy_(new[k])
            fresh = tuple(state[1:])
        return self.State(inner, *fresh)

    def split_state(self, state, params: Params) -> dict[str, Any]:
        inner = self.rule.split_state(state.inner, params)
        return {k: self.State(inner[k], *({k: part[k]} for part in state[1:])) for k in params}

    def join_state(self, parts: dict[str, Any], params: Params):
        inner = self.rule.join_state({k: parts[k].inner for k in params}, params)
        return self.State(inner, *({k: parts[k][i][k] for k in params} for i in range(1, len(self.State._fields))))

    def reset_parameters(self) -> None:
        reset = getattr(self.rule, "reset_parameters", None)
        if callable(reset):
            reset()

    def implementation_info(self) -> dict:
        return implementation_of(self.rule)
