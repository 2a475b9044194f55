"""The paper's CIFAR-10 conv net as a task family (paper §3.3), on any image dataset ``l2o`` reads.

As the authors' code defines it: three 5×5 convolutions of 16 channels (stride 1, SAME padding), each
followed by batch normalisation (batch statistics, an offset β and no scale, ε = 1e-3), ReLU and 2×2 max
pooling (32 → 16 → 8 → 4); a linear layer of 32 units with batch normalisation and ReLU; a linear output;
softmax cross-entropy on minibatches of 128; every weight and bias drawn from N(0, 0.01²). Channels, kernel
size, widths and the initialisation are settings; ``init="torch"`` draws as ``nn.Conv2d`` / ``nn.Linear``, and
``bn_scale`` adds batch normalisation's scale γ (``conv{i}.scale``, ``fc{j}.scale``, starting at 1): with both,
the network is what PyTorch's default layers (nn.Conv2d, nn.BatchNorm2d, nn.Linear) make.

Datasets: "cifar10" (32×32×3, `l2o data cifar10`), "mnist" and "fashion-mnist" (28×28×1; 28 → 14 → 7 → 3).
``labels`` keeps a subset of the classes, relabelled 0…k−1 in the order given, and sizes the output to k.
Splits as for the MLPs: meta-training on the first 5/6 of the training set, validation on its last 1/6,
test problems on the test set.

Several problems side by side: the fully connected layers run as batched matrix products; the convolutions
run problem by problem: one grouped convolution over the B problems ran at 0.44–0.57× the speed of a loop
for B = 2–8 CIFAR-shaped problems (benchmarks/conv_problems.py, on this CPU while it was also meta-training).
Batch statistics are per problem, so a problem never sees another's batch.

Parameter names: ``conv{i}.weight`` (out, in, k, k), ``conv{i}.bias``, ``conv{i}.offset`` (batch norm),
``fc{j}.weight`` (in, out), ``fc{j}.bias``, ``fc{j}.offset``, ``out.weight``, ``out.bias``; the conv kernels
are the parameters of four dimensions, which the paper's two-LSTM optimizer routes to its conv LSTM.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from l2o.tasks.base import Params, split_generator
from l2o.tasks.mlp import ClassifierTask
from l2o.tasks.registry import register_family

DATASETS = ("cifar10", "mnist", "fashion-mnist")


@dataclass(frozen=True)
class ConvConfig:
    dataset: str = "cifar10"  # "cifar10" (32×32×3), "mnist" or "fashion-mnist" (28×28×1)
    labels: tuple[int, ...] = ()  # the classes kept, relabelled 0…k−1 in this order; empty: all ten
    channels: tuple[int, ...] = (16, 16, 16)  # output channels of each conv layer (paper: three of 16)
    kernel: int = 5  # conv kernel size (SAME padding, stride 1)
    hidden: tuple[int, ...] = (32,)  # fully connected layers between the convolutions and the output
    batch_size: int = 128  # images per minibatch (paper: 128)
    init: str = "paper"  # "paper": N(0, 0.01²) weights and biases; "torch": nn.Conv2d/nn.Linear's default
    bn_eps: float = 1e-3  # batch normalisation's ε (the authors' code: 1e-3)
    bn_scale: bool = False  # batch normalisation with a scale γ too (as nn.BatchNorm2d; the authors': offset only)

    def __post_init__(self):
        for name in ("labels", "channels", "hidden"):  # lists from JSON, tuples here
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.labels and (len(set(self.labels)) != len(self.labels) or len(self.labels) < 2
                            or min(self.labels) < 0 or max(self.labels) > 9):
            raise ValueError(f"labels must be at least two distinct classes in 0–9, got {list(self.labels)}")
        if not self.channels or min(self.channels) < 1 or (self.hidden and min(self.hidden) < 1):
            raise ValueError(f"channels and hidden must be positive sizes, got {self.channels}, {self.hidden}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (SAME padding), got {self.kernel}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (batch normalisation), got {self.batch_size}")
        if self.init not in ("paper", "torch"):
            raise ValueError(f"init must be 'paper' or 'torch', got {self.init!r}")
        if self.bn_eps <= 0:
            raise ValueError(f"bn_eps must be > 0, got {self.bn_eps}")

    @property
    def classes(self) -> int:
        return len(self.labels) or 10


class Images:
    """One split: images (n, C, H, W) float32 in [0, 1] and labels (n,) int64."""

    def __init__(self, x: Tensor, y: Tensor):
        if x.ndim != 4 or y.shape != (x.shape[0],):
            raise ValueError(f"images must be (n, C, H, W) with n labels, got {tuple(x.shape)} and {tuple(y.shape)}")
        self.x, self.y = x, y


def keep_labels(images: Images, labels: tuple[int, ...]) -> Images:
    """Only the images of ``labels`` (classes 0–9), relabelled 0…k−1 in that order; all of them if empty."""
    if not labels:
        return images
    labels = torch.tensor(labels)
    keep = torch.isin(images.y, labels)
    remap = torch.full((10,), -1, dtype=torch.int64)
    remap[labels] = torch.arange(len(labels))
    return Images(images.x[keep], remap[images.y[keep]])


def image_splits(dataset: str, data_dir=None, labels: tuple[int, ...] = ()) -> dict[str, Images]:
    """The dataset's splits as float32 images in [0, 1], channels first, only ``labels`` (relabelled)."""
    from l2o.data import data_dir as resolve
    from l2o.data import load

    if dataset == "cifar10":
        from l2o.data import cifar

        a = cifar.load(resolve(data_dir))
        train_x, train_y, test_x, test_y = a.train_images, a.train_labels, a.test_images, a.test_labels
    else:
        a = load(dataset, data_dir)
        train_x, test_x = a.train_images[:, None], a.test_images[:, None]
        train_y, test_y = a.train_labels, a.test_labels

    def split(x, y) -> Images:
        return keep_labels(Images(torch.from_numpy(x).float().div_(255), torch.from_numpy(y.astype("int64"))), labels)

    train, test = split(train_x, train_y), split(test_x, test_y)
    cut = len(train.y) - len(train.y) // 6
    return {"train": Images(train.x[:cut], train.y[:cut]), "validation": Images(train.x[cut:], train.y[cut:]),
            "test": test}


