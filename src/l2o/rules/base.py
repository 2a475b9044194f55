"""The update-rule protocol shared by the learned optimizer and the hand-designed baselines.

An update rule is a pair of pure functions, as optax's ``GradientTransformation``::

    state = rule.init(params)
    updates, state = rule.update(grads, state)
    params = {k: params[k] + updates[k] for k in params}

``params``, ``grads`` and ``updates`` are ``dict[str, Tensor]`` with the same keys and shapes. Neither
function writes into its arguments, so an unroll of many steps stays differentiable with respect to
the rule's own parameters (for the learned rule) and ``state`` can be detached at a truncation boundary.
States are NamedTuples of tensors (and Python numbers).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

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


def implementation_of(rule: Any) -> dict:
    """What computes ``rule``'s steps, as recorded with every run, checkpoint and result:
    ``{"implementation": "torch" | "fused", "kernel": the compiled build's name or None}``."""
    info = getattr(rule, "implementation_info", None)
    return info() if callable(info) else {"implementation": "torch", "kernel": None}


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


def tree_unflatten(template: Any, leaves: list[Tensor]) -> Any:
    """Rebuild a structure shaped as ``template`` from the tensors ``tree_tensors`` listed."""
    it = iter(leaves)
    out = tree_map(lambda _: next(it), template)
    if next(it, None) is not None:
        raise ValueError("more tensors than the template has places for")
    return out
