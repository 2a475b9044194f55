"""The inner loop: run an update rule on a task for some steps and record f(θ_t) at every step.

    for t in start .. start+steps−1:
        ∇_t = ∇_θ f(θ_t)
        g_t, state = rule.update(∇_t, state)
        θ_{t+1} = θ_t + g_t

With ``meta=True`` the loop is differentiable with respect to the rule's parameters φ: θ_{t+1} depends
on φ through g_t, so the recorded losses can be summed into a meta-loss and back-propagated. By default
the gradient ∇_t enters the rule as a constant (∂∇_t/∂φ = 0, the paper's "second derivatives dropped"),
but f(θ_t) itself is still differentiated through every update; ``second_order=True`` keeps the
dependence of ∇_t on θ_t as well (Hessian-vector products in the backward pass).

With ``meta=False`` nothing is recorded for a meta-gradient and memory does not grow with ``steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from l2o.rules.base import UpdateRule, apply_updates
from l2o.tasks.base import Params, Task


@dataclass
class Unrolled:
    losses: Tensor  # (steps + 1, num_problems): f(θ_start), …, f(θ_{start+steps})
    params: Params  # θ_{start+steps}
    state: Any  # the rule's state after the last update
    imitation: Tensor | None = None  # (steps, num_problems) with a teacher: Σ(u − u_teacher)² / Σ u_teacher² per step
    teacher_state: Any = None  # the teacher's state after the last update


def unroll(
    rule: UpdateRule,
    task: Task,
    steps: int,
    *,
    params: Params | None = None,
    state: Any = None,
    start: int = 0,
    meta: bool = False,
    second_order: bool = False,
    callback: Callable[[int, Tensor], None] | None = None,
    teacher: tuple[UpdateRule, Any] | None = None,
) -> Unrolled:
    """Run ``rule`` on ``task`` for ``steps`` updates from ``params`` (default θ_0) and ``state``;
    ``callback(i, loss)``, if given, is called with each step's losses (i = 0 … steps), e.g. for a progress bar.
    ``teacher`` = (a rule, its state): it steps beside ``rule`` on the same gradients (never moving θ), and each
    step's relative squared distance between the two rules' updates is recorded (imitation, Chen et al. 2020)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if second_order and not meta:
        raise ValueError("second_order=True needs meta=True")
    if params is None:
        params = task.init_params()
    if state is None:
        state = rule.init(params)
    losses, imitation = [], []
    teacher_rule, teacher_state = teacher if teacher is not None else (None, None)
    with torch.enable_grad():
        for i in range(steps + 1):
            if not meta or not all(p.requires_grad for p in params.values()):
                params = {k: p.detach().requires_grad_() for k, p in params.items()}
            loss = task.loss(params, start + i)
            losses.append(loss if meta else loss.detach())
            if callback is not None:
                callback(i, loss.detach())
            if i == steps:
                break
            grads = torch.autograd.grad(
                loss.sum(), list(params.values()), retain_graph=meta, create_graph=second_order
            )
            grads = dict(zip(params, grads))
            if teacher_rule is not None:
                with torch.no_grad():
                    taught, teacher_state = teacher_rule.update({k: g.detach() for k, g in grads.items()},
                                                                teacher_state)
            if meta:
                updates, state = rule.update(grads, state)
                if teacher_rule is not None:
                    imitation.append(_distance(updates, taught))
                params = apply_updates(params, updates)
            else:
                with torch.no_grad():
                    updates, state = rule.update(grads, state)
                    if teacher_rule is not None:
                        imitation.append(_distance(updates, taught))
                    params = apply_updates(params, updates)
    if not meta:
        params = {k: p.detach() for k, p in params.items()}
    return Unrolled(torch.stack(losses), params, state, torch.stack(imitation) if imitation else None, teacher_state)


def _distance(updates: Params, taught: Params) -> Tensor:
    """(B,) Σ (u − u_teacher)² / Σ u_teacher² over each problem's coordinates: scale-free."""
    num = sum((updates[k] - taught[k]).pow(2).flatten(1).sum(1) for k in updates)
    den = sum(taught[k].pow(2).flatten(1).sum(1) for k in updates)
    return num / (den + 1e-30)
