"""Learning-rate search for the hand-designed baselines, on validation problems only.

Each baseline is run with every learning rate of a log-spaced grid on the same problems of the
family's "validation" stream; the rate with the lowest mean final loss wins (a diverged run scores
+inf). Test problems are never seen here.

A run has diverged, and scores +inf, from the first step where some problem's loss is not finite; it stops
there (at high rates most of the grid diverges within a few steps, and a baseline's parameters, once NaN, stay
so). With ``partial`` (a progress file) each finished run's score is saved, and an interrupted search resumes
from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from l2o import checkpoint
from l2o.meta.train import score
from l2o.meta.unroll import unroll
from l2o.partial import Partial
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
    partial: str | Path | None = None,
    on_done: Callable[[str, float, float], None] | None = None,
) -> dict[str, Any]:
    """Best learning rate per baseline; returns the scores of the whole grid too. ``partial``: a progress file
    (each finished run's score; the search resumes from it and removes it when done). ``on_done(run, seconds,
    cpu_seconds)``: called after each run this call computes, with its wall-clock and the process's CPU time (the
    result itself holds no timings, so that it is the same however it was computed)."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; available: {', '.join(BASELINES)}")
    grid = grid or lr_grid()
    task = family.sample("validation", seed, num_problems).to(device)
    out: dict[str, Any] = {"task": family.config(), "split": "validation", "seed": seed, "steps": steps,
                           "num_problems": num_problems, "metric": metric, "grid": grid, "baselines": {}}
    done = Partial(partial, {k: out[k] for k in ("task", "split", "seed", "steps", "num_problems", "metric")})
    bar = tqdm(total=len(names) * len(grid), desc="tune baselines", disable=not progress)
    for name in names:
        scores = []
        for lr in grid:
            piece = f"{name} {lr!r}"
            if piece not in done:
                started, cpu = time.perf_counter(), time.process_time()
                value = _score(BASELINES[name](lr=lr), task, steps, metric)
                done.put(piece, value if math.isfinite(value) else None)
                if on_done is not None:
                    on_done(piece, time.perf_counter() - started, time.process_time() - cpu)
            scores.append(math.inf if done.get(piece) is None else done.get(piece))
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
    done.finish()
    return out


class _Diverged(Exception):
    pass


def _stop_when_not_finite(i: int, loss: torch.Tensor) -> None:
    if not torch.isfinite(loss).all():
        raise _Diverged


def _score(rule, task, steps: int, metric: str) -> float:
    """The run's score; +inf as soon as some problem's loss is not finite."""
    try:
        return score(unroll(rule, task, steps, callback=_stop_when_not_finite).losses, metric)
    except _Diverged:
        return math.inf


def save_tuning(tuning: dict[str, Any], path: str | Path) -> None:
    checkpoint.write_json(path, tuning)


def load_tuning(path: str | Path) -> dict[str, Any]:
    return checkpoint.read_json(path, "tuning", "baselines", "make one with `l2o tune`")


def tuned_rules(tuning: dict[str, Any]) -> dict[str, Any]:
    """The baselines at their tuned learning rates, ready for ``evaluate``."""
    return {name: BASELINES[name](lr=b["lr"]) for name, b in tuning["baselines"].items()}
