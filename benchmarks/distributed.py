"""Distributed meta-training (torchrun, gloo): optimizee steps per second on the MNIST task with 1 and with N
processes (1 thread each), the scaling efficiency, the time spent communicating, the cost of one all-reduce of
φ's gradient, and a projection of throughput at 8 and 64 workers from those measurements.

Weak scaling, as one would add machines: each process optimises --per-process problems per episode, so N
processes run N times as many problems per episode (--problems N × per-process). The 1-process run is the
reference measured in the same invocation.

    .venv/bin/python benchmarks/distributed.py [--processes 2] [--episodes 6] [--per-process 2]

Needs MNIST (`l2o data mnist`; the set-up fetches it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_cmd(out: Path, args, processes: int) -> list[str]:
    flags = ["train", "--task", "mnist", "--out", str(out), "--episodes", str(args.episodes), "--problems",
             str(args.per_process * processes), "--val-every", str(10**6), "--val-problems", str(processes),
             "--val-steps", "1", "--threads", "1", "--no-progress", "--checkpoint-every", str(10**6)]
    if processes == 1:
        return [sys.executable, "-m", "l2o", *flags]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "l2o", *flags]


def measure(args, processes: int, root: Path) -> dict:
    out = root / f"p{processes}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(train_cmd(out, args, processes), capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"the {processes}-process run failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    from l2o.meta.run_folder import load_latest

    state = load_latest(out)[1]["train_state"]
    steps = state["episode"] * args.per_process * processes * 100  # the mnist task's horizon: 100
    return {"processes": processes, "problems_per_episode": args.per_process * processes,
            "seconds": state["seconds"], "comm_seconds": state["comm_seconds"], "meta_steps": state["meta_steps"],
            "optimizee_steps_per_s": steps / state["seconds"]}


def allreduce_worker(numel: int, reps: int) -> None:
    """Under torchrun: time all-reduces of ``numel`` floats; process 0 prints the mean seconds as JSON."""
    import torch
    import torch.distributed as dist

    from l2o.meta import distributed

    world, _ = distributed.setup("cpu", threads=1)
    x = torch.ones(numel)
    for _ in range(10):
        dist.all_reduce(x)
    dist.barrier()
    t = time.perf_counter()
    for _ in range(reps):
        dist.all_reduce(x)
    seconds = (time.perf_counter() - t) / reps
    if world.main:
        print(json.dumps({"numel": numel, "seconds": seconds}))
    distributed.teardown()


def allreduce(numel: int, processes: int, reps: int = 200) -> float:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           __file__, "--allreduce-worker", str(numel), str(reps)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode:
        raise SystemExit(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--per-process", type=int, default=2, help="problems per process per episode")
    parser.add_argument("--allreduce-worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allreduce_worker:
        allreduce_worker(*args.allreduce_worker)
        return
    from l2o.rules.lstm import LSTMRule

    numel = sum(p.numel() for p in LSTMRule().parameters())
    with tempfile.TemporaryDirectory() as tmp:
        one = measure(args, 1, Path(tmp))
        many = measure(args, args.processes, Path(tmp))
    latency = allreduce(1, args.processes)
    full = allreduce(numel, args.processes)
    big = allreduce(numel * 256, args.processes, reps=20)
    bandwidth = (numel * 256 - 1) * 4 / max(big - latency, 1e-9)  # bytes per second through the ring
    efficiency = many["optimizee_steps_per_s"] / (args.processes * one["optimizee_steps_per_s"])
    print(f"MNIST task (MLP 784-20-10, horizon 100, unroll 20), {args.per_process} problems per process per episode, "
          f"{args.episodes} episodes, 1 thread per process, gloo on this machine ({os.cpu_count()} cores)")
    for m in (one, many):
        print(f"  {m['processes']} process(es): {m['optimizee_steps_per_s']:8.1f} optimizee steps/s; "
              f"communication {m['comm_seconds']:.2f} s of {m['seconds']:.1f} s "
              f"({100 * m['comm_seconds'] / m['seconds']:.1f}%, waiting for the slower process included)")
    print(f"  scaling efficiency at {args.processes}: {efficiency:.3f} "
          f"(throughput {many['optimizee_steps_per_s'] / one['optimizee_steps_per_s']:.2f}× one process)")
    print(f"  all-reduce of φ's gradient ({numel} floats, {numel * 4 / 1024:.1f} KiB): {full * 1e6:.0f} µs; of one "
          f"float: {latency * 1e6:.0f} µs; ring bandwidth ≈ {bandwidth / 1e6:.0f} MB/s")
    # projection: per meta-step, each worker computes for c seconds (its problems), then one ring all-reduce of
    # M bytes over N workers: 2(N − 1) latency terms and 2(N − 1)/N · M / bandwidth
    c = one["seconds"] / one["meta_steps"]
    per_worker = one["optimizee_steps_per_s"]
    for label, alpha, beta in (("this machine's measured gloo", latency / 2, bandwidth),
                               ("an assumed 10 Gb/s network, 50 µs latency", 50e-6, 1.25e9)):
        parts = []
        for n in (8, 64):
            comm = 2 * (n - 1) * alpha + 2 * (n - 1) / n * numel * 4 / beta
            parts.append(f"{n} workers ≈ {n * per_worker * c / (c + comm):,.0f} steps/s "
                         f"(efficiency {c / (c + comm):.3f}, all-reduce {comm * 1e3:.2f} ms of {c * 1e3:.0f} ms)")
        print(f"  projection, {label}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
