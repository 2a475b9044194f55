"""Meta-training throughput on the paper's MNIST MLP task (784-20-10 sigmoid, batch 128, n = 15,910),
unroll 20, second derivatives dropped: optimizee steps per second and peak memory, library vs the naive
eager reference (benchmarks/naive_lstm.py driven by a plain loop). The MLP trains on MNIST's images when the
data step has put them in the data directory (``--data auto``, the default; ``--data mnist`` insists on
them), otherwise on synthetic inputs of MNIST's shape (``--data synthetic``); the first line printed says
which. Both implementations hold the same images, so both peak memories include them.

Each implementation runs in its own subprocess (so that peak resident memory is its own), alternating
library and naive for ``--rounds`` rounds; medians are printed with the ratio.

    .venv/bin/python benchmarks/meta_train_mlp.py [--rounds 3] [--truncations 5] [--data auto] [--data-dir DIR]

``--breakdown`` instead times the library's loop by part, per optimizee step (medians over truncations):
the compiled kernel's forward and backward calls, and everything else in the unroll and in the
meta-backward (the MLP's forward and gradient, the autograd glue).

    .venv/bin/python benchmarks/meta_train_mlp.py --breakdown [--truncations 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from naive_lstm import NaiveLSTMOptimizer  # noqa: E402

from l2o.data import DataError  # noqa: E402
from l2o.meta import unroll  # noqa: E402
from l2o.rules import LSTMRule, detach  # noqa: E402
from l2o.tasks.mlp import ImageMLPFamily, MLPFamily  # noqa: E402

UNROLL = 20


def make_task(choice: str, data_dir: str | None):
    """The paper's MNIST MLP (784-20-10 sigmoid, batch 128), one training problem, and which inputs it has
    ("mnist" or "synthetic") for ``--data auto|mnist|synthetic``. MNIST comes from the data step, which checks
    the files; ``auto`` falls back to synthetic inputs, ``mnist`` exits with the data step's message."""
    if choice != "synthetic":
        try:
            return ImageMLPFamily(data_dir=data_dir).sample("train", 0, 1), "mnist"
        except DataError as e:
            if choice == "mnist":
                sys.exit(f"--data mnist: {e}")
    return MLPFamily().sample("train", 0, 1), "synthetic"


def library_truncations(task, truncations: int):
    """The library's meta-training loop on ``task``; yields, per truncation, the seconds of the unroll,
    the meta-backward and the meta-optimizer's step. The set-up happens before the first yield's timing."""
    rule = LSTMRule(preprocess=True)
    opt = torch.optim.Adam(rule.parameters(), 1e-3)
    params, state = task.init_params(), None
    for k in range(truncations):
        t0 = time.perf_counter()
        out = unroll(rule, task, UNROLL, params=params, state=state, start=k * UNROLL, meta=True)
        t1 = time.perf_counter()
        opt.zero_grad()
        out.losses[1:].mean(-1).sum().backward()
        t2 = time.perf_counter()
        opt.step()
        params, state = detach(out.params), detach(out.state)
        yield t1 - t0, t2 - t1, time.perf_counter() - t2


def library(task, truncations: int) -> float:
    return sum(sum(parts) for parts in library_truncations(task, truncations))


def naive(task, truncations: int) -> float:
    net = NaiveLSTMOptimizer()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    theta = [p.reshape(-1) for p in task.init_params().values()]
    shapes = [(k, v.shape) for k, v in task.init_params().items()]
    flat = torch.cat(theta)
    n = flat.numel()
    state = ((torch.zeros(n, 20), torch.zeros(n, 20)), (torch.zeros(n, 20), torch.zeros(n, 20)))

    def as_params(vec):
        out, i = {}, 0
        for k, s in shapes:
            m = s.numel()
            out[k] = vec[i:i + m].view(s)
            i += m
        return out

    t = time.perf_counter()
    for k in range(truncations):
        flat = flat.detach().requires_grad_()
        state = tuple(tuple(s.detach() for s in layer) for layer in state)
        meta_loss = 0.0
        for i in range(UNROLL):
            loss = task.loss(as_params(flat), k * UNROLL + i).sum()
            if i > 0:
                meta_loss = meta_loss + loss
            (g,) = torch.autograd.grad(loss, flat, retain_graph=True)
            update, state = net(g, state)
            flat = flat + update
        meta_loss = meta_loss + task.loss(as_params(flat), (k + 1) * UNROLL).sum()
        opt.zero_grad()
        meta_loss.backward()
        opt.step()
    return time.perf_counter() - t


