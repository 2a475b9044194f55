"""Quadratic meta-training throughput: a batch of problems as one tensor vs a Python loop over problems.

Prints optimizee steps per second (problems × steps / seconds) of one truncation (unroll 20, forward and
meta-backward) for each, medians of interleaved repetitions, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from l2o.meta import unroll
from l2o.rules import LSTMRule
from l2o.tasks import QuadraticFamily


def truncation(rule, task) -> None:
    out = unroll(rule, task, 20, meta=True)
    out.losses[1:].mean(-1).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rule = LSTMRule(preprocess=False, output_scale=1.0)
    family = QuadraticFamily()
    batch = family.sample("train", 0, args.problems)
    singles = [family.sample("train", 1000 + i, 1) for i in range(args.problems)]
    times = {"vectorised": [], "loop": []}
    truncation(rule, batch)  # warm-up
    for _ in range(args.reps):
        t = time.perf_counter()
        truncation(rule, batch)
        times["vectorised"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for task in singles:
            truncation(rule, task)
        times["loop"].append(time.perf_counter() - t)
    steps = args.problems * 20
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.problems} problems, unroll 20")
    for k in ("vectorised", "loop"):
        print(f"{k:>10}: {steps / med[k]:10.0f} optimizee steps/s  ({med[k] * 1e3:.1f} ms per truncation)")
    print(f"vectorised / loop: {med['loop'] / med['vectorised']:.1f}×")


if __name__ == "__main__":
    main()
