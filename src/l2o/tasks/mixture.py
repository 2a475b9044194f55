"""Several task families as one, to meta-train one optimizer on all of them (a general-purpose optimizer).

    family = MixtureFamily({"mlp": ImageMLPFamily(...), "relu": ImageMLPFamily(..., activation="relu"),
                            "conv": ConvFamily(...)}, weights=[2, 1, 1])

Each ``sample(split, seed, n)`` picks one member, with probability proportional to its weight, from
``(split, seed)`` alone, and draws all ``n`` problems from it (the problems of a batch share their shapes), so
an episode of meta-training is a batch of one member's problems and the members alternate from episode to
episode. Validation covers every member: ``validation_sets(n)`` gives one task per member, and meta-training
scores the mean of their scores (use a scale-free criterion such as ``val_metric="log_final"``, since the
members' losses have different scales).
"""

from __future__ import annotations

import torch

from l2o.tasks.base import Task, TaskFamily, split_generator


class MixtureFamily:
    name = "mixture"

    def __init__(self, members: dict[str, TaskFamily], weights: list[float] | None = None):
        if not members:
            raise ValueError("a mixture needs at least one family")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"need one weight >= 0 per member ({len(members)}), not all zero; got {weights}")
        self.members, self.weights = dict(members), torch.tensor(weights, dtype=torch.float64)

    def config(self) -> dict:
        return {"name": self.name, "members": {k: f.config() for k, f in self.members.items()},
                "weights": self.weights.tolist()}

    def member(self, split: str, seed: int) -> str:
        """The member that ``sample(split, seed, ·)`` draws from."""
        gen = split_generator(split, seed)
        return list(self.members)[int(torch.multinomial(self.weights, 1, generator=gen))]

    def sample(self, split: str, seed: int, num_problems: int) -> Task:
        return self.members[self.member(split, seed)].sample(split, seed, num_problems)

    def validation_sets(self, num_problems: int) -> dict[str, Task]:
        """One validation task per member (``num_problems`` problems each, seed 0)."""
        return {k: f.sample("validation", 0, num_problems) for k, f in self.members.items()}
