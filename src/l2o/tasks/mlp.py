"""MLP optimizees on classification data: the paper's MNIST task (784-20-10, sigmoid, batches of 128).

A task is a batch of independent problems (one network each, with its own initialisation and batch
order), evaluated with batched matrix products, so that many problems cost one set of tensor ops.
Parameters are named ``w0, b0, w1, b1, …``; the loss at step t is the mean cross-entropy of each
network on its t-th minibatch.

Data come from a ``Dataset``: inputs (n, d) float32 and labels (n,) int64. ``synthetic_dataset`` makes
inputs of MNIST's shape from a random linear teacher, for benchmarks and tests that must not depend on
a download.

Initialisation: "paper" draws every weight from N(0, 0.01²) (the authors' code) and biases 0;
"torch" is PyTorch's default ``nn.Linear`` initialisation, U(−1/√fan_in, 1/√fan_in) for both.

References:
    Andrychowicz et al. 2016, §3.2 (MNIST).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from l2o.tasks.base import Params, minibatch_indices, split_generator
from l2o.tasks.registry import register_family

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


class Dataset(NamedTuple):
    x: Tensor  # (n, d) float32
    y: Tensor  # (n,) int64 class labels


def synthetic_dataset(n: int = 10_000, dim: int = 784, classes: int = 10, seed: int = 0) -> Dataset:
    """Inputs in [0, 1) of MNIST's shape, labelled by a random linear teacher."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=gen)
    teacher = torch.randn(dim, classes, generator=gen)
    return Dataset(x, (x - 0.5).matmul(teacher).argmax(1))


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (20,)  # hidden layer sizes (paper: one layer of 20)
    activation: str = "sigmoid"  # "sigmoid" (paper), "relu" or "tanh"
    batch_size: int = 128  # examples per minibatch (paper: 128)
    init: str = "paper"  # "paper": N(0, 0.01²) weights, zero biases; "torch": nn.Linear's default

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))  # a list from JSON, a tuple here
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer sizes, got {self.hidden}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.init not in ("paper", "torch"):
            raise ValueError(f"init must be 'paper' or 'torch', got {self.init!r}")


class ClassifierTask:
    """``num_problems`` classifiers, each with its own θ_0 and its own order of minibatches; the loss at step t
    is each one's mean cross-entropy on its t-th minibatch. Subclasses define ``logits(params, x)``.
    ``rows`` = (first, total): these are problems first … of a task of ``total`` problems (``narrow``), and
    draw the minibatches those problems draw there."""

    def __init__(self, cfg, data, theta0: Params, gen_seed: int, rows: tuple[int, int] | None = None):
        self.cfg, self.data, self.theta0 = cfg, data, theta0
        self.num_problems = next(iter(theta0.values())).shape[0]
        self.seed = gen_seed
        self.rows = rows if rows is not None else (0, self.num_problems)
        self._batches: dict[int, tuple[Tensor, Tensor]] = {}

    def to(self, device):
        data = type(self.data)(self.data.x.to(device), self.data.y.to(device))
        return type(self)(self.cfg, data, {k: v.to(device) for k, v in self.theta0.items()}, self.seed, self.rows)

    def init_params(self) -> Params:
        return {k: v.clone() for k, v in self.theta0.items()}

    def narrow(self, start: int, length: int):
        """Problems ``start`` … ``start + length − 1`` alone, with their own minibatches."""
        theta0 = {k: v[start:start + length] for k, v in self.theta0.items()}
        return type(self)(self.cfg, self.data, theta0, self.seed, (self.rows[0] + start, self.rows[1]))

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """The minibatch of every problem at ``step``: inputs (B, batch, ...) and labels (B, batch)."""
        if step not in self._batches:
            idx = minibatch_indices(self.seed, step, self.data.x.shape[0], self.cfg.batch_size, self.rows,
                                    self.num_problems).to(self.data.x.device)
            self._batches = {step: (self.data.x[idx], self.data.y[idx])}  # keep only the latest
        return self._batches[step]

    def logits(self, params: Params, x: Tensor) -> Tensor:
        raise NotImplementedError

    def loss(self, params: Params, step: int = 0) -> Tensor:
        x, y = self.batch(step)
        logits = self.logits(params, x)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        return ce.view(self.num_problems, -1).mean(1)


