"""The rule protocol's names and problem axis: every tensor's first axis is the problem axis; a rule that
needs all coordinates of one optimizee gets them per problem, contiguous, and its results are per problem."""

from dataclasses import dataclass

import pytest
import torch
from problems import assert_problems_stay_apart

from l2o.rules import from_per_problem, num_problems, per_problem
from l2o.tasks.mlp import MLPConfig, MLPFamily, synthetic_dataset


@dataclass(frozen=True)
class NormalizedGD:
    """θ ← θ − lr · ∇ / ‖∇‖, with the norm over all coordinates of each optimizee: a rule that needs its
    problem's coordinates together (as GAC's averages and NTM-BFGS's memory do)."""

    lr: float = 0.1
    name: str = "normalized-gd"

    def init(self, params):
        return ()

    def update(self, grads, state, *, inplace=False):
        flat = per_problem(grads)  # (B, N)
        step = -self.lr * flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return from_per_problem(step, grads), state

    def config(self):
        return {"name": self.name, "lr": self.lr}


def _family():
    return MLPFamily(synthetic_dataset(n=512), MLPConfig(hidden=(8,)))


def test_per_problem_rows_hold_each_problems_coordinates_in_name_order():
    params = _family().sample("test", 0, 3).init_params()
    params = {k: torch.randn_like(v) for k, v in params.items()}
    flat = per_problem(params)
    assert flat.shape == (3, sum(v[0].numel() for v in params.values()))
    for b in range(3):
        assert torch.equal(flat[b], torch.cat([v[b].reshape(-1) for v in params.values()]))
    back = from_per_problem(flat, params)
    assert all(torch.equal(back[k], params[k]) for k in params)
    assert num_problems(params) == 3
    with pytest.raises(ValueError, match="same leading problem axis"):
        num_problems({"a": torch.zeros(3, 2), "b": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="coordinates per problem"):
        from_per_problem(flat[:, :-1], params)


def test_a_per_problem_rule_treats_each_problem_as_its_own_optimizee():
    """Three problems side by side end where each ends alone: the norm never mixes problems."""
    assert_problems_stay_apart(NormalizedGD(), _family(), steps=5, problems=3)
