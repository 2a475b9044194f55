"""Shared by several tests: a batch of problems side by side must give what each problem gives alone (rules that
look at all coordinates of one optimizee); another process holding a run's lock (the run folder's guard)."""

import contextlib
import subprocess
import sys

import torch

from l2o.meta import unroll


def assert_problems_stay_apart(rule, family, steps: int = 4, problems: int = 2) -> None:
    task = family.sample("test", 0, problems)
    together = unroll(rule, task, steps).params
    for b in range(problems):
        one = type(task)(task.cfg, task.data, {k: v[b:b + 1] for k, v in task.theta0.items()}, task.seed)
        one.batch = lambda step, b=b: tuple(t[b:b + 1] for t in task.batch(step))  # the same minibatches
        alone = unroll(rule, one, steps).params
        for k in together:
            torch.testing.assert_close(together[k][b:b + 1], alone[k], rtol=1e-5, atol=1e-7)


@contextlib.contextmanager
def lock_held_elsewhere(path, written: str = ""):
    """Another process holds the advisory lock on ``path`` (a run's .lock, as a process meta-training it would),
    having written ``written`` into it, for the life of the block; yields that process."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f.fileno(), fcntl.LOCK_EX); "
        "f.truncate(0); f.write(sys.argv[2]); f.flush(); print('held', flush=True); time.sleep(60)"),
        str(path), written], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()
