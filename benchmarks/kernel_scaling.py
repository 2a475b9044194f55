"""The compiled LSTM kernel alone: time per coordinate of its forward and backward calls, by n and threads.

Prints, for each thread count and n, the median time of one forward call (``lstm_step``) and one backward
call (``lstm_step_backward``: recomputation of the gates, weight gradients and input gradients) in
milliseconds and in nanoseconds per coordinate, next to the floor of one forward pass measured in the same
run (FLOPs / GEMM throughput, as in learned_step.py; the backward pass does three forward passes' worth of
multiply-adds). A time per coordinate that stays flat as n grows past the caches means the kernel is bound
by arithmetic, not by memory; the ratio of the 1-thread to the 2-thread time is its parallel speed-up.

    .venv/bin/python benchmarks/kernel_scaling.py [--sizes 2048 16384 65536 262144] [--threads 1 2] [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from learned_step import H, machine_floor, step_flops, timeit  # noqa: E402

from l2o import kernels  # noqa: E402
from l2o.kernels import fused_lstm  # noqa: E402
from l2o.rules import LSTMRule  # noqa: E402


def per_call(fn, n: int) -> float:
    """Seconds per call, over enough calls for ~10 ms of work."""
    return timeit(fn, max(3, 2_000_000 // (n * 40)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 16384, 65536, 262144])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    if min(args.sizes) < 1 or min(args.threads) < 1 or args.reps < 1:
        parser.error("--sizes, --threads and --reps must be >= 1")
    kernel = kernels.lstm_step()
    if kernel is None:
        sys.exit(f"the compiled kernel is not available: {kernels.status()['error']}")
    flops_s, _ = machine_floor(3)
    floor_ns = step_flops(1) / flops_s * 1e9
    print(f"torch {torch.__version__}; GEMM {flops_s / 1e9:.0f} GFLOP/s (with torch's default "
          f"{torch.get_num_threads()} threads): floor of a forward pass {floor_ns:.1f} ns per coordinate")
    rule = LSTMRule(preprocess=True, output_init=1.0).requires_grad_(False)
    weights, bout = fused_lstm.packed(rule.cells, rule.out), float(rule.out.bias)
    settings = (2, rule.cfg.p, rule.cfg.input_scale, rule.cfg.output_scale)
    default_threads = torch.get_num_threads()
    print(f"{'threads':>7} {'n':>8} {'forward ms':>11} {'backward ms':>12} {'fwd ns/coord':>13} {'bwd ns/coord':>13} "
          f"{'fwd/floor':>10} {'bwd/fwd':>8}")
    gen = torch.Generator().manual_seed(0)
    for n in args.sizes:
        grad = torch.randn(n, generator=gen) * 1e-2
        extra = torch.empty(n, 0)
        state = [torch.randn(n, H, generator=gen) * 0.3 for _ in range(4)]
        new = [torch.empty(n, H) for _ in range(4)]
        update = torch.empty(n)
        dnew = [torch.randn(n, H, generator=gen) * 1e-3 for _ in range(4)]
        du = torch.randn(n, generator=gen)
        dold = [torch.empty(n, H) for _ in range(4)]

        def forward():
            kernel.lstm_step(grad, extra, *state, *weights, bout, *settings, update, *new)

        def backward():
            kernel.lstm_step_backward(grad, extra, *state, *weights, bout, *settings, du, *dnew, *dold)

        times = {t: ([], []) for t in args.threads}
        for _ in range(args.reps):  # thread counts interleaved, so that they see the same machine
            for t in args.threads:
                torch.set_num_threads(t)
                times[t][0].append(per_call(forward, n))
                times[t][1].append(per_call(backward, n))
        torch.set_num_threads(default_threads)
        for t in args.threads:
            f, b = statistics.median(times[t][0]), statistics.median(times[t][1])
            print(f"{t:>7} {n:>8} {f * 1e3:>11.3f} {b * 1e3:>12.3f} {f / n * 1e9:>13.1f} {b / n * 1e9:>13.1f} "
                  f"{f / n * 1e9 / floor_ns:>9.2f}× {b / f:>7.2f}×")


if __name__ == "__main__":
    main()
