"""One step (no autograd) of each learned rule on one optimizee of n coordinates, against the plain LSTM in
the same run, and the size of each rule's state:

- LSTM, fused kernel and PyTorch implementation (the reference for the ratios: the PyTorch one, since the
  other rules run on PyTorch);
- LSTM on moment features with the direct term (`general`'s rule: decays 0.5, 0.9, 0.99, 0.999, no gradient
  input), fused and PyTorch, and fused inside ``SpikeCut`` (the shipped `general`'s controller);
- LSTM+GAC (2 global averaging cells per layer);
- NTM-L-BFGS (windowed memory of 30 pairs; 1 read head, 3 write heads, 2 GACs);
- NTM-BFGS with the full n × n memory where n allows it (max_full = 4,096 coordinates);
- the PyTorch LSTM once more with its cells in one call on every row (``CHUNK_ROWS`` unbounded), against
  the pieces of 16,384 rows it runs in without autograd when single-threaded (with more threads both rows
  time the same code).

    .venv/bin/python benchmarks/rule_step.py [--sizes 15910 1000000] [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from l2o.rules import LSTMRule, NTMRule, SpikeCut
from l2o.rules import lstm as lstm_module
from l2o.rules.base import tree_leaves


MOMENTS = dict(moments=(0.5, 0.9, 0.99, 0.999), gradient_input=False, direct=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 15_910, 1_000_000])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; one optimizee (B = 1), no autograd")
    print(f"{'rule':<26} {'n':>9} {'ms':>9} {'vs LSTM (torch)':>16} {'state MB':>9} {'bytes/coord':>12}")
    torch.manual_seed(0)
    for n in args.sizes:
        grads = {"theta": torch.randn(1, n) * 1e-2}
        rules = [("LSTM (torch)", LSTMRule(implementation="torch")), ("LSTM (fused)", LSTMRule(implementation="auto")),
                 ("LSTM moments (fused)", LSTMRule(**MOMENTS, implementation="auto")),
                 ("LSTM moments (torch)", LSTMRule(**MOMENTS, implementation="torch")),
                 ("LSTM moments, SpikeCut", SpikeCut(LSTMRule(**MOMENTS, implementation="auto"))),
                 ("LSTM+GAC 2", LSTMRule(gac=2)), ("NTM-L-BFGS window 30", NTMRule(memory="window", window=30))]
        if n <= NTMRule().cfg.max_full:
            rules.append(("NTM-BFGS full memory", NTMRule(memory="full")))
        rules.append(("LSTM (torch, one call)", LSTMRule(implementation="torch")))
        steps, sizes = [], []
        for label, rule in rules:
            rule.requires_grad_(False)
            state = rule.init(grads)
            sizes.append(sum(t.numel() * t.element_size() for t in tree_leaves(state)))

            def step(rule=rule, state=state, pieces=lstm_module.CHUNK_ROWS if "one call" not in label else 1 << 62):
                chunk, lstm_module.CHUNK_ROWS = lstm_module.CHUNK_ROWS, pieces
                try:
                    with torch.no_grad():
                        rule.update(grads, state)
                finally:
                    lstm_module.CHUNK_ROWS = chunk

            step()  # warm-up
            steps.append(step)
        times = [[] for _ in rules]
        for _ in range(args.reps):  # interleaved, so that the machine's drift hits every rule alike
            for i, step in enumerate(steps):
                t0 = time.perf_counter()
                step()
                times[i].append(time.perf_counter() - t0)
        medians = [statistics.median(t) for t in times]
        for (label, _), seconds, size in zip(rules, medians, sizes):
            print(f"{label:<26} {n:>9,} {seconds * 1e3:>9.2f} {seconds / medians[0]:>15.2f}× {size / 2**20:>9.1f} "
                  f"{size / n:>12.0f}")
        if n > NTMRule().cfg.max_full:
            print(f"{'NTM-BFGS full memory':<26} {n:>9,}   refused: n × n = {n * n * 4 / 2**30:.1f} GiB per optimizee")


if __name__ == "__main__":
    main()
