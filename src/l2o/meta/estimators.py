"""Meta-gradient estimators: how a truncation of an episode turns into a gradient for the rule's weights φ.

An estimator holds whatever it carries from one truncation to the next (for truncated BPTT: θ and the
rule's state); ``estimate`` fills the ``.grad`` of the rule's parameters and returns the truncation's
meta-loss, detached, for the loop's bookkeeping. The training loop (``l2o.meta.train``) owns everything
else — the schedule, clipping, the decision to skip a non-finite step, the meta-optimizer, EMA, validation —
so another estimator is a new class here, not a new branch there.

    carry = estimator.start(rule, task, seed)
    for k in range(truncations):
        loss, carry = estimator.estimate(rule, task, carry, k, objective)

``objective(losses, k)``: the meta-loss of truncation k from its recorded losses (``l2o.meta.objective``).
``seed``: the episode's problem seed, from which an estimator that draws random numbers draws them (so a resumed
run draws what an uninterrupted one did).

    TruncatedBPTT   the paper's: backpropagation through each truncation, biased towards short horizons
    PES             persistent evolution strategies: unbiased over the whole episode, no backpropagation

References:
    Andrychowicz et al. 2016 (truncated BPTT); Vicol, Metz and Sohl-Dickstein, "Unbiased gradient estimation
    in unrolled computation graphs with persistent evolution strategies", ICML 2021 (PES).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from l2o.meta.unroll import unroll
from l2o.rules.base import detach, tree_map, tree_tensors
from l2o.tasks.base import Task

Objective = Callable[[Tensor, int], Tensor]


class GradientEstimator(Protocol):
    name: str

    def start(self, rule: nn.Module, task: Task, seed: int = 0) -> Any:
        """What the first truncation of an episode on ``task`` starts from."""

    def estimate(self, rule: nn.Module, task: Task, carry: Any, truncation: int,
                 objective: Objective) -> tuple[Tensor, Any]:
        """Fill the rule's parameters' ``.grad`` with the meta-gradient estimate of ``truncation`` (leave them
        empty if the meta-loss is not finite); return the meta-loss (detached) and the next carry."""


class TruncatedBPTT:
    """Truncated backpropagation through time (Andrychowicz et al. 2016): unroll ``unroll`` steps
    differentiably, back-propagate the meta-loss through them, carry θ and the state on, detached.

    ``teacher``: a hand-designed rule to imitate (Chen et al. 2020): it steps beside the learned rule on the same
    gradients, and ``imitation`` × the mean relative squared distance between their updates is passed to the
    objective as an extra term of the meta-loss.

    ``remat``: backpropagate each truncation in segments of this many steps (0: in one piece). The truncation runs
    forward once without a graph, keeping θ and the state where each segment starts; then, from the last segment
    to the first, each segment is run again with its graph and back-propagated, its meta-loss term plus what the
    later segments' gradients say about its end (θ and the state). Memory is one segment's graph instead of the
    whole truncation's, at the price of one more forward pass, so that long truncations (less biased towards
    greedy steps) fit. The gradient is the same as in one piece, up to float rounding."""

    name = "tbptt"

    def __init__(self, unroll: int, second_order: bool = False, teacher=None, imitation: float = 0.0,
                 remat: int = 0):
        if remat < 0:
            raise ValueError(f"remat must be >= 0, got {remat}")
        self.unroll, self.second_order = unroll, second_order
        self.teacher, self.imitation = teacher, imitation
        self.remat = remat

    def start(self, rule: nn.Module, task: Task, seed: int = 0) -> tuple:
        params = task.init_params()
        if self.teacher is None:
            return params, rule.init(params)
        return params, rule.init(params), self.teacher.init(params)

    def advance(self, rule, task, carry, truncation):
        """Truncation ``truncation`` run without a meta-gradient (a warm-up of the episode); the next carry."""
        return self._forward(rule, task, carry, self.unroll, truncation * self.unroll)[1]

    def _teacher(self, carry):
        """The teacher and its state, as ``unroll`` takes them (None without one)."""
        return (self.teacher, carry[2]) if self.teacher is not None else None

    def _carry(self, out) -> tuple:
        """What the next truncation (or segment) starts from: θ, the state (and the teacher's), detached."""
        nxt = (detach(out.params), detach(out.state))
        return nxt if self.teacher is None else (*nxt, detach(out.teacher_state))

    def _forward(self, rule, task, carry, steps: int, start: int):
        """``steps`` steps from ``carry`` without a meta-gradient: the run and the next carry."""
        with torch.no_grad():
            out = unroll(rule, task, steps, params=carry[0], state=carry[1], start=start, teacher=self._teacher(carry))
        return out, self._carry(out)

    def estimate(self, rule, task, carry, truncation, objective):
        if 0 < self.remat < self.unroll:
            return self._estimate_in_segments(rule, task, carry, truncation, objective)
        out = unroll(rule, task, self.unroll, params=carry[0], state=carry[1], start=truncation * self.unroll,
                     meta=True, second_order=self.second_order, teacher=self._teacher(carry))
        loss = self._meta_loss(objective, out.losses, out.imitation, truncation)
        if bool(torch.isfinite(loss)):
            loss.backward()
        return loss.detach(), self._carry(out)

    def _meta_loss(self, objective, losses, imitation, truncation):
        if self.teacher is None:
            return objective(losses, truncation)
        return objective(losses, truncation, self.imitation * imitation.mean())

    def _estimate_in_segments(self, rule, task, carry, truncation, objective):
        """``estimate`` with ``remat``: see the class's docstring."""
        first = truncation * self.unroll
        starts = list(range(0, self.unroll, self.remat))
        bounds, losses, imitation = [], [], []
        now = tuple(carry)
        teacher = self.teacher is not None
        for i, k in enumerate(starts):  # forward, no graph: where each segment starts, and every loss
            bounds.append(now)
            out, now = self._forward(rule, task, now, min(self.remat, self.unroll - k), first + k)
            losses.append(out.losses if i == 0 else out.losses[1:])  # a segment's first loss is the last one's end
            imitation.append(out.imitation)
        loss = self._meta_loss(objective, torch.cat(losses), torch.cat(imitation) if teacher else None, truncation)
        if not bool(torch.isfinite(loss)):
            return loss.detach(), now
        weights = [w for w in rule.parameters() if w.requires_grad]
        after = None  # the meta-loss's gradient with respect to the end of the segment being back-propagated
        for i in reversed(range(len(starts))):
            params, state = bounds[i][:2]
            if i:  # θ and the state where the segment starts, as leaves whose gradient goes to the segment before
                params, state = tree_map(lambda t: t.detach().requires_grad_(t.is_floating_point()), (params, state))
            out = unroll(rule, task, min(self.remat, self.unroll - starts[i]), params=params, state=state,
                         start=first + starts[i], meta=True, second_order=self.second_order,
                         teacher=self._teacher(bounds[i]))
            live = losses[:i] + [out.losses if i == 0 else out.losses[1:]] + losses[i + 1:]
            taught = (imitation[:i] + [out.imitation] + imitation[i + 1:]) if teacher else None
            total = self._meta_loss(objective, torch.cat(live), torch.cat(taught) if teacher else None, truncation)
            if after is not None:
                ends = tree_tensors(out.params) + tree_tensors(out.state)
                total = total + sum((e * g).sum() for e, g in zip(ends, after) if g is not None and e.requires_grad)
            leaves = (tree_tensors(params) + tree_tensors(state)) if i else []
            inputs = weights + [t for t in leaves if t.requires_grad]
            torch.autograd.backward(total, inputs=inputs)
            after = [t.grad if t.requires_grad else None for t in leaves]
        return loss.detach(), now


class PES:
    """Persistent evolution strategies (Vicol et al. 2021). Each of ``pairs`` antithetic pairs of particles runs the
    episode's problems with φ ± ε, a fresh ε ~ N(0, σ²I) at every truncation, and keeps its own θ and rule state
    from one truncation to the next; each pair also keeps ξ, the sum of its ε so far. The estimate

        ĝ = 1 / (2 · pairs · σ²) · Σ_i ξ_i (L(φ + ε_i) − L(φ − ε_i))

    is unbiased for the gradient of the Gaussian-smoothed meta-loss of the whole episode (every earlier truncation
    included: no truncation bias), at the price of variance that grows with φ's size and the number of
    truncations. It needs no backpropagation, so it also works through steps that cannot be differentiated.
    The returned loss is the mean over the particles (φ itself is not run)."""

    name = "pes"

    def __init__(self, unroll: int, sigma: float = 0.01, pairs: int = 8):
        if sigma <= 0 or pairs < 1:
            raise ValueError(f"PES needs sigma > 0 and pairs >= 1, got {sigma}, {pairs}")
        self.unroll, self.sigma, self.pairs = unroll, sigma, pairs

    def start(self, rule: nn.Module, task: Task, seed: int = 0) -> dict:
        params = task.init_params()
        state = rule.init(params)
        size = sum(p.numel() for p in rule.parameters())
        device = next(rule.parameters()).device
        return {"seed": seed, "particles": [(params, state)] * (2 * self.pairs),
                "xi": torch.zeros(self.pairs, size, device=device)}

    def estimate(self, rule, task, carry, truncation, objective):
        weights = list(rule.parameters())
        phi = parameters_to_vector(weights).detach().clone()
        gen = torch.Generator().manual_seed(carry["seed"] * 1_000_003 + truncation)
        eps = (torch.randn(self.pairs, phi.numel(), generator=gen) * self.sigma).to(phi.device)
        xi = carry["xi"] + eps
        losses, particles = [], []
        try:
            for j, (params, state) in enumerate(carry["particles"]):
                sign = 1.0 if j % 2 == 0 else -1.0  # particles 2i and 2i + 1: φ + ε_i and φ − ε_i
                with torch.no_grad():
                    vector_to_parameters(phi + sign * eps[j // 2], weights)
                out = unroll(rule, task, self.unroll, params=params, state=state, start=truncation * self.unroll)
                losses.append(objective(out.losses, truncation).detach())
                particles.append((out.params, detach(out.state)))
        finally:
            with torch.no_grad():
                vector_to_parameters(phi, weights)  # back to φ, bit for bit
        losses = torch.stack(losses).view(self.pairs, 2)
        loss = losses.mean()
        if bool(torch.isfinite(loss)):
            grad = (xi * (losses[:, 0] - losses[:, 1]).unsqueeze(1)).sum(0) / (2 * self.pairs * self.sigma ** 2)
            offset = 0
            for w in weights:
                w.grad = grad[offset:offset + w.numel()].view_as(w).clone()
                offset += w.numel()
        return loss, {"seed": carry["seed"], "particles": particles, "xi": xi}


def make(cfg) -> GradientEstimator:
    """The estimator a run's settings name (``TrainConfig.estimator``)."""
    if cfg.estimator == "pes":
        return PES(cfg.unroll, cfg.pes_sigma, cfg.pes_pairs)
    if cfg.imitate:
        from l2o.rules.baselines import from_spec

        return TruncatedBPTT(cfg.unroll, cfg.second_order, from_spec(cfg.imitate), cfg.imitate_weight, cfg.remat)
    return TruncatedBPTT(cfg.unroll, cfg.second_order, remat=cfg.remat)
