"""``LearnedOptimizer``: any saved update rule as a ``torch.optim.Optimizer`` for anybody's model.

    opt = l2o.LearnedOptimizer(model.named_parameters(), checkpoint="quadratic")
    loss = loss_fn(model(x), y); opt.zero_grad(); loss.backward(); opt.step()

Each step makes **one rule call per parameter group** (per device and dtype within it): the group's
parameters that have a gradient are one optimizee, passed to the rule under their real names (given
``named_parameters()``; else ``"GROUP.INDEX"``) with a problem axis of 1,

    u, s ← rule.update({name: ∇p}, s);      p ← p + lr · u[name]

where s is the rule's state for those parameters. It lives in one buffer per group, device and dtype
(for the coordinatewise LSTM: the hidden and cell state of every coordinate, written in place), and each
parameter's ``self.state[p]["rule_state"]`` holds views of its share, so ``state_dict()`` saves it without
copies and ``load_state_dict()`` resumes the exact trajectory (``torch.load(weights_only=True)`` reads it).
A parameter that gains or loses a gradient between steps keeps its own state; the buffer is rebuilt only
then. With a routed rule (``l2o.rules.Routed``) a group may name the sub-rule its parameters go to:
``{"params": ..., "rule": "fc"}``. ``lr`` multiplies the learned update; 1.0 applies the rule as it was meta-trained, and schedulers
from ``torch.optim.lr_scheduler`` scale it like any learning rate.

Loading never runs code from a file: checkpoints are safetensors with JSON settings.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from l2o.checkpoint import load_rule
from l2o.rules.base import tree_leaves, tree_rebuild


def _check_lr(lr) -> None:
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a non-negative finite number (1.0 = as meta-trained), got {lr!r}")


class LearnedOptimizer(Optimizer):
    """A learned update rule as a ``torch.optim.Optimizer``.

    ``params``: parameters, ``named_parameters()`` (the rule then sees the real names), or parameter groups.
    ``checkpoint``: a shipped optimizer's name (``l2o.pretrained()``), a .safetensors checkpoint, or a
    training run's folder. ``lr``: the update scale (per parameter group; schedulers may change it).
    ``implementation``: the learned rule's ("auto": the compiled fused kernel for float32 CPU parameters
    where it is available, else PyTorch; "torch"; "fused"), resolved once per device and dtype.
    ``settings``: changes to the rule's saved settings that keep its weights, e.g. ``{"memory": "window"}``
    to run an NTM-BFGS checkpoint as NTM-L-BFGS on a model too large for its full memory.
    """

    def __init__(self, params, checkpoint: str = "quadratic", lr: float = 1.0, implementation: str = "auto",
                 settings: dict | None = None):
        _check_lr(lr)
        self.implementation = implementation
        self.checkpoint = str(checkpoint)
        self.rule = load_rule(checkpoint, implementation=implementation, settings=settings).requires_grad_(False).eval()
        for method in ("split_state", "join_state"):
            if not callable(getattr(self.rule, method, None)):
                raise TypeError(f"the rule in {checkpoint} has no {method}(); LearnedOptimizer keeps per-parameter "
                                f"state through it")
        self._rules: dict[tuple, torch.nn.Module] = {}
        self._joined: dict[tuple, tuple] = {}  # (group, device, dtype) -> (its parameters' ids, the joined state)
        super().__init__(params, {"lr": lr})

    def add_param_group(self, param_group: dict) -> None:
        if "lr" in param_group:
            _check_lr(param_group["lr"])
        if "rule" in param_group:  # the label of a routed rule's sub-rule that this group's parameters go to
            if not callable(getattr(self.rule, "rule", None)):
                raise ValueError(f"a parameter group names the sub-rule {param_group['rule']!r}, but {self.checkpoint} "
                                 f"is not a routed rule")
            self.rule.rule(param_group["rule"])  # an unknown label is an error now, not at the first step
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._joined.clear()  # the loaded per-parameter states are joined afresh at the next step

    def _rule_for(self, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
        key = (device, dtype)
        if key not in self._rules:
            self._rules[key] = self.rule if key == (torch.device("cpu"), torch.float32) else \
                load_rule(self.checkpoint, implementation=self.implementation).requires_grad_(False).eval().to(
                    device=device, dtype=dtype)
        return self._rules[key]

    def _state_for(self, key: tuple, rule, members: list[tuple[str, torch.Tensor]]):
        """The joined state of ``members`` (name, parameter), rebuilt only when the members change."""
        ids = tuple(id(p) for _, p in members)
        cached = self._joined.get(key)
        if cached is not None and cached[0] == ids:
            return cached[1]
        parts = {}
        for name, p in members:
            one = {name: p.detach().unsqueeze(0)}
            fresh = rule.split_state(rule.init(one), one)[name]
            st = self.state[p]
            if "rule_state" not in st:
                st["step"] = 0
                parts[name] = fresh
            else:
                parts[name] = tree_rebuild(fresh, st["rule_state"])
        params = {name: p.detach().unsqueeze(0) for name, p in members}
        state = rule.join_state(parts, params)
        self._keep(key, ids, rule, state, params, members)
        return state

    def _keep(self, key, ids, rule, state, params, members) -> None:
        views = rule.split_state(state, params)
        for name, p in members:
            self.state[p]["rule_state"] = tree_leaves(views[name])
        self._joined[key] = (ids, state)

    @torch.no_grad()
    def step(self, closure=None):
        """One learned update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g, group in enumerate(self.param_groups):
            names = group.get("param_names") or [f"{g}.{i}" for i in range(len(group["params"]))]
            buckets: dict[tuple, list[tuple[str, torch.Tensor]]] = {}
            for name, p in zip(names, group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LearnedOptimizer does not support sparse gradients")
                if p.is_complex():
                    raise RuntimeError("LearnedOptimizer does not support complex parameters; "
                                       "view them as real with torch.view_as_real")
                buckets.setdefault((p.device, p.dtype), []).append((name, p))
            for (device, dtype), members in buckets.items():
                rule = self._rule_for(device, dtype)
                if "rule" in group:
                    rule = rule.rule(group["rule"])
                key = (g, device, dtype)
                state = self._state_for(key, rule, members)
                grads = {name: p.grad.unsqueeze(0) for name, p in members}
                updates, new_state = rule.update(grads, state, inplace=True)
                if any(a is not b for a, b in zip(tree_leaves(new_state), tree_leaves(state))):
                    params = {name: p.detach().unsqueeze(0) for name, p in members}
                    self._keep(key, self._joined[key][0], rule, new_state, params, members)
                for name, p in members:
                    p.add_(updates[name].squeeze(0), alpha=group["lr"])
                    self.state[p]["step"] += 1
        return loss
