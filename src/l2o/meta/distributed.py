"""Meta-training on several processes with ``torch.distributed``, launched by ``torchrun``.

    torchrun --nproc-per-node 2 -m l2o train --task mnist --problems 4 --out runs/ddp --resume auto

What the processes share, and how (``l2o.meta.train`` calls these at each point):

    problems      episode e's batch of ``problems`` problems is drawn exactly as by one process (from the run
                  seed and e alone); process r optimises its contiguous share (``share``), so a run is the same
                  run whatever the number of processes
    meta-loss     each process weighs its share's meta-loss by share / problems, so the sum over processes is
                  the one-process meta-loss
    meta-gradient summed over processes by one all-reduce of φ's gradient, flattened (``all_reduce_grads``);
                  every process then clips and steps the same Adam on the same numbers
    skips         a non-finite step anywhere is skipped everywhere (``l2o.meta.skip``)
    validation    each process runs its share of the validation problems; the losses are gathered, so every
                  process scores and keeps the same best weights
    files         process 0 writes the run's files (atomically); the others read them to resume

Without ``torchrun`` (no WORLD_SIZE in the environment) nothing here starts a process group, and a run is
exactly today's single-process run. CPU processes use gloo, GPUs NCCL (each process on cuda:LOCAL_RANK).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets WORLD_SIZE and RANK)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def current() -> World:
    """This process's place in the process group (a world of one when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    env = os.environ
    return World(dist.get_rank(), dist.get_world_size(), int(env.get("LOCAL_RANK", 0)),
                 int(env.get("LOCAL_WORLD_SIZE", dist.get_world_size())))


def setup(device: str = "cpu", threads: int = 0) -> tuple[World, str]:
    """Join the process group torchrun describes (gloo on CPUs, NCCL on CUDA) and return (world, this process's
    device): ``cuda`` becomes ``cuda:LOCAL_RANK``. CPU threads: ``threads`` if given, else the cores divided
    among the processes of this machine, so they do not oversubscribe it. Without torchrun: a world of one."""
    if not launched():
        return World(), device
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed; run without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    if device.startswith("cuda"):
        if not torch.cuda.is_available() or torch.cuda.device_count() <= local_rank:
            raise RuntimeError(f"--device cuda under torchrun: process {local_rank} of this machine needs GPU "
                               f"{local_rank}, and {torch.cuda.device_count()} are visible")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // local_size))
    if not dist.is_initialized():
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", store=_store(rank, size), rank=rank,
                                world_size=size)
    return current(), device


def _store(rank: int, size: int) -> dist.Store:
    """The rendezvous store of this attempt. torchrun's agent keeps one store across the restarts of a group, so
    a restarted process could read the address a killed one left there and fail to connect; each attempt
    (TORCHELASTIC_RESTART_COUNT) gets keys of its own."""
    host, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", 29500))
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)  # the agent hosts it; else process 0
    store = dist.TCPStore(host, port, size, is_master=not agent and rank == 0, timeout=timedelta(minutes=30))
    return dist.PrefixStore(f"l2o/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def teardown() -> None:
    """Leave the process group (after a barrier), if this process is in one."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def share(total: int, world: World) -> tuple[int, int]:
    """(first problem, number of problems) of process ``world.rank`` when ``total`` are split as evenly as can
    be, in order: the first total % size processes take one more."""
    if total < world.size:
        raise ValueError(f"{total} problems cannot be shared by {world.size} processes (each needs at least one); "
                         f"use at least {world.size} problems or fewer processes")
    base, extra = divmod(total, world.size)
    length = base + (world.rank < extra)
    return world.rank * base + min(world.rank, extra), length


class Communicator:
    """The collective calls of meta-training, timed (``seconds``: time spent in them, waiting included)."""

    def __init__(self, world: World):
        self.world, self.seconds, self.calls = world, 0.0, 0

    def all_reduce_grads(self, module: nn.Module) -> None:
        """Sum φ's gradient over the processes with one all-reduce; a missing gradient counts as zeros."""
        if self.world.size == 1:
            return
        params = list(module.parameters())
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        t = time.perf_counter()
        dist.all_reduce(flat)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def gather_problems(self, losses: Tensor, total: int) -> Tensor:
        """Every process's (steps, its share) losses, concatenated in problem order: (steps, total)."""
        if self.world.size == 1:
            return losses
        most = -(-total // self.world.size)
        padded = losses.new_zeros(losses.shape[0], most)
        padded[:, :losses.shape[1]] = losses
        parts = [torch.empty_like(padded) for _ in range(self.world.size)]
        t = time.perf_counter()
        dist.all_gather(parts, padded)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        out = [part[:, :share(total, World(r, self.world.size))[1]] for r, part in enumerate(parts)]
        return torch.cat(out, dim=1)

    def check_same(self, value: int, what: str) -> None:
        """Raise on every process unless all hold the same integer ``value``."""
        if self.world.size == 1:
            return
        x = torch.tensor([value, -value], dtype=torch.float64)
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
        if x[0].item() != -x[1].item():
            raise RuntimeError(f"the processes disagree on {what}: from {int(-x[1].item())} to {int(x[0].item())}")

    def barrier(self) -> None:
        if self.world.size > 1:
            dist.barrier()