def breakdown(task, truncations: int, source: str) -> None:
    from l2o import kernels

    module = kernels.lstm_step()
    if module is None:
        sys.exit(f"the compiled kernel is not available: {kernels.status()['error']}")
    seconds = {"forward": 0.0, "backward": 0.0}

    class Timed:  # the compiled module, with its two calls timed
        def lstm_step(self, *args):
            t0 = time.perf_counter()
            module.lstm_step(*args)
            seconds["forward"] += time.perf_counter() - t0

        def lstm_step_backward(self, *args):
            t0 = time.perf_counter()
            out = module.lstm_step_backward(*args)
            seconds["backward"] += time.perf_counter() - t0
            return out

    kernels._state["module"] = Timed()  # the library's own handle on the compiled module (private; a diagnostic)
    rows = []
    for fwd, bwd, step in library_truncations(task, truncations + 1):  # the first is a warm-up
        rows.append([fwd - seconds["forward"], seconds["forward"], bwd - seconds["backward"], seconds["backward"],
                     step, fwd + bwd + step])
        seconds.update(forward=0.0, backward=0.0)
    med = [statistics.median(r[i] for r in rows[1:]) / UNROLL * 1e3 for i in range(6)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {source}, n = 15,910, unroll {UNROLL}; "
          f"ms per optimizee step, medians of {truncations} truncations")
    print(f"unroll:        kernel forward {med[1]:.2f}, everything else {med[0]:.2f}")
    print(f"meta-backward: kernel backward {med[3]:.2f}, everything else {med[2]:.2f}")
    print(f"meta-optimizer step {med[4]:.2f}; total {med[5]:.2f} ms ({1e3 / med[5]:.1f} optimizee steps/s)")


def child(which: str, task, truncations: int) -> None:
    fn = library if which == "library" else naive
    fn(task, 1)  # warm-up (and the kernel's cache load)
    seconds = fn(task, truncations)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"steps_per_s": truncations * UNROLL / seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--truncations", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true", help="time the library's loop by part instead")
    parser.add_argument("--data", choices=["auto", "mnist", "synthetic"], default="auto",
                        help="the MLP's inputs: MNIST if present (auto), MNIST, or synthetic inputs of its shape")
    parser.add_argument("--data-dir", help="where the datasets are (default: $L2O_DATA, else ~/.cache/l2o/data)")
    parser.add_argument("--child", choices=["library", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.truncations < 1:
        parser.error("--rounds and --truncations must be >= 1")
    task, which_data = make_task(args.data, args.data_dir)
    if args.child:
        return child(args.child, task, args.truncations)
    source = ("MNIST MLP (MNIST images)" if which_data == "mnist" else
              "MNIST-shaped MLP (synthetic inputs: MNIST is missing from the data directory or corrupt; `l2o data mnist` gets it)")
    if args.breakdown:
        return breakdown(task, args.truncations, source)
    runs = {"library": [], "naive": []}
    data_args = ["--data", which_data] + (["--data-dir", args.data_dir] if args.data_dir else [])
    for _ in range(args.rounds):
        for which in runs:
            out = subprocess.run([sys.executable, __file__, "--child", which, "--truncations", str(args.truncations),
                                  *data_args], check=True, capture_output=True, text=True).stdout
            runs[which].append(json.loads(out.strip().splitlines()[-1]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {source}, n = 15,910, unroll {UNROLL}")
    med = {}
    for which, rs in runs.items():
        med[which] = (statistics.median(r["steps_per_s"] for r in rs), statistics.median(r["peak_mb"] for r in rs))
        print(f"{which:>8}: {med[which][0]:8.1f} optimizee steps/s, peak memory {med[which][1]:.0f} MB")
    print(f"library / naive: {med['library'][0] / med['naive'][0]:.2f}× the steps per second, "
          f"{med['library'][1] / med['naive'][1]:.2f}× the peak memory")
    paired = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(runs["library"], runs["naive"])]
    print("per round (library / naive, run back to back): " + ", ".join(f"{r:.2f}×" for r in paired))


if __name__ == "__main__":
    main()
