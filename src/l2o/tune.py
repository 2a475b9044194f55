"""Learning-rate search for the hand-designed baselines, on validation problems only.

Each baseline is run with every learning rate of a log-spaced grid on the same problems of the
family's "validation" stream; the rate with the lowest mean final loss wins (a diverged run scores
+inf). Test problems are never seen here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from l2o import checkpoint
from l2o.meta.train import score
from l2o.meta.unroll import unroll
from l2o.rules.baselines import BASELINES
from l2o.tasks.base import TaskFamily


def lr_grid(low: float = 1e-4, high: float = 10.0, per_decade: int = 4) -> list[float]:
    """Log-spaced rates from ``low`` to ``high`` inclusive, ``per_decade`` per factor of ten."""
    if not (0 < low <= high) or per_decade < 1:
        raise ValueError(f"need 0 < low <= high and per_decade >= 1, got {low}, {high}, {per_decade}")
    n = round(math.log10(high / low) * per_decade)
    return [float(f"{low * 10 ** (i / per_decade):.6g}") for i in range(n + 1)]


def tune(
    family: TaskFamily,
    names: tuple[str, ...] = ("sgd", "nag", "rmsprop", "adam"),
    *,
    grid: list[float] | None = None,
    steps: int = 100,
    num_problems: int = 128,
    seed: int = 0,
    metric: str = "final",
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Best learning rate per baseline; returns the scores of the whole grid too."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; available: {', '.join(BASELINES)}")
    grid = grid or lr_grid()
    task = family.sample("validation", seed, num_problems).to(device)
    out: dict[str, Any] = {"task": family.config(), "split": "validation", "seed": seed, "steps": steps,
                           "num_problems": num_problems, "metric": metric, "grid": grid, "baselines": {}}
    bar = tqdm(total=len(names) * len(grid), desc="tune baselines", disable=not progress)
    for name in names:
        scores = []
        for lr in grid:
            scores.append(score(unroll(BASELINES[name](lr=lr), task, steps).losses, metric))
            bar.update(1)
        best = min(range(len(grid)), key=lambda i: scores[i])
        if not math.isfinite(scores[best]):
            raise RuntimeError(f"{name} diverged at every learning rate of the grid")
        out["baselines"][name] = {
            "lr": grid[best], "score": scores[best],
            "scores": [s if math.isfinite(s) else None for s in scores],
            "at_grid_edge": best in (0, len(grid) - 1),
        }
    bar.close()
    return out


def save_tuning(tuning: dict[str, Any], path: str | Path) -> None:
    checkpoint.write_json(path, tuning)


def load_tuning(path: str | Path) -> dict[str, Any]:
    return checkpoint.read_json(path, "tuning", "baselines", "make one with `l2o tune`")


def tuned_rules(tuning: dict[str, Any]) -> dict[str, Any]:
    """The baselines at their tuned learning rates, ready for ``evaluate``."""
    return {name: BASELINES[name](lr=b["lr"]) for name, b in tuning["baselines"].items()}
