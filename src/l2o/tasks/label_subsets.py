"""The conv net on random subsets of the classes: each task a k-class problem, k and the classes drawn per task.

    family = LabelSubsetsFamily(ConvConfig(dataset="fashion-mnist"), pool=range(10), sizes=(2, 5, 10),
                                exclude=[(0, 1), (0, 1, 2, 3, 4)])

``sample(split, seed, n)`` draws, from ``(split, seed)`` alone, a size k from ``sizes`` (uniformly) and k classes
of ``pool`` (uniformly, never a set in ``exclude``, order ignored), and returns ``n`` problems of the conv net on
those classes (relabelled 0…k−1 in increasing order, the output sized k), as ``ConvFamily`` would with
``labels`` set to them. The problems of one task share their classes (and so their shapes); tasks differ.

What it is for: a rule meta-trained only on the 10-class task meets losses far lower than any it trained at
when it runs on a 2- or 5-class subset (the subsets are easier); meta-training on random subsets shows it
those losses without training on the evaluation subsets themselves (``exclude``) (docs/cifar.md).
Validation: ``validation_sets(n)`` gives one fixed subset per size (drawn with seed 0 of the validation
stream), so meta-training scores the mean over the sizes.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from math import comb

import torch

from l2o.tasks.base import split_generator
from l2o.tasks import conv
from l2o.tasks.conv import ConvConfig, ConvFamily, Images


class LabelSubsetsFamily:
    name = "conv_label_subsets"

    def __init__(self, config: ConvConfig, pool=range(10), sizes=(2, 5, 10), exclude=(), *,
                 data: dict[str, Images] | None = None, data_dir=None):
        self.pool = tuple(sorted(int(c) for c in pool))
        self.sizes = tuple(int(k) for k in sizes)
        self.exclude = {tuple(sorted(int(c) for c in s)) for s in exclude}
        if len(set(self.pool)) != len(self.pool) or len(self.pool) < 2 or min(self.pool) < 0 or max(self.pool) > 9:
            raise ValueError(f"pool must be at least two distinct classes in 0–9, got {list(self.pool)}")
        if not self.sizes or min(self.sizes) < 2 or max(self.sizes) > len(self.pool):
            raise ValueError(f"sizes must be between 2 and the pool's {len(self.pool)} classes, got {list(self.sizes)}")
        for k in set(self.sizes):
            if sum(1 for s in self.exclude if len(s) == k and set(s) <= set(self.pool)) >= comb(len(self.pool), k):
                raise ValueError(f"every {k}-class subset of {list(self.pool)} is excluded")
        if config.labels:
            raise ValueError(f"the classes are drawn per task; give them as pool, not as labels {list(config.labels)}")
        self.cfg = config
        self.data = data if data is not None else conv.image_splits(config.dataset, data_dir)

    def config(self) -> dict:
        return {"name": self.name, "task": asdict(self.cfg), "pool": list(self.pool), "sizes": list(self.sizes),
                "exclude": sorted(list(s) for s in self.exclude)}

    def classes(self, split: str, seed: int) -> tuple[int, ...]:
        """The classes of ``sample(split, seed, ·)``, increasing."""
        gen = split_generator(split, seed)
        k = self.sizes[int(torch.randint(len(self.sizes), (1,), generator=gen))]
        while True:
            pick = tuple(sorted(self.pool[i] for i in torch.randperm(len(self.pool), generator=gen)[:k].tolist()))
            if pick not in self.exclude:
                return pick

    def family(self, labels: tuple[int, ...], splits=("train", "validation", "test")) -> ConvFamily:
        """The conv net on ``labels`` over ``splits`` (the data read once, filtered here, not read again)."""
        data = {split: conv.keep_labels(self.data[split], labels) for split in splits}
        return ConvFamily(replace(self.cfg, labels=labels), data=data)

    def sample(self, split: str, seed: int, num_problems: int):
        return self.family(self.classes(split, seed), (split,)).sample(split, seed, num_problems)

    def validation_sets(self, num_problems: int) -> dict:
        """One validation task per size: a fixed subset of that size (the first the validation stream draws)."""
        out = {}
        for k in dict.fromkeys(self.sizes):
            seed = next(s for s in range(10_000) if len(self.classes("validation", s)) == k)
            labels = self.classes("validation", seed)
            out[f"{k} classes {list(labels)}"] = self.family(labels, ("validation",)).sample("validation", 0,
                                                                                          num_problems)
        return out

