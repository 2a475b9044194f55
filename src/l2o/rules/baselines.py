"""Hand-designed update rules as pure functions: SGD, NAG, RMSprop and Adam.

Each matches its ``torch.optim`` counterpart step for step (tests compare trajectories in float64).
Hyperparameters other than the learning rate default to torch.optim's and the paper's choices.

    SGD:      θ ← θ − η ∇
    NAG:      b ← μ b + ∇;              θ ← θ − η (∇ + μ b)                    (Sutskever et al. 2013)
    RMSprop:  v ← α v + (1 − α) ∇²;     θ ← θ − η ∇ / (√v + ε)                 (Tieleman & Hinton 2012)
    Adam:     m ← β₁ m + (1 − β₁) ∇;    v ← β₂ v + (1 − β₂) ∇²
              θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)                 (Kingma & Ba 2015)

References:
    torch.optim.SGD (nesterov=True), torch.optim.RMSprop, torch.optim.Adam.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

from l2o.tasks.base import Params


def _check_lr(lr: float) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")


class EmptyState(NamedTuple):
    pass


class MomentumState(NamedTuple):
    buf: Params


class RMSpropState(NamedTuple):
    square_avg: Params


class AdamState(NamedTuple):
    step: int
    exp_avg: Params
    exp_avg_sq: Params


def _zeros(params: Params) -> Params:
    return {k: torch.zeros_like(v) for k, v in params.items()}


@dataclass(frozen=True)
class SGD:
    lr: float
    name: str = "sgd"

    def __post_init__(self):
        _check_lr(self.lr)

    def init(self, params: Params) -> EmptyState:
        return EmptyState()

    def update(self, grads: Params, state: EmptyState, *, inplace: bool = False):
        return {k: -self.lr * g for k, g in grads.items()}, state

    def config(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NAG:
    lr: float
    momentum: float = 0.9
    name: str = "nag"

    def __post_init__(self):
        _check_lr(self.lr)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    def init(self, params: Params) -> MomentumState:
        return MomentumState(_zeros(params))

    def update(self, grads: Params, state: MomentumState, *, inplace: bool = False):
        buf = {k: self.momentum * state.buf[k] + g for k, g in grads.items()}
        updates = {k: -self.lr * (g + self.momentum * buf[k]) for k, g in grads.items()}
        return updates, MomentumState(buf)

    def config(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RMSprop:
    lr: float
    alpha: float = 0.99
    eps: float = 1e-8
    name: str = "rmsprop"

    def __post_init__(self):
        _check_lr(self.lr)
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {self.alpha}")

    def init(self, params: Params) -> RMSpropState:
        return RMSpropState(_zeros(params))

    def update(self, grads: Params, state: RMSpropState, *, inplace: bool = False):
        sq = {k: self.alpha * state.square_avg[k] + (1 - self.alpha) * g * g for k, g in grads.items()}
        updates = {k: -self.lr * g / (sq[k].sqrt() + self.eps) for k, g in grads.items()}
        return updates, RMSpropState(sq)

    def config(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Adam:
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name: str = "adam"

    def __post_init__(self):
        _check_lr(self.lr)
        for b in (self.beta1, self.beta2):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas must be in [0, 1), got {(self.beta1, self.beta2)}")

    def init(self, params: Params) -> AdamState:
        return AdamState(0, _zeros(params), _zeros(params))

    def update(self, grads: Params, state: AdamState, *, inplace: bool = False):
        t = state.step + 1
        m = {k: self.beta1 * state.exp_avg[k] + (1 - self.beta1) * g for k, g in grads.items()}
        v = {k: self.beta2 * state.exp_avg_sq[k] + (1 - self.beta2) * g * g for k, g in grads.items()}
        step_size = self.lr / (1 - self.beta1**t)
        bc2_sqrt = math.sqrt(1 - self.beta2**t)
        updates = {k: -step_size * m[k] / (v[k].sqrt() / bc2_sqrt + self.eps) for k in grads}
        return updates, AdamState(t, m, v)

    def config(self) -> dict:
        return asdict(self)


from l2o.rules.lbfgs import LBFGS  # noqa: E402 - a baseline with its own module

# the paper's four; L-BFGS is tuned and evaluated where asked for (``l2o tune --baselines ... lbfgs``)
BASELINES = {"sgd": SGD, "nag": NAG, "rmsprop": RMSprop, "adam": Adam, "lbfgs": LBFGS}


def from_spec(spec: str):
    """The baseline ``"NAME:LR"`` names (e.g. "adam:0.01", as imitation and warm starts take it), or None if
    ``spec`` is not one of the baselines with a positive learning rate. ``"NAME:LR+agreement:POWER"``: that baseline
    with its steps scaled by the sign-agreement factor to ``POWER`` (``l2o.rules.agreement``; POWER > 0)."""
    spec, plus, extra = spec.partition("+")
    name, _, lr = spec.partition(":")
    try:
        rate = float(lr)
    except ValueError:
        return None
    rule = BASELINES[name](lr=rate) if name in BASELINES and rate > 0 else None
    if not plus or rule is None:
        return rule
    what, _, power = extra.partition(":")
    try:
        power = float(power)
    except ValueError:
        return None
    from l2o.rules.agreement import SignAgreement

    return SignAgreement(rule, power=power) if what == "agreement" and power > 0 else None
