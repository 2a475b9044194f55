"""Your own ``nn.Module`` as a task family: meta-train on your architecture without writing a functional loss.

    family = ModuleFamily(make_model, data, loss_fn=F.cross_entropy, batch_size=128)
    meta_train(family, LSTMRule(), TrainConfig(...))

``make_model()`` builds a fresh model; each problem is one model, initialised by ``make_model`` under its own
seed (drawn from the problem's split and seed, so problems are reproducible and the splits disjoint), trained on
its own order of minibatches of ``data``. The loss of B problems is computed side by side: ``torch.func.vmap``
over ``torch.func.functional_call`` of one model, with every parameter stacked along a leading problem axis (the
parameters keep the module's names, ``"0.weight"``, ``"head.bias"``, so rules that route by name see them).
Buffers are per problem too (batch norm keeps each problem's running statistics). A model that vmap cannot run
(a forward pass with ``.item()`` or Python control flow on tensor values, random dropout) is computed problem by
problem instead; ``vectorised`` says which.

``data``: ``{"train": (x, y), "validation": (x, y), "test": (x, y)}`` (tensors with the examples on the first
axis), or one ``(x, y)`` for every split (then validation and test problems differ from training ones only in
their initialisation and minibatches: say so when you report them). ``loss_fn(outputs, targets)`` returns the
mean loss of one minibatch (a scalar).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from l2o.tasks.base import Params, minibatch_indices, split_generator

Data = tuple[Tensor, Tensor]


class ModuleTask:
    """``num_problems`` copies of one architecture, each with its own θ_0 and its own minibatches."""

    def __init__(self, family: "ModuleFamily", data: Data, theta0: Params, buffers: dict[str, Tensor], seed: int,
                 rows: tuple[int, int] | None = None):
        self.family, self.data, self.theta0, self.buffers, self.seed = family, data, theta0, buffers, seed
        self.num_problems = next(iter(theta0.values())).shape[0]
        self.rows = rows if rows is not None else (0, self.num_problems)

    def to(self, device) -> "ModuleTask":
        return ModuleTask(self.family, tuple(t.to(device) for t in self.data), {k: v.to(device) for k, v in
                          self.theta0.items()}, {k: v.to(device) for k, v in self.buffers.items()}, self.seed, self.rows)

    def init_params(self) -> Params:
        return {k: v.clone() for k, v in self.theta0.items()}

    def narrow(self, start: int, length: int) -> "ModuleTask":
        theta0 = {k: v[start:start + length] for k, v in self.theta0.items()}
        buffers = {k: v[start:start + length] for k, v in self.buffers.items()}
        return ModuleTask(self.family, self.data, theta0, buffers, self.seed, (self.rows[0] + start, self.rows[1]))

    def batch(self, step: int) -> Data:
        """Every problem's minibatch at ``step``: (B, batch, ...) inputs and targets."""
        x, y = self.data
        idx = minibatch_indices(self.seed, step, x.shape[0], self.family.batch_size, self.rows,
                                self.num_problems).to(x.device)
        return x[idx], y[idx]

    def loss(self, params: Params, step: int = 0) -> Tensor:
        x, y = self.batch(step)
        return self.family.losses(params, self.buffers, x, y)


class ModuleFamily:
    """A task family from a model factory, a dataset and a loss (see the module's docstring)."""

    def __init__(self, make_model: Callable[[], nn.Module], data: dict[str, Data] | Data,
                 loss_fn: Callable[[Tensor, Tensor], Tensor] = nn.functional.cross_entropy, *, batch_size: int = 128,
                 name: str = "module"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        splits = data if isinstance(data, dict) else {"train": data, "validation": data, "test": data}
        for split, pair in splits.items():
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, Tensor) for t in pair)
                    and pair[0].shape[0] == pair[1].shape[0] and pair[0].shape[0] > 0):
                raise ValueError(f"data[{split!r}] must be (inputs, targets): two tensors with the same number (> 0) "
                                 f"of examples on their first axis")
        self.make_model, self.data, self.loss_fn = make_model, splits, loss_fn
        self.batch_size, self.name = batch_size, name
        self.model = make_model().to("meta")  # the architecture alone: functional_call supplies every tensor
        self.vectorised: bool | None = None  # decided at the first loss: vmap where the model allows it

    def config(self) -> dict:
        return {"name": self.name, "model": type(self.model).__name__, "batch_size": self.batch_size,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "loss": getattr(self.loss_fn, "__name__", type(self.loss_fn).__name__)}

    def sample(self, split: str, seed: int, num_problems: int) -> ModuleTask:
        if split not in self.data:
            raise ValueError(f"no {split!r} data; the family has {', '.join(self.data)}")
        gen = split_generator(split, seed)
        seeds = torch.randint(0, 2**31 - 1, (num_problems + 1,), generator=gen).tolist()
        models = []
        for s in seeds[:-1]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                models.append(self.make_model())
        params, buffers = stack_module_state(models)
        params = {k: v.detach() for k, v in params.items()}
        return ModuleTask(self, self.data[split], params, {k: v.detach() for k, v in buffers.items()}, seeds[-1])

    def _one(self, params: Params, buffers: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return self.loss_fn(functional_call(self.model, {**params, **buffers}, (x,)), y)

    def losses(self, params: Params, buffers: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        """(B,) each problem's loss on its minibatch."""
        self.model.train()
        if self.vectorised is not False:
            try:
                out = vmap(self._one)(params, buffers, x, y)
                self.vectorised = True
                return out
            except RuntimeError:
                if self.vectorised:  # it ran vectorised before: a real error
                    raise
                self.vectorised = False
        return torch.stack([self._one({k: v[b] for k, v in params.items()}, {k: v[b] for k, v in buffers.items()},
                                      x[b], y[b]) for b in range(x.shape[0])])