class MLPTask(ClassifierTask):
    """``num_problems`` MLPs, evaluated with batched matrix products."""

    def logits(self, params: Params, x: Tensor) -> Tensor:
        act = ACTIVATIONS[self.cfg.activation]
        layers = len(self.cfg.hidden) + 1
        for i in range(layers):
            x = torch.baddbmm(params[f"b{i}"].unsqueeze(1), x, params[f"w{i}"])
            if i < layers - 1:
                x = act(x)
        return x


class MLPFamily:
    name = "mlp"

    def __init__(self, data: dict[str, Dataset] | Dataset | None = None, config: MLPConfig | None = None,
                 **overrides):
        """``data``: one Dataset per split ("train", "validation", "test"), or one for all (synthetic)."""
        self.cfg = config if config is not None else MLPConfig(**overrides)
        data = data if data is not None else synthetic_dataset()
        self.data = data if isinstance(data, dict) else {"train": data, "validation": data, "test": data}
        self.classes = max(int(d.y.max()) for d in self.data.values()) + 1  # the same output size in every split

    def config(self) -> dict:
        return {"name": self.name, **asdict(self.cfg)}

    def sample(self, split: str, seed: int, num_problems: int) -> MLPTask:
        gen = split_generator(split, seed)
        data = self.data[split]
        sizes = [data.x.shape[1], *self.cfg.hidden, self.classes]
        theta0 = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if self.cfg.init == "paper":
                theta0[f"w{i}"] = torch.randn(num_problems, fan_in, fan_out, generator=gen) * 0.01
                theta0[f"b{i}"] = torch.zeros(num_problems, fan_out)
            else:
                bound = 1 / math.sqrt(fan_in)
                theta0[f"w{i}"] = (torch.rand(num_problems, fan_in, fan_out, generator=gen) * 2 - 1) * bound
                theta0[f"b{i}"] = (torch.rand(num_problems, fan_out, generator=gen) * 2 - 1) * bound
        batch_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        return MLPTask(self.cfg, data, theta0, batch_seed)


def image_splits(name: str = "mnist", data_dir=None) -> dict[str, Dataset]:
    """MNIST-style images as float32 in [0, 1], flattened. "train" (meta-training: the first 5/6 of the
    training set, 50,000 images) and "validation" (the last 1/6, 10,000) are disjoint; "test" is the test set."""
    from l2o.data import load

    arrays = load(name, data_dir)
    x = torch.from_numpy(arrays.train_images.reshape(len(arrays.train_images), -1)).float().div_(255)
    y = torch.from_numpy(arrays.train_labels.astype("int64"))
    xt = torch.from_numpy(arrays.test_images.reshape(len(arrays.test_images), -1)).float().div_(255)
    yt = torch.from_numpy(arrays.test_labels.astype("int64"))
    cut = len(x) - len(x) // 6
    return {"train": Dataset(x[:cut], y[:cut]), "validation": Dataset(x[cut:], y[cut:]), "test": Dataset(xt, yt)}


class ImageMLPFamily(MLPFamily):
    """MLPs on MNIST (``dataset="mnist"``) or Fashion-MNIST; the data come from the data step."""

    def __init__(self, config: MLPConfig | None = None, *, dataset: str = "mnist", data_dir=None, **overrides):
        super().__init__(image_splits(dataset, data_dir), config, **overrides)
        self.name = dataset  # config() records it, so make_family(**config()) rebuilds this family


@register_family("mnist", config=MLPConfig, flag_prefix="mlp-", needs_data=True,
                 description="MLPs on MNIST (paper §3.2); needs `l2o data mnist`")
def _mnist(config: MLPConfig, data_dir=None) -> ImageMLPFamily:
    return ImageMLPFamily(config, dataset="mnist", data_dir=data_dir)


@register_family("fashion-mnist", config=MLPConfig, flag_prefix="mlp-", needs_data=True,
                 description="MLPs on Fashion-MNIST; needs `l2o data fashion-mnist`")
def _fashion_mnist(config: MLPConfig, data_dir=None) -> ImageMLPFamily:
    return ImageMLPFamily(config, dataset="fashion-mnist", data_dir=data_dir)
