"""Golden losses of the shipped optimizers: each runs on a few fixed problems, per implementation, and the
losses it reaches are recorded in ``shipped.json`` beside this file. ``tests/test_golden.py`` checks that
they are reproduced, so a change that moves a shipped result fails CI instead of surprising a reader.

    python tests/golden/shipped.py      re-record (only when a shipped optimizer is meant to change)

The problems: the quadratic optimizers (quadratic, quadratic-gac, quadratic-ntm) on 16 held-out 10-d quadratics (the "test" stream, seed 0); the MNIST
optimizers (mnist, mnist-gac, mnist-ntm) and general on 8 MLPs 784-20-10 of the paper's setting on synthetic MNIST-shaped data (so that no download is
needed: inputs in [0, 1) of which 19 % are non-zero, as MNIST's pixels, labelled by a random linear teacher;
on it the optimizer takes the loss from 2.30 to about 1.0), 100 steps each; the conv optimizer (conv) on 4 of the
paper's conv nets on synthetic 28×28×1 images (the same kind, labelled the same way), minibatches of 32; the
neural-art optimizers (art, art-agreement) on 2 of the registered art family's 32×32 test problems (crops of
photographs bundled with scikit-image and scikit-learn, the drawn training style, the default random-filter feature
network).

    python tests/golden/shipped.py conv  re-record one optimizer only (with the machine it was recorded on)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from l2o import load_rule, unroll
from l2o.tasks.conv import ConvConfig, ConvFamily, Images
from l2o.tasks.mlp import Dataset, MLPConfig, MLPFamily
from l2o.tasks.quadratic import QuadraticFamily
from l2o.tasks.registry import make_family

FILE = Path(__file__).with_name("shipped.json")
STEPS = (0, 1, 2, 5, 10, 25, 50, 75, 100)


def sparse_images(n: int = 4096, density: float = 0.19, seed: int = 0) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=gen) * (torch.rand(n, 784, generator=gen) < density)
    teacher = torch.randn(784, 10, generator=gen)
    return Dataset(x, (x - x.mean(0)).matmul(teacher).argmax(1))


IMPLEMENTATIONS = {"quadratic": ("torch", "fused"), "mnist": ("torch", "fused"), "general": ("torch", "fused"),
                   "quadratic-gac": ("torch",), "quadratic-ntm": ("torch",),  # these four: PyTorch only
                   "mnist-gac": ("torch",), "mnist-ntm": ("torch",), "conv": ("torch", "fused"),
                   "art": ("torch", "fused"), "art-agreement": ("torch", "fused")}


def family(name: str):
    if name.startswith("quadratic"):
        return QuadraticFamily(dim=10), 16
    if name == "conv":
        images = sparse_images(n=1024)
        split = Images(images.x.view(-1, 1, 28, 28), images.y)
        return ConvFamily(ConvConfig(dataset="fashion-mnist", batch_size=32),
                          data={"train": split, "validation": split, "test": split}), 4
    if name.startswith("art"):
        return make_family("art", size=32), 2
    return MLPFamily(sparse_images(), MLPConfig()), 8


def measure(name: str, implementation: str) -> dict:
    """Mean loss over the problems at the steps in STEPS, and every problem's final loss."""
    torch.set_num_threads(1)
    rule = load_rule(name, implementation=implementation)
    assert rule.implementation_info()["implementation"] == implementation
    fam, problems = family(name)
    with torch.no_grad():
        losses = unroll(rule, fam.sample("test", 0, problems), STEPS[-1]).losses.double()
    return {"mean": {str(t): float(losses[t].mean()) for t in STEPS}, "final": [float(x) for x in losses[-1]]}


def machine() -> dict:
    """What the recorded numbers depend on besides the code: the CPU, torch and the kernel's build."""
    from l2o import kernels
    from l2o.kernels.build import cpu_identity

    return {"cpu": cpu_identity(), "torch": torch.__version__, "python": sys.version.split()[0],
            "kernel": kernels.build_name()}


def main(names: list[str]) -> None:
    """Record every optimizer (then ``recorded_with`` names the machine), or only ``names`` (each with its own)."""
    if not names:
        out = {name: {impl: measure(name, impl) for impl in impls} for name, impls in IMPLEMENTATIONS.items()}
        out["recorded_with"] = machine()
    else:
        out = json.loads(FILE.read_text())
        for name in names:
            out[name] = {**{impl: measure(name, impl) for impl in IMPLEMENTATIONS[name]}, "recorded_with": machine()}
    FILE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main(sys.argv[1:])