def _batch_norm(x: Tensor, offset: Tensor, dims: tuple[int, ...], eps: float, scale: Tensor | None = None) -> Tensor:
    """Normalised by the batch's mean and variance over ``dims``, times the scale γ if any, plus the offset β."""
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, keepdim=True, unbiased=False)
    normed = (x - mean) * torch.rsqrt(var + eps)
    return (normed if scale is None else normed * scale) + offset


class ConvTask(ClassifierTask):
    """``num_problems`` conv nets, each with its own θ_0 and its own order of minibatches (images (B, batch,
    C, H, W))."""

    def logits(self, params: Params, x: Tensor) -> Tensor:
        """(B, batch, classes) for images (B, batch, C, H, W); the fully connected layers batched over B."""
        eps = self.cfg.bn_eps
        features = []
        for b in range(x.shape[0]):  # the convolutions problem by problem: one grouped convolution was slower
            h = x[b]  # (benchmarks/conv_problems.py)
            for i in range(len(self.cfg.channels)):
                h = F.conv2d(h, params[f"conv{i}.weight"][b], params[f"conv{i}.bias"][b], padding=self.cfg.kernel // 2)
                scale = params[f"conv{i}.scale"][b] if self.cfg.bn_scale else None
                h = F.batch_norm(h, None, None, scale, params[f"conv{i}.offset"][b], True, 0.0, eps)  # batch statistics
                h = torch.relu(F.max_pool2d(h, 2))  # = max-pool of the ReLU (ReLU is monotone), on a quarter of the values
            features.append(h.flatten(1))
        h = torch.stack(features)  # (B, N, O·h·w), each problem's own features
        for j in range(len(self.cfg.hidden)):
            h = torch.baddbmm(params[f"fc{j}.bias"].unsqueeze(1), h, params[f"fc{j}.weight"])
            scale = params[f"fc{j}.scale"].unsqueeze(1) if self.cfg.bn_scale else None
            h = torch.relu(_batch_norm(h, params[f"fc{j}.offset"].unsqueeze(1), (1,), eps, scale))
        return torch.baddbmm(params["out.bias"].unsqueeze(1), h, params["out.weight"])


def shapes(cfg: ConvConfig, image: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape (without the problem axis) for images of shape (C, H, W)."""
    c, size, _ = image
    out = {}
    for i, o in enumerate(cfg.channels):
        out[f"conv{i}.weight"] = (o, c, cfg.kernel, cfg.kernel)
        out[f"conv{i}.bias"] = out[f"conv{i}.offset"] = (o,)
        if cfg.bn_scale:
            out[f"conv{i}.scale"] = (o,)
        c, size = o, size // 2
    width = c * size * size
    if size < 1:
        raise ValueError(f"{len(cfg.channels)} poolings of 2 leave nothing of a {image[1]}-pixel image")
    for j, h in enumerate(cfg.hidden):
        out[f"fc{j}.weight"], out[f"fc{j}.bias"], out[f"fc{j}.offset"] = (width, h), (h,), (h,)
        if cfg.bn_scale:
            out[f"fc{j}.scale"] = (h,)
        width = h
    out["out.weight"], out["out.bias"] = (width, cfg.classes), (cfg.classes,)
    return out


class ConvFamily:
    name = "conv"

    def __init__(self, config: ConvConfig | None = None, *, data: dict[str, Images] | None = None, data_dir=None,
                 **overrides):
        """``data``: the splits (default: read ``config.dataset`` from the data step)."""
        self.cfg = config if config is not None else ConvConfig(**overrides)
        self.data = data if data is not None else image_splits(self.cfg.dataset, data_dir, self.cfg.labels)
        self.image = tuple(next(iter(self.data.values())).x.shape[1:])  # every split's images have one shape
        self.shapes = shapes(self.cfg, self.image)

    def config(self) -> dict:
        return {"name": self.name, **asdict(self.cfg)}

    def sample(self, split: str, seed: int, num_problems: int) -> ConvTask:
        gen = split_generator(split, seed)
        theta0 = {}
        for name, shape in self.shapes.items():
            if name.endswith(".offset"):
                theta0[name] = torch.zeros(num_problems, *shape)
            elif name.endswith(".scale"):  # nn.BatchNorm's γ starts at 1
                theta0[name] = torch.ones(num_problems, *shape)
            elif self.cfg.init == "paper":
                theta0[name] = torch.randn(num_problems, *shape, generator=gen) * 0.01
            else:  # nn.Conv2d / nn.Linear: U(±1/√fan_in) for weights and biases
                layer = name.split(".")[0]
                w = self.shapes[f"{layer}.weight"]
                fan_in = math.prod(w[1:]) if len(w) == 4 else w[0]
                theta0[name] = (torch.rand(num_problems, *shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)
        batch_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        return ConvTask(self.cfg, self.data[split], theta0, batch_seed)


@register_family("conv", config=ConvConfig, flag_prefix="conv-", needs_data=True,
                 description="the paper's CIFAR-10 conv net (§3.3) on CIFAR-10, MNIST or Fashion-MNIST, "
                             "label subsets; needs `l2o data DATASET`")
def _conv(config: ConvConfig, data_dir=None) -> ConvFamily:
    return ConvFamily(config, data_dir=data_dir)
