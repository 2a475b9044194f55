"""The fused kernel's first use on a machine, as a new user meets it, each part in its own process with an
empty kernel cache (a fresh L2O_KERNEL_CACHE):

1. a script that makes one ``LearnedOptimizer`` step and exits, killed (SIGKILL) while it compiles;
2. the same script again, to its end (it compiles the kernel and steps on it);
3. the build step, ``python -m l2o.kernels``, under ``timeout 150``;
4. in a new process, one learned step at n = 1,000,000 (``LearnedOptimizer``, the shipped ``mnist`` rule)
   against the naive eager reference (benchmarks/naive_lstm.py) on the same gradient: the ratio of their
   median times.

    .venv/bin/python benchmarks/first_use.py [--kill-after 5] [--n 1000000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_STEP = ("import torch, l2o; w = torch.zeros(100, requires_grad=True); "
            "o = l2o.LearnedOptimizer([w], checkpoint='mnist'); w.grad = torch.ones(100); o.step(); "
            "print('one step, implementation', o.rule.implementation)")

STEP_AT_N = """
import statistics, sys, time, torch
sys.path.insert(0, {bench!r})
from naive_lstm import NaiveLSTMOptimizer
import l2o
n = {n}
w = torch.zeros(n, requires_grad=True)
opt = l2o.LearnedOptimizer([w], checkpoint="mnist")
w.grad = torch.randn(n, generator=torch.Generator().manual_seed(0))
naive = NaiveLSTMOptimizer.like(opt.rule).requires_grad_(False)
state = ((torch.zeros(n, 20), torch.zeros(n, 20)), (torch.zeros(n, 20), torch.zeros(n, 20)))
def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return statistics.median(out)
with torch.no_grad():
    library = timed(opt.step, 5)
    reference = timed(lambda: naive(w.grad, state), 3)
print(f"implementation {{opt.rule.implementation}}; n = {{n:,}}: library {{library * 1e3:.1f}} ms, naive "
      f"{{reference * 1e3:.1f}} ms, naive / library {{reference / library:.1f}}x")
"""


def run(cmd: list[str], env: dict, timeout: float | None = None) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        code, out = 124, (e.stdout or b"").decode() + (e.stderr or b"").decode()
    return code, out.strip(), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds before the first script is killed")
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="l2o-first-use-")
    env = {**os.environ, "L2O_KERNEL_CACHE": cache, "PYTHONUNBUFFERED": "1"}
    env.pop("L2O_KERNELS", None)
    print(f"empty kernel cache: {cache}")

    proc = subprocess.Popen([sys.executable, "-c", ONE_STEP], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    time.sleep(args.kill_after)
    proc.send_signal(signal.SIGKILL)
    out = proc.communicate()[0].strip()
    left = sorted(p.name for p in Path(cache).iterdir())
    print(f"1. one-step script killed after {args.kill_after:.0f} s (exit {proc.returncode}); it had said: {out!r}; "
          f"the cache holds: {left}")

    code, out, seconds = run([sys.executable, "-c", ONE_STEP], env)
    print(f"2. one-step script again: exit {code} in {seconds:.1f} s; it said: {out!r}")

    code, out, seconds = run(["timeout", "150", sys.executable, "-m", "l2o.kernels"], env)
    print(f"3. timeout 150 python -m l2o.kernels: exit {code} in {seconds:.1f} s; it said: {out!r}")

    script = STEP_AT_N.format(bench=str(Path(__file__).parent), n=args.n)
    code, out, seconds = run([sys.executable, "-c", script], env)
    print(f"4. a new process, one learned step: exit {code}; {out}")


if __name__ == "__main__":
    main()
