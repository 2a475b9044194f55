"""Several rules in one model: each parameter goes, by its name and shape, to the rule of its label (as
optax's ``multi_transform``). The paper's CIFAR-10 optimizer is one: one LSTM for the convolutional
layers' parameters, another for the fully connected ones.

    rule = Routed({"conv": LSTMRule(), "fc": LSTMRule()},
                  routes=[{"label": "conv", "ndim": 4}], default="fc")

``routes``: tried in order, the first that matches a parameter gives its label; a route matches when every
condition it has holds: ``"name"``, a regular expression searched in the parameter's name, and ``"ndim"``,
the parameter's number of dimensions (without the problem axis). Parameters that no route matches go to
``default``. The sub-rules are meta-trained jointly (their weights are all the routed rule's parameters),
saved as one checkpoint whose settings nest the sub-rules' (``config()``), and loaded by ``make_rule`` /
``load_rule`` like any rule. ``LearnedOptimizer`` parameter groups may name the label their parameters go
to (``{"params": ..., "rule": "fc"}``), whatever the routes say.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from l2o.rules.base import implementation_of
from l2o.tasks.base import Params


class Routed(nn.Module):
    name = "routed"

    def __init__(self, rules: dict[str, Any], routes: list[dict] | None = None, default: str | None = None, *,
                 implementation: str = "auto"):
        super().__init__()
        from l2o.rules import make_rule  # sub-rules given by their settings (as read from a checkpoint)

        if not rules:
            raise ValueError("a routed rule needs at least one sub-rule")
        bad = [label for label in rules if not label or "." in label]
        if bad:
            raise ValueError(f"labels must be non-empty and without dots, got {bad}")
        built = {label: make_rule(**r, implementation=implementation) if isinstance(r, dict) else r
                 for label, r in rules.items()}
        self.labels = list(built)
        self.learned = nn.ModuleDict({k: r for k, r in built.items() if isinstance(r, nn.Module)})
        self._fixed = {k: r for k, r in built.items() if not isinstance(r, nn.Module)}  # e.g. a tuned baseline
        self.routes = [dict(r) for r in (routes or [])]
        self.default = default if default is not None else self.labels[-1]
        for route in self.routes:
            unknown = set(route) - {"label", "name", "ndim"}
            if unknown or "label" not in route:
                raise ValueError(f"a route is {{'label': ..., 'name': regex, 'ndim': int}}, got {route}")
            if "name" in route:
                re.compile(route["name"])
        for label in [r["label"] for r in self.routes] + [self.default]:
            if label not in built:
                raise ValueError(f"route to unknown label {label!r}; the rules are {self.labels}")

    def rule(self, label: str):
        """The sub-rule of ``label``."""
        if label in self.learned:
            return self.learned[label]
        if label in self._fixed:
            return self._fixed[label]
        raise ValueError(f"no sub-rule labelled {label!r}; the rules are {self.labels}")

    def label_of(self, name: str, ndim: int) -> str:
        for route in self.routes:
            if ("name" not in route or re.search(route["name"], name)) and route.get("ndim", ndim) == ndim:
                return route["label"]
        return self.default

    def partition(self, tensors: Params) -> dict[str, Params]:
        """``tensors`` (with their problem axis) by label, in the order of ``self.labels``."""
        parts: dict[str, Params] = {}
        for name, t in tensors.items():
            parts.setdefault(self.label_of(name, t.dim() - 1), {})[name] = t
        return {label: parts[label] for label in self.labels if label in parts}

    def init(self, params: Params) -> dict:
        return {label: self.rule(label).init(part) for label, part in self.partition(params).items()}

    def update(self, grads: Params, state: dict, *, inplace: bool = False) -> tuple[Params, dict]:
        updates, new_state = {}, {}
        for label, part in self.partition(grads).items():
            if label not in state:
                raise ValueError(f"no state for the parameters routed to {label!r}; was it made by init() for "
                                 f"these parameters?")
            u, new_state[label] = self.rule(label).update(part, state[label], inplace=inplace)
            updates.update(u)
        return {name: updates[name] for name in grads}, new_state

    def split_state(self, state: dict, params: Params) -> dict[str, Any]:
        out = {}
        for label, part in self.partition(params).items():
            out.update({name: {label: s} for name, s in self.rule(label).split_state(state[label], part).items()})
        return out

    def join_state(self, parts: dict[str, Any], params: Params) -> dict:
        return {label: self.rule(label).join_state({name: parts[name][label] for name in part}, part)
                for label, part in self.partition(params).items()}

    def reset_parameters(self) -> None:
        for label in self.labels:
            reset = getattr(self.rule(label), "reset_parameters", None)
            if callable(reset):
                reset()

    def config(self) -> dict:
        return {"name": self.name, "rules": {label: self.rule(label).config() for label in self.labels},
                "routes": self.routes, "default": self.default}

    def implementation_info(self) -> dict:
        """One implementation if every sub-rule has the same, else "mixed"; each sub-rule's under "rules"."""
        infos = {label: implementation_of(self.rule(label)) for label in self.labels}
        impls = sorted({i["implementation"] for i in infos.values()})
        kernels = sorted({i["kernel"] for i in infos.values() if i["kernel"]})
        return {"implementation": impls[0] if len(impls) == 1 else "mixed",
                "kernel": kernels[0] if len(kernels) == 1 else (", ".join(kernels) or None), "rules": infos}


def conv_fc(config=None, *, implementation: str = "auto") -> Routed:
    """The paper's CIFAR-10 optimizer: two LSTMs of the same settings (``LSTMConfig``) with separate weights,
    "conv" for the convolution kernels (parameters of four dimensions) and "fc" for everything else
    (biases, batch-norm offsets, fully connected weights), as in the authors' code."""
    from l2o.rules.lstm import LSTMRule

    return Routed({"conv": LSTMRule(config, implementation=implementation),
                   "fc": LSTMRule(config, implementation=implementation)},
                  routes=[{"label": "conv", "ndim": 4}], default="fc", implementation=implementation)
