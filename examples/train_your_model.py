"""Train ordinary PyTorch models with a shipped learned optimizer, next to Adam.

Two models on MNIST: an MLP (784-20-10, sigmoid: the kind of network the shipped `mnist` optimizer was
meta-trained on) and a small conv net (two 3×3 conv layers with ReLU and max pooling, then a linear
layer: a kind it never saw). Each is trained from the same initialisation on the same minibatches with

    l2o.LearnedOptimizer(model.parameters(), checkpoint="mnist")
    torch.optim.Adam(model.parameters())                     # its default lr, 1e-3
    torch.optim.Adam(model.parameters(), lr=<tuned>)         # the best lr of a grid, chosen on validation images

and the test-set loss after every `--eval-every` steps is printed, saved (JSON) and plotted.
MNIST comes from the data step (`l2o data mnist`).

    .venv/bin/python examples/train_your_model.py [--model mlp|convnet|both] [--steps 200] [--out runs/examples]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import l2o
from l2o.data import load

ADAM_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def make_model(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 20), nn.Sigmoid(), nn.Linear(20, 10))
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def data():
    arrays = load("mnist")
    x = torch.from_numpy(arrays.train_images).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(arrays.train_labels).long()
    xt = torch.from_numpy(arrays.test_images).float().div_(255).unsqueeze(1)
    yt = torch.from_numpy(arrays.test_labels).long()
    return (x[:50_000], y[:50_000]), (x[50_000:], y[50_000:]), (xt, yt)


def train(kind, make_opt, train_set, eval_set, steps, eval_every, seed=0):
    """Train from a fixed initialisation on a fixed sequence of minibatches of 128; the eval-set loss curve."""
    torch.manual_seed(seed)
    model = make_model(kind)
    opt = make_opt(model)
    gen = torch.Generator().manual_seed(seed)
    curve = []
    for step in range(steps + 1):
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                curve.append((step, F.cross_entropy(model(eval_set[0]), eval_set[1]).item()))
        if step == steps:
            break
        idx = torch.randint(0, len(train_set[0]), (128,), generator=gen)
        loss = F.cross_entropy(model(train_set[0][idx]), train_set[1][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="both", choices=["mlp", "convnet", "both"])
    parser.add_argument("--steps", type=int, default=200, help="training steps (default: 200)")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--checkpoint", default="mnist", help="a shipped optimizer (`l2o pretrained`) or a path")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_set, val_set, test_set = data()
    results = {}
    for kind in (["mlp", "convnet"] if args.model == "both" else [args.model]):
        # Adam's learning rate, tuned on validation images (never the test set)
        val = {lr: train(kind, lambda m, lr=lr: torch.optim.Adam(m.parameters(), lr=lr), train_set, val_set,
                         args.steps, args.steps)[-1][1] for lr in ADAM_GRID}
        best_lr = min(val, key=val.get)
        curves = {
            f"learned ({args.checkpoint})": train(kind, lambda m: l2o.LearnedOptimizer(m.parameters(), checkpoint=args.checkpoint),
                                                  train_set, test_set, args.steps, args.eval_every),
            "adam (lr 1e-3, default)": train(kind, lambda m: torch.optim.Adam(m.parameters()), train_set, test_set,
                                             args.steps, args.eval_every),
            f"adam (lr {best_lr:g}, tuned)": train(kind, lambda m: torch.optim.Adam(m.parameters(), lr=best_lr),
                                                   train_set, test_set, args.steps, args.eval_every),
        }
        results[kind] = {"steps": args.steps, "adam_validation_losses": val, "tuned_lr": best_lr,
                         "final_test_loss": {k: c[-1][1] for k, c in curves.items()}, "curves": curves}
        print(f"{kind}: test loss after {args.steps} steps")
        for label, c in curves.items():
            print(f"    {label:28s} {c[-1][1]:.4f}")
    (out / "train_your_model.json").write_text(json.dumps(results, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (kind, r) in zip(axes[0], results.items()):
        for label, c in r["curves"].items():
            ax.plot(*zip(*c), label=label, linestyle="-" if label.startswith("learned") else "--")
        ax.set_yscale("log")
        ax.set_title(f"{kind} on MNIST")
        ax.set_xlabel("step")
        ax.set_ylabel("test loss")
        ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out / "train_your_model.png", dpi=120)
    print(f"results: {out / 'train_your_model.json'}   figure: {out / 'train_your_model.png'}")


if __name__ == "__main__":
    main()
