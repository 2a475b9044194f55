"""Meta-train a learned optimizer on your own task family, then use it like any torch.optim optimizer.

The family here is noisy linear regression: each problem has its own true weights w* ~ N(0, 1) in 20
dimensions and a fresh minibatch of 32 examples every step. A task family is a class with ``name``,
``sample(split, seed, num_problems)`` and ``config()``; a task holds ``num_problems`` problems side by side
and gives their losses for functional parameters. That is all ``meta_train`` needs.

    .venv/bin/python examples/custom_family.py [--episodes 200] [--out runs/examples]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import l2o
from l2o.tasks import split_generator


class RegressionTask:
    """``num_problems`` linear regressions: loss_b(θ) = mean over the step's batch of (x·θ_b − y)²."""

    def __init__(self, w_true, theta0, seed, dim=20, batch=32, noise=0.1):
        self.w_true, self.theta0, self.seed = w_true, theta0, seed
        self.num_problems, self.dim, self.batch, self.noise = w_true.shape[0], dim, batch, noise

    def to(self, device):
        return RegressionTask(self.w_true.to(device), self.theta0.to(device), self.seed, self.dim, self.batch, self.noise)

    def init_params(self):
        return {"theta": self.theta0.clone()}

    def loss(self, params, step):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + step)  # the step's minibatch
        x = torch.randn(self.num_problems, self.batch, self.dim, generator=gen).to(self.w_true.device)
        y = (x @ self.w_true.unsqueeze(-1)).squeeze(-1) + self.noise * torch.randn(x.shape[:2], generator=gen).to(x.device)
        pred = (x @ params["theta"].unsqueeze(-1)).squeeze(-1)
        return (pred - y).pow(2).mean(-1)


class RegressionFamily:
    name = "regression"

    def sample(self, split, seed, num_problems):
        gen = split_generator(split, seed)  # disjoint problem streams for train / validation / test
        w_true = torch.randn(num_problems, 20, generator=gen)
        theta0 = 0.01 * torch.randn(num_problems, 20, generator=gen)
        return RegressionTask(w_true, theta0, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))

    def config(self):
        return {"name": self.name}


def train_model(model, opt, steps, seed):
    """An ordinary training loop on one regression problem, with an nn.Module."""
    torch.manual_seed(seed)
    w_true = torch.randn(20)
    losses = []
    for _ in range(steps):
        x = torch.randn(32, 20)
        y = x @ w_true + 0.1 * torch.randn(32)
        loss = torch.nn.functional.mse_loss(model(x).squeeze(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=200, help="meta-training episodes (default: 200)")
    parser.add_argument("--steps", type=int, default=100, help="steps of the final training loops")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. meta-train: 16 regression problems per episode, horizon 100, truncations of 20 steps
    family = RegressionFamily()
    rule = l2o.LSTMRule(preprocess=True, output_scale=0.1)
    cfg = l2o.TrainConfig(episodes=args.episodes, problems=16, meta_lr=3e-3, schedule="cosine", val_every=50,
                          val_problems=64)
    result = l2o.meta_train(family, rule, cfg, out / "regression_run")
    checkpoint = out / "regression_run" / "best.safetensors"

    # 2. use it on an ordinary nn.Module, next to Adam
    curves = {}
    for label, make in {
        "learned": lambda m: l2o.LearnedOptimizer(m.parameters(), checkpoint=checkpoint),
        "adam (lr 1e-3, default)": lambda m: torch.optim.Adam(m.parameters(), lr=1e-3),
        "adam (lr 0.1)": lambda m: torch.optim.Adam(m.parameters(), lr=0.1),
    }.items():
        torch.manual_seed(0)
        model = torch.nn.Linear(20, 1, bias=False)
        curves[label] = train_model(model, make(model), args.steps, seed=1)
        print(f"{label:26s} loss after {args.steps} steps: {curves[label][-1]:.4f}")
    (out / "custom_family.json").write_text(json.dumps({"meta_train_seconds": result.state.seconds,
                                                          "final": {k: v[-1] for k, v in curves.items()},
                                                          "curves": curves}, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for label, c in curves.items():
        plt.plot(c, label=label)
    plt.yscale("log")
    plt.xlabel("step")
    plt.ylabel("training loss")
    plt.legend()
    plt.savefig(out / "custom_family.png", dpi=120)
    print(f"figure: {out / 'custom_family.png'}")


if __name__ == "__main__":
    main()
