"""Quadratic optimizees f(θ) = ||Wθ − y||², the first experiment of Andrychowicz et al. (2016).

Each problem draws W (d×d) and y (d) IID; the paper uses N(0, 1), the authors' code U[0, 1). θ_0 is
drawn from N(0, init_std²) (the authors' code: 0.01). A batch of problems is one tensor of shape
``(num_problems, d)`` and the losses of all problems are computed by a single ``einsum``.

References:
    Andrychowicz et al., "Learning to learn by gradient descent by gradient descent", NIPS 2016, §3.1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from l2o.tasks.base import Params, split_generator
from l2o.tasks.registry import register_family

DISTRIBUTIONS = ("normal", "uniform")


@dataclass(frozen=True)
class QuadraticConfig:
    dim: int = 10  # dimension d of θ
    w_dist: str = "normal"  # distribution of the entries of W: "normal" N(0,1) (paper) or "uniform" U[0,1)
    y_dist: str = "normal"  # distribution of the entries of y, as for W
    init_std: float = 0.01  # θ_0 ~ N(0, init_std²)
    dtype: str = "float32"  # "float32" or "float64"

    def __post_init__(self):
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        for field in ("w_dist", "y_dist"):
            if getattr(self, field) not in DISTRIBUTIONS:
                raise ValueError(f"{field} must be one of {DISTRIBUTIONS}, got {getattr(self, field)!r}")
        if self.init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {self.init_std}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")


class QuadraticTask:
    """A batch of quadratic problems sharing nothing but their dimension."""

    def __init__(self, W: Tensor, y: Tensor, theta0: Tensor):
        if W.ndim != 3 or W.shape[1] != W.shape[2] or y.shape != W.shape[:2] or theta0.shape != y.shape:
            raise ValueError(
                f"expected W (B, d, d), y (B, d), θ_0 (B, d); got {tuple(W.shape)}, {tuple(y.shape)}, "
                f"{tuple(theta0.shape)}"
            )
        self.W, self.y, self.theta0 = W, y, theta0
        self.num_problems = W.shape[0]

    def to(self, device: str | torch.device) -> "QuadraticTask":
        return QuadraticTask(self.W.to(device), self.y.to(device), self.theta0.to(device))

    def init_params(self) -> Params:
        return {"theta": self.theta0.clone()}

    def narrow(self, start: int, length: int) -> "QuadraticTask":
        """Problems ``start`` … ``start + length − 1`` alone."""
        end = start + length
        return QuadraticTask(self.W[start:end], self.y[start:end], self.theta0[start:end])

    def loss(self, params: Params, step: int = 0) -> Tensor:
        residual = torch.einsum("bij,bj->bi", self.W, params["theta"]) - self.y
        return residual.square().sum(-1)

    def solution_loss(self) -> Tensor:
        """The exact minimum of each problem (least squares), for reference."""
        W, y = self.W.double(), self.y.double()
        theta = torch.linalg.lstsq(W, y.unsqueeze(-1)).solution.squeeze(-1)
        return (torch.einsum("bij,bj->bi", W, theta) - y).square().sum(-1).to(self.W.dtype)


class QuadraticFamily:
    name = "quadratic"

    def __init__(self, config: QuadraticConfig | None = None, **overrides):
        self.cfg = config if config is not None else QuadraticConfig(**overrides)

    def config(self) -> dict:
        return {"name": self.name, **asdict(self.cfg)}

    def _draw(self, dist: str, shape, gen: torch.Generator, dtype) -> Tensor:
        if dist == "normal":
            return torch.randn(shape, generator=gen, dtype=dtype)
        return torch.rand(shape, generator=gen, dtype=dtype)

    def sample(self, split: str, seed: int, num_problems: int) -> QuadraticTask:
        if num_problems < 1:
            raise ValueError(f"num_problems must be >= 1, got {num_problems}")
        gen = split_generator(split, seed)
        d, dtype = self.cfg.dim, getattr(torch, self.cfg.dtype)
        W = self._draw(self.cfg.w_dist, (num_problems, d, d), gen, dtype)
        y = self._draw(self.cfg.y_dist, (num_problems, d), gen, dtype)
        theta0 = torch.randn((num_problems, d), generator=gen, dtype=dtype) * self.cfg.init_std
        return QuadraticTask(W, y, theta0)


@register_family("quadratic", config=QuadraticConfig, flag_prefix="quadratic-",
                 description="10-d quadratics ||Wθ − y||² (paper §3.1)")
def _quadratic(config: QuadraticConfig, data_dir=None) -> QuadraticFamily:
    return QuadraticFamily(config)
