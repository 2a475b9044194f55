"""Meta-train a learned optimizer on your own nn.Module, with no functional loss to write: ModuleFamily turns a
model factory, a dataset and a loss into a task family (torch.func.functional_call, problems side by side).

The model here is a small CNN on 8×8 images of two classes (a bright bar, horizontal or vertical, in noise); any
nn.Module and any (inputs, targets) tensors work the same way. After meta-training, the learned optimizer and
Adam train fresh copies of the model on held-out problems (new initialisations and minibatches of the test data).

    .venv/bin/python examples/your_module.py [--episodes 60] [--out runs/examples]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

import l2o
from l2o.evaluate import evaluate
from l2o.tune import lr_grid, tune, tuned_rules


def bars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy 1×8×8 images with a bright bar, horizontal (label 0) or vertical (label 1)."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    where = torch.randint(0, 8, (n,), generator=gen)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, where[i], :] += 1.0
        else:
            x[i, 0, :, where[i]] += 1.0
    return x, y


def make_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=60, help="meta-training episodes (default: 60)")
    parser.add_argument("--steps", type=int, default=50, help="steps per problem (default: 50)")
    parser.add_argument("--out", default="runs/examples", help="output folder")
    parser.add_argument("--init-from", default="mnist",
                        help="start from this optimizer (default: the shipped mnist one; \"\" for a fresh LSTM)")
    args = parser.parse_args()
    out = Path(args.out)

    data = {"train": bars(2000, 0), "validation": bars(500, 1), "test": bars(500, 2)}
    family = l2o.ModuleFamily(make_model, data, nn.functional.cross_entropy, batch_size=32, name="bars-cnn")
    cfg = l2o.TrainConfig(episodes=args.episodes, horizon=args.steps, unroll=10, problems=4, meta_lr=3e-3,
                          schedule="cosine", log_loss=True, val_every=max(1, args.episodes // 4), val_problems=8,
                          init_from=args.init_from)
    result = l2o.meta_train(family, l2o.LSTMRule(output_scale=0.1), cfg, out / "bars_run", resume="auto")
    print(f"meta-trained in {result.state.seconds:.0f} s ({'vectorised' if family.vectorised else 'a loop'} over "
          f"problems)")

    tuning = tune(family, ("adam",), grid=lr_grid(1e-3, 1.0, 2), steps=args.steps, num_problems=8,
                      progress=False)
    rules = {"learned": result.rule, **tuned_rules(tuning)}
    results = evaluate(rules, family, steps=args.steps, num_problems=16, progress=False)
    final = {k: r["final_mean"] for k, r in results["rules"].items()}
    for k, v in final.items():
        print(f"{k:8s} mean loss at step {args.steps} on 16 held-out problems: {v:.4f}")
    (out / "your_module.json").write_text(json.dumps({"final": final, "adam_lr": tuning["baselines"]["adam"]["lr"],
                                                      "meta_train_seconds": result.state.seconds}, indent=1))


if __name__ == "__main__":
    main()
