"""``LearnedOptimizer``: any saved update rule as a ``torch.optim.Optimizer`` for anybody's model.

    opt = l2o.LearnedOptimizer(model.parameters(), checkpoint="quadratic")
    loss = loss_fn(model(x), y); opt.zero_grad(); loss.backward(); opt.step()

For every parameter p with a gradient, one step is

    u, s_p ← rule.update(∇p, s_p);      p ← p + lr · u

where s_p is the rule's state for p (for the coordinatewise LSTM: the hidden and cell state of every
coordinate of p, kept in ``self.state[p]`` so that ``state_dict()`` saves it). ``lr`` multiplies the
learned update; 1.0 applies the rule as it was meta-trained, and learning-rate schedulers from
``torch.optim.lr_scheduler`` scale it like any learning rate.

Loading never runs code from a file: checkpoints are safetensors with JSON settings.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from l2o.checkpoint import load_rule
from l2o.rules.base import tree_tensors, tree_unflatten


def _check_lr(lr) -> None:
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a non-negative finite number (1.0 = as meta-trained), got {lr!r}")


class LearnedOptimizer(Optimizer):
    """A learned update rule as a ``torch.optim.Optimizer``.

    ``checkpoint``: a shipped optimizer's name (``l2o.pretrained()``), a .safetensors checkpoint, or a
    training run's folder. ``lr``: the update scale (per parameter group; schedulers may change it).
    ``implementation``: the learned rule's ("auto": the compiled fused kernel for float32 CPU parameters
    where it is available, else PyTorch; "torch"; "fused"), resolved once per device and dtype.
    """

    def __init__(self, params, checkpoint: str = "quadratic", lr: float = 1.0, implementation: str = "auto"):
        _check_lr(lr)
        self.implementation = implementation
        self.rule = load_rule(checkpoint, implementation=implementation).requires_grad_(False).eval()
        self.checkpoint = str(checkpoint)
        self._rules: dict[tuple, torch.nn.Module] = {}
        super().__init__(params, {"lr": lr})

    def add_param_group(self, param_group: dict) -> None:
        if "lr" in param_group:
            _check_lr(param_group["lr"])
        super().add_param_group(param_group)

    def _rule_for(self, p: torch.Tensor) -> torch.nn.Module:
        key = (p.device, p.dtype)
        if key not in self._rules:
            self._rules[key] = self.rule if key == (torch.device("cpu"), torch.float32) else \
                load_rule(self.checkpoint, implementation=self.implementation).requires_grad_(False).eval().to(
                    device=p.device, dtype=p.dtype)
        return self._rules[key]

    @torch.no_grad()
    def step(self, closure=None):
        """One learned update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LearnedOptimizer does not support sparse gradients")
                if p.is_complex():
                    raise RuntimeError("LearnedOptimizer does not support complex parameters; "
                                       "view them as real with torch.view_as_real")
                rule = self._rule_for(p)
                template = rule.init({"p": p.new_empty(0)})
                state = self.state[p]
                if "rule_state" not in state:
                    state["step"] = 0
                    state["rule_state"] = tree_tensors(rule.init({"p": p}))
                rule_state = tree_unflatten(template, state["rule_state"])
                updates, rule_state = rule.update({"p": p.grad}, rule_state, inplace=True)
                p.add_(updates["p"], alpha=group["lr"])
                state["rule_state"] = tree_tensors(rule_state)
                state["step"] += 1
        return loss
