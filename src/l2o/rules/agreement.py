"""A rule's steps scaled per coordinate by how long the gradient has kept its sign: ``SignAgreement(rule)``.

Delta-bar-delta's idea (Jacobs 1988), as Rprop uses it: each coordinate keeps a factor f, multiplied by ``up`` where
the gradient ∇_t agrees in sign with the recent ones (its moving average m at ``decay`` before this step; 0: the last
gradient) and by ``down`` where it turns, kept within [0.1, 10]; the wrapped rule's step is multiplied by
f^``power``. ``power`` 0 is the wrapped rule itself. The factor is the one the LSTM's ``agreement_factor`` input
reads (as log₁₀ f), so a learned rule can be taught this one by imitation
(``TrainConfig.imitate = "adam:0.316+agreement:0.7"``).

    rule = SignAgreement(Adam(lr=0.316), power=0.7)
    rule = SignAgreement({"name": "adam", "lr": 0.316})   # by settings, as read from a checkpoint

On the neural-art task it is the one hand-made rule measured ahead of tuned Adam at step 128 (docs/art.md). The
factor reads detached gradients, so it passes no meta-gradient; a learned rule inside it trains as it would alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from l2o.rules.wrapper import Wrapper
from l2o.tasks.base import Params

LOW, HIGH = 0.1, 10.0  # the factor's bounds


class AgreementState(NamedTuple):
    inner: Any  # the wrapped rule's state
    m: dict  # name -> the moving average of the gradient at ``decay``
    f: dict  # name -> each coordinate's factor


def agreement_factor(f, sign, up: float, down: float):
    """The factor after a step, from ``f`` and ``sign``, the sign of the gradient times its moving average before it
    (also what the LSTM's ``agreement_factor`` input accumulates)."""
    step = torch.where(sign > 0, up, torch.where(sign < 0, down, 1.0)).to(f.dtype)
    return (f * step).clamp(LOW, HIGH)


class SignAgreement(Wrapper):
    name = "agreement"
    State = AgreementState

    def __init__(self, rule, up: float = 1.2, down: float = 0.5, power: float = 1.0, decay: float = 0.5, *,
                 implementation: str = "auto"):
        if not up > 1 > down > 0:
            raise ValueError(f"up and down must satisfy up > 1 > down > 0, got up={up}, down={down}")
        if not power >= 0:
            raise ValueError(f"power must be >= 0, got {power}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        super().__init__(rule, implementation)
        self.up, self.down, self.power, self.decay = float(up), float(down), float(power), float(decay)

    def init(self, params: Params) -> AgreementState:
        return AgreementState(self.rule.init(params), {k: torch.zeros_like(p) for k, p in params.items()},
                              {k: torch.ones_like(p) for k, p in params.items()})

    def update(self, grads: Params, state: AgreementState, *, inplace: bool = False) -> tuple[Params, AgreementState]:
        updates, inner = self.rule.update(grads, state.inner, inplace=inplace)
        m, f, out = {}, {}, {}
        for k, g in grads.items():
            g = g.detach()
            f[k] = agreement_factor(state.f[k], torch.sign(g * state.m[k]), self.up, self.down)
            m[k] = self.decay * state.m[k] + (1 - self.decay) * g
            out[k] = updates[k] * f[k].pow(self.power).to(updates[k].dtype)
        return out, self._fresh(inner, state, (m, f), inplace)

    def config(self) -> dict:
        return {"name": self.name, "rule": self.rule.config(), "up": self.up, "down": self.down, "power": self.power,
                "decay": self.decay}
