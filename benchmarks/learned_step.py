"""One learned-optimizer step (no autograd) against the machine's floor, a naive reference and Adam.

Measured in one run, so that the ratios hold on a shared, noisy machine:
- the floor: matrix-multiply throughput (a large float32 GEMM) and memory bandwidth (a large copy); a
  learned step at n parameters needs at least max(FLOPs / throughput, bytes / bandwidth), with
  FLOPs = 2 · n · (4H(I+H) + 4H·2H + H) and bytes = 4 · n · (2 · 4H state + gradient + update);
- the library's step (``LSTMRule.step_flat``: the compiled fused kernel, in place, as LearnedOptimizer
  uses it), the whole ``LearnedOptimizer.step`` on one parameter of n elements ("optim"), the naive
  eager reference (benchmarks/naive_lstm.py) and ``torch.optim.Adam.step``;
medians of interleaved repetitions. The kernel's build (or cache load) time is printed separately.

    .venv/bin/python benchmarks/learned_step.py [--sizes 15910 1000000] [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from naive_lstm import NaiveLSTMOptimizer  # noqa: E402

from l2o import LearnedOptimizer, kernels  # noqa: E402
from l2o.rules import LSTMRule  # noqa: E402

H, I = 20, 2


def timeit(fn, reps: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def step_flops(n: int) -> int:
    """Multiply-add FLOPs of one learned step (one forward pass) at n parameters."""
    return 2 * n * (4 * H * (I + H) + 4 * H * 2 * H + H)


def machine_floor(reps: int) -> tuple[float, float]:
    """(FLOP/s of a float32 GEMM, bytes/s of a large copy), best of ``reps``."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gemm = min(timeit(lambda: torch.mm(a, b), 3) for _ in range(reps))
    src = torch.randn(64 * 2**20)  # 256 MB
    dst = torch.empty_like(src)
    copy = min(timeit(lambda: dst.copy_(src), 3) for _ in range(reps))
    return 2 * 2048**3 / gemm, 2 * src.numel() * 4 / copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[15_910, 1_000_000])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    t = time.perf_counter()
    ready = kernels.lstm_step() is not None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fused kernel "
          f"{'ready' if ready else 'NOT available: ' + str(kernels.status()['error'])} "
          f"(build or cache load: {time.perf_counter() - t:.1f} s)")
    flops_s, bytes_s = machine_floor(3)
    print(f"machine: GEMM {flops_s / 1e9:.0f} GFLOP/s, copy bandwidth {bytes_s / 1e9:.1f} GB/s")
    rule = LSTMRule(preprocess=True).requires_grad_(False)
    naive = NaiveLSTMOptimizer().requires_grad_(False).load_from(rule)
    print(f"{'n':>9} {'floor ms':>9} {'library ms':>11} {'optim ms':>9} {'naive ms':>9} {'adam ms':>8} "
          f"{'naive/library':>14} {'library/floor':>14} {'library/adam':>13}")
    for n in args.sizes:
        flops = step_flops(n)
        traffic = 4 * n * (2 * 4 * H + 2)
        floor = max(flops / flops_s, traffic / bytes_s)
        grad = torch.randn(n) * 1e-2
        state = rule.init_flat(n)
        nstate = ((torch.zeros(n, H), torch.zeros(n, H)), (torch.zeros(n, H), torch.zeros(n, H)))
        param = torch.nn.Parameter(torch.zeros(n))
        param.grad = grad.clone()
        adam = torch.optim.Adam([param], lr=1e-3)
        lparam = torch.nn.Parameter(torch.zeros(n))
        lparam.grad = grad.clone()
        learned = LearnedOptimizer([lparam], checkpoint="quadratic")
        reps = args.reps if n < 200_000 else max(3, args.reps // 2)
        times = {"library": [], "optimizer": [], "naive": [], "adam": []}
        with torch.no_grad():
            for _ in range(reps):
                times["library"].append(timeit(lambda: rule.step_flat(grad, state, out=state), 3))
                times["optimizer"].append(timeit(learned.step, 3))
                times["naive"].append(timeit(lambda: naive(grad, nstate), 1))
                times["adam"].append(timeit(adam.step, 3))
        m = {k: statistics.median(v) for k, v in times.items()}
        print(f"{n:>9} {floor * 1e3:>9.2f} {m['library'] * 1e3:>11.2f} {m['optimizer'] * 1e3:>9.2f} {m['naive'] * 1e3:>9.2f} "
              f"{m['adam'] * 1e3:>8.2f} {m['naive'] / m['library']:>13.1f}× {m['library'] / floor:>13.1f}× "
              f"{m['library'] / m['adam']:>12.1f}×")


if __name__ == "__main__":
    main()
