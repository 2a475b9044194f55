"""Truncated BPTT in segments (``TrainConfig.remat``) against in one piece: one truncation's meta-gradient on the
paper's MNIST MLP (2 problems side by side, the `general` trials' rule with moment inputs, fused kernel), its time
and the process's peak memory. Each setting runs in its own process (peak memory cannot be reset within one),
in alternation, and the ratios are against the one-piece run of the same round.

    .venv/bin/python benchmarks/remat.py [--unroll 200] [--segments 0 50 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(unroll: int, remat: int) -> dict:
    import torch

    from l2o.meta.estimators import TruncatedBPTT
    from l2o.rules.lstm import LSTMConfig, LSTMRule
    from l2o.tasks.mlp import ImageMLPFamily, MLPConfig

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LSTMConfig(moments=(0.5, 0.9, 0.99, 0.999), gradient_input=False, direct=True, learn_direct=False,
                     correction="scale", correction_scale=2.3, output_init=1.0, moment_eps=1e-6)
    rule = LSTMRule(cfg)
    task = ImageMLPFamily(MLPConfig()).sample("train", 0, 2)
    est = TruncatedBPTT(unroll, remat=remat)
    carry = est.start(rule, task)
    start = time.perf_counter()
    est.estimate(rule, task, carry, 0, lambda losses, k: losses[1:].clamp_min(1e-30).log().mean(-1).sum())
    seconds = time.perf_counter() - start
    grad = torch.cat([p.grad.flatten() for p in rule.parameters()])
    return {"seconds": seconds, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "grad": grad.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unroll", type=int, default=200)
    parser.add_argument("--segments", type=int, nargs="+", default=[0, 50, 20])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(one(*args.worker)))
        return
    if args.segments[0] != 0:
        args.segments = [0] + args.segments
    print(f"one truncation of {args.unroll} steps, MNIST MLP, 2 problems; remat 0 = in one piece (the reference)")
    print("round  remat  seconds  peak memory (GB)  time / one piece  memory / one piece  gradient vs one piece")
    for r in range(args.rounds):
        ref = None
        for remat in args.segments:
            out = subprocess.run([sys.executable, __file__, "--worker", str(args.unroll), str(remat)],
                                 capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            if ref is None:
                ref = res
            diff = sum((a - b) ** 2 for a, b in zip(res["grad"], ref["grad"])) ** 0.5
            norm = sum(a * a for a in ref["grad"]) ** 0.5
            print(f"{r:5d}  {remat:5d}  {res['seconds']:7.2f}  {res['peak_gb']:16.2f}  "
                  f"{res['seconds'] / ref['seconds']:16.2f}  {res['peak_gb'] / ref['peak_gb']:18.2f}  "
                  f"relative difference {diff / norm:.1e}", flush=True)


if __name__ == "__main__":
    main()
