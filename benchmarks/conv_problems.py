"""The conv-net task family: B problems side by side (one grouped convolution per layer) against a loop over
the B problems one at a time, for one loss and gradient (what an optimizer step costs the optimizee), on
generated images of CIFAR-10's shape (3×32×32) and of MNIST's (1×28×28), minibatches of 128.

    .venv/bin/python benchmarks/conv_problems.py [--problems 1 2 4 8] [--reps 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from l2o.tasks.conv import ConvConfig, ConvFamily, Images


def family(shape: tuple[int, int, int], n: int = 512) -> ConvFamily:
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n) % 10
    data = Images(x, y)
    return ConvFamily(ConvConfig(dataset="cifar10" if shape[0] == 3 else "mnist"),
                      data={"train": data, "validation": data, "test": data})


def loss_and_grad(task, params) -> None:
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    torch.autograd.grad(task.loss(params, 0).sum(), list(params.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; one loss and gradient, minibatch 128")
    print(f"{'images':<10} {'B':>3} {'side by side ms':>16} {'loop ms':>9} {'loop / side by side':>20}")
    for shape in ((3, 32, 32), (1, 28, 28)):
        fam = family(shape)
        for B in args.problems:
            together = fam.sample("train", 0, B)
            alone = [fam.sample("train", 1 + b, 1) for b in range(B)]
            p_together = together.init_params()
            p_alone = [t.init_params() for t in alone]
            runs = {"side": lambda: loss_and_grad(together, p_together),
                    "loop": lambda: [loss_and_grad(t, p) for t, p in zip(alone, p_alone)]}
            for fn in runs.values():
                fn()  # warm-up
            times = {k: [] for k in runs}
            for _ in range(args.reps):  # interleaved, so that the machine's drift hits both alike
                for k, fn in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - t0)
            side, loop = (statistics.median(times[k]) for k in ("side", "loop"))
            print(f"{'x'.join(map(str, shape)):<10} {B:>3} {side * 1e3:>16.1f} {loop * 1e3:>9.1f} {loop / side:>19.2f}×")


if __name__ == "__main__":
    main()
