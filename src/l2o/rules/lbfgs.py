"""L-BFGS as a pure update rule, vectorised over problems: the quasi-Newton baseline beside SGD, NAG,
RMSprop and Adam (NTM-BFGS claims to learn BFGS-like behaviour).

Per optimizee (all its coordinates together, ``per_problem``), with the last ``history`` accepted pairs
s_k = θ_{k+1} − θ_k, y_k = ∇_{k+1} − ∇_k (a pair is accepted when s·y > 1e-10), the two-loop recursion
gives d = −H ∇ with H's initial scale γ = s·y / y·y of the newest accepted pair; the step is t·d with a
fixed learning rate t (tuned on the grid like the others) and **no line search**; the first step is scaled
by min(1, 1/‖∇‖₁) as torch.optim.LBFGS scales it. Step for step it is ``torch.optim.LBFGS(lr=t,
max_iter=1, history_size=history, line_search_fn=None)`` on each problem (tested in float64), except
that it never stops early (torch's tolerances).

References:
    Nocedal & Wright, Numerical Optimization, Algorithm 7.4; torch.optim.LBFGS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from l2o.rules.base import from_per_problem, per_problem
from l2o.tasks.base import Params


class LBFGSState(NamedTuple):
    s: Tensor  # (B, history, n) accepted steps, a ring per problem
    y: Tensor  # (B, history, n) their gradient differences
    rho: Tensor  # (B, history) 1 / s·y
    accepted: Tensor  # (B,) pairs accepted so far (the ring's write position is accepted % history)
    gamma: Tensor  # (B,) the initial inverse-Hessian scale
    prev_grad: Tensor  # (B, n)
    prev_step: Tensor  # (B, n) the last update applied
    steps: int


@dataclass(frozen=True)
class LBFGS:
    lr: float
    history: int = 10
    name: str = "lbfgs"

    def __post_init__(self):
        from l2o.rules.baselines import _check_lr

        _check_lr(self.lr)
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history}")

    def init(self, params: Params) -> LBFGSState:
        flat = per_problem(params)
        B, n = flat.shape
        zeros = flat.new_zeros
        return LBFGSState(zeros(B, self.history, n), zeros(B, self.history, n), zeros(B, self.history),
                          torch.zeros(B, dtype=torch.long, device=flat.device), flat.new_ones(B), zeros(B, n),
                          zeros(B, n), 0)

    def update(self, grads: Params, state: LBFGSState, *, inplace: bool = False):
        g = per_problem(grads).detach()
        B, m = g.shape[0], self.history
        rows = torch.arange(B, device=g.device)
        S, Y, rho, accepted, gamma = state.s, state.y, state.rho, state.accepted, state.gamma
        if state.steps > 0:  # the pair from the last step
            s, y = state.prev_step, g - state.prev_grad
            ys = (s * y).sum(1)
            ok = ys > 1e-10
            if bool(ok.any()):
                S, Y, rho = S.clone(), Y.clone(), rho.clone()
                slot = accepted % m
                S[rows[ok], slot[ok]] = s[ok]
                Y[rows[ok], slot[ok]] = y[ok]
                rho[rows[ok], slot[ok]] = 1.0 / ys[ok]
                gamma = torch.where(ok, ys / (y * y).sum(1).clamp_min(1e-30), gamma)
                accepted = accepted + ok.long()
        q = -g
        alphas = []
        for age in range(min(m, int(accepted.max()) if state.steps > 0 else 0)):  # newest to oldest
            idx = (accepted - 1 - age) % m
            valid = (age < accepted).to(g.dtype)
            a = rho[rows, idx] * valid * (S[rows, idx] * q).sum(1)
            q = q - a.unsqueeze(1) * Y[rows, idx]
            alphas.append((idx, valid, a))
        r = q * gamma.unsqueeze(1)
        for idx, valid, a in reversed(alphas):  # oldest to newest
            beta = rho[rows, idx] * valid * (Y[rows, idx] * r).sum(1)
            r = r + (a - beta).unsqueeze(1) * S[rows, idx]
        if state.steps == 0:
            t = torch.clamp(1.0 / g.abs().sum(1), max=1.0) * self.lr
        else:
            t = torch.full((B,), self.lr, dtype=g.dtype, device=g.device)
        step = r * t.unsqueeze(1)
        return from_per_problem(step, grads), LBFGSState(S, Y, rho, accepted, gamma, g, step, state.steps + 1)

    def config(self) -> dict:
        return asdict(self)
