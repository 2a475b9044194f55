"""The optimizee protocol: a `TaskFamily` samples `Task`s; a task is a batch of problems f(θ).

A task holds one or more independent problems that share their shapes, so that a batch of them is
evaluated by one tensor operation. Parameters are *functional*: a ``dict[str, Tensor]`` handed to
``loss``, so a meta-gradient can flow through the parameters produced by an update rule.

Seeds: every problem is a pure function of ``(split, seed)``. The three splits ("train", "validation",
"test") are disjoint streams: the same integer seed gives unrelated problems in different splits, and
the same ``(split, seed)`` always gives the same problems.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

Params = dict[str, Tensor]

SPLITS = ("train", "validation", "test")


def split_generator(split: str, seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for problem ``seed`` of ``split``; streams of different splits never meet."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    state = np.random.SeedSequence([SPLITS.index(split), int(seed)]).generate_state(2, np.uint32)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state[0]) << 32 | int(state[1]))
    return gen


@runtime_checkable
class Task(Protocol):
    """A batch of ``num_problems`` independent optimizees."""

    num_problems: int

    def to(self, device: str | torch.device) -> "Task":
        """The same problems on ``device``."""

    def init_params(self) -> Params:
        """Initial parameters θ_0 (the same tensors each call)."""

    def loss(self, params: Params, step: int) -> Tensor:
        """Per-problem losses f(θ) at optimisation step ``step``, shape ``(num_problems,)``.

        ``step`` selects the minibatch for stochastic tasks; deterministic tasks ignore it.
        """


def minibatch_indices(seed: int, step: int, examples: int, batch_size: int, rows: tuple[int, int],
                      num_problems: int) -> Tensor:
    """Which examples each problem's minibatch at ``step`` holds, (num_problems, batch_size): drawn for the whole
    task of ``rows[1]`` problems, so problems ``rows[0]`` … of a narrowed task get what they get in the whole."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    first, total = rows
    return torch.randint(0, examples, (total, batch_size), generator=gen)[first:first + num_problems]


def narrow(task: Task, start: int, length: int) -> Task:
    """Problems ``start`` … ``start + length − 1`` of ``task`` as a task of their own, each problem exactly as it
    is in ``task`` (its θ_0, data and minibatches): how processes share the problems of one batch. A task
    supports it with a method ``narrow(start, length)``."""
    if not (0 <= start and 1 <= length and start + length <= task.num_problems):
        raise ValueError(f"cannot take problems {start}…{start + length - 1} of a task of {task.num_problems}")
    if start == 0 and length == task.num_problems:
        return task
    if not hasattr(task, "narrow"):
        raise TypeError(f"{type(task).__name__} cannot be split between processes: it has no narrow(start, length)")
    return task.narrow(start, length)


@runtime_checkable
class TaskFamily(Protocol):
    """A distribution over tasks."""

    name: str

    def sample(self, split: str, seed: int, num_problems: int) -> Task:
        """``num_problems`` problems drawn from the ``split`` stream with ``seed``."""

    def config(self) -> dict:
        """The family's settings, JSON-serialisable; ``make_family(**config)`` rebuilds it."""
