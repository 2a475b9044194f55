"""The update-rule protocol shared by the learned optimizer and the hand-designed baselines.

An update rule is a pair of pure functions, as optax's ``GradientTransformation``::

    state = rule.init(params)
    updates, state = rule.update(grads, state)
    params = {k: params[k] + updates[k] for k in params}

``params``, ``grads`` and ``updates`` are ``dict[str, Tensor]`` with the same keys and shapes. Neither
function writes into its arguments, so an unroll of many steps stays differentiable with respect to
the rule's own parameters (for the learned rule) and ``state`` can be detached at a truncation boundary.
States are NamedTuples of tensors (and Python numbers), or dicts of them.

Names and problems. The keys are the optimizee's parameter names (``w0``, ``b0``, ``layer1.0.conv1.weight``:
a task's own, or a model's ``named_parameters()`` through ``LearnedOptimizer``), and the first axis of every
tensor is the **problem axis**: B independent optimizees side by side (B = 1 for one model). A rule that
treats coordinates one by one (SGD, Adam, the coordinatewise LSTM) may ignore both; a rule that needs all
coordinates of one optimizee (a norm, an average, attention across coordinates) takes them per problem
and contiguous with ``per_problem(grads)`` — one copy, as flattening for the LSTM costs — and maps its
result back with ``from_per_problem``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import Tensor

from l2o.tasks.base import Params


@runtime_checkable
class UpdateRule(Protocol):
    name: str

    def init(self, params: Params) -> Any:
        """The rule's state for ``params`` before the first step."""

    def update(self, grads: Params, state: Any, *, inplace: bool = False) -> tuple[Params, Any]:
        """Updates to add to the parameters, and the next state.

        ``inplace=True`` allows the rule to write the next state into the buffers of ``state`` (the
        caller promises never to use ``state`` again); the result must be used either way.
        """

    def config(self) -> dict:
        """JSON-serialisable settings from which ``make_rule(**config)`` rebuilds the rule."""


def num_problems(tensors: Params) -> int:
    """The size of the problem axis shared by every tensor of ``tensors``."""
    sizes = {name: t.shape[0] if t.dim() else None for name, t in tensors.items()}
    distinct = set(sizes.values())
    if not tensors or len(distinct) != 1 or None in distinct:
        raise ValueError(f"every tensor needs the same leading problem axis; got leading sizes {sizes}")
    return distinct.pop()


def per_problem(tensors: Params) -> Tensor:
    """``(B, N)``: row b holds every coordinate of problem b, tensor after tensor in the dict's order."""
    B = num_problems(tensors)
    return torch.cat([t.reshape(B, -1) for t in tensors.values()], dim=1)


def from_per_problem(flat: Tensor, like: Params) -> Params:
    """Split ``(B, N)`` rows back into tensors shaped as ``like`` (the inverse of ``per_problem``)."""
    sizes = [t[0].numel() if t.dim() else 1 for t in like.values()]
    if sum(sizes) != flat.shape[1]:
        raise ValueError(f"{flat.shape[1]} coordinates per problem, the tensors have {sum(sizes)}")
    out, start = {}, 0
    for (name, t), n in zip(like.items(), sizes):
        out[name] = flat[:, start:start + n].reshape(t.shape)
        start += n
    return out


def implementation_of(rule: Any) -> dict:
    """What computes ``rule``'s steps, as recorded with every run, checkpoint and result:
    ``{"implementation": "torch" | "fused", "kernel": the compiled build's name or None}``."""
    info = getattr(rule, "implementation_info", None)
    return info() if callable(info) else {"implementation": "torch", "kernel": None}


def _without_builds(info: Any) -> Any:
    if isinstance(info, dict):
        return {k: _without_builds(v) for k, v in info.items() if k != "kernel"}
    return info


def same_implementation(a: dict | None, b: dict | None) -> bool:
    """Whether two implementation records (``implementation_of``) run the same code path, the compiled kernel's
    build aside: another build of the kernel (another compiler run, CPU or source revision that leaves its
    arithmetic alone) changes at most float rounding, so a result it computed is reused, under its own record,
    as a meta-training run is resumed across builds."""
    return _without_builds(a) == _without_builds(b)


def weights_sha(rule: torch.nn.Module) -> str:
    """A fingerprint of a learned rule's weights, so results of other weights are never reused."""
    h = hashlib.sha256()
    for k, v in sorted(rule.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def describe_implementation(rule: Any) -> str:
    """One sentence for results pages: which implementation computed the learned rule."""
    info = implementation_of(rule)
    if info["implementation"] == "fused":
        return f"Learned optimizer computed by the fused kernel (build {info['kernel']})."
    return "Learned optimizer computed by the PyTorch implementation."


def tree_map(fn: Callable[[Tensor], Tensor], tree: Any) -> Any:
    """Apply ``fn`` to every tensor in nested tuples, NamedTuples, lists and dicts."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(tree_map(fn, v) for v in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, v) for v in tree)
    return tree


def tree_tensors(tree: Any) -> list[Tensor]:
    """All tensors in a nested structure, in a fixed order."""
    out: list[Tensor] = []
    tree_map(lambda t: out.append(t) or t, tree)
    return out


def detach(tree: Any) -> Any:
    """Cut the autograd history of every tensor in ``tree`` (a truncation boundary)."""
    return tree_map(Tensor.detach, tree)


def apply_updates(params: Params, updates: Params) -> Params:
    """θ + g, out of place."""
    return {k: params[k] + updates[k] for k in params}


def tree_leaves(tree: Any) -> list[Tensor]:
    """Every leaf of a state, tensors and numbers alike (numbers as 0-d tensors), in a fixed order: what a
    ``state_dict`` can hold. ``tree_rebuild`` is the inverse."""
    out: list[Tensor] = []

    def visit(t):
        if isinstance(t, Tensor):
            out.append(t)
        elif isinstance(t, bool):
            out.append(torch.tensor(t))
        elif isinstance(t, (int, float)):
            out.append(torch.tensor(t, dtype=torch.int64 if isinstance(t, int) else torch.float64))
        elif isinstance(t, dict):
            for v in t.values():
                visit(v)
        elif isinstance(t, (tuple, list)):
            for v in t:
                visit(v)

    visit(tree)
    return out


def tree_rebuild(template: Any, leaves: list[Tensor]) -> Any:
    """A state shaped as ``template`` from ``tree_leaves``' list: tensors as given, numbers converted back to
    the template's Python types."""
    it = iter(leaves)

    def build(t):
        if isinstance(t, Tensor):
            return next(it)
        if isinstance(t, (bool, int, float)):
            return type(t)(next(it).item())
        if isinstance(t, dict):
            return {k: build(v) for k, v in t.items()}
        if isinstance(t, tuple) and hasattr(t, "_fields"):
            return type(t)(*(build(v) for v in t))
        if isinstance(t, (tuple, list)):
            return type(t)(build(v) for v in t)
        return t

    out = build(template)
    if next(it, None) is not None:
        raise ValueError("more leaves than the template has places for")
    return out
