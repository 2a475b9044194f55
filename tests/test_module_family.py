"""ModuleFamily: your own nn.Module as a task family (torch.func.functional_call, vectorised across problems)."""

import pytest
import torch
from torch import nn

from l2o.meta.train import TrainConfig, meta_train
from l2o.meta.unroll import unroll
from l2o.rules import Adam
from l2o.rules.lstm import LSTMRule
from l2o.tasks import Task, TaskFamily
from l2o.tasks.base import narrow
from l2o.tasks.module import ModuleFamily


def data(n=64, dim=6, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long()


def mlp():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def with_batch_norm():
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class ItemScaled(nn.Module):
    """A forward pass that reads a number out of a tensor (.item()), which vmap cannot trace."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 3)

    def forward(self, x):
        h = self.lin(x)
        return h / max(1.0, h.abs().max().item())


def test_each_problem_is_the_module_with_its_own_init_and_minibatches():
    family = ModuleFamily(mlp, {"train": data(), "validation": data(seed=1), "test": data(seed=2)}, batch_size=5)
    assert isinstance(family, TaskFamily)
    task = family.sample("train", 3, 4)
    assert isinstance(task, Task) and set(task.init_params()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert task.init_params()["0.weight"].shape == (4, 8, 6)
    losses = task.loss(task.init_params(), 7)
    assert family.vectorised is True and losses.shape == (4,)
    x, y = task.batch(7)
    for b in range(4):  # the same as running the module itself with problem b's weights
        model = mlp()
        model.load_state_dict({k: v[b] for k, v in task.init_params().items()})
        torch.testing.assert_close(losses[b], nn.functional.cross_entropy(model(x[b]), y[b]))
    again = family.sample("train", 3, 4)
    assert torch.equal(again.init_params()["2.weight"], task.init_params()["2.weight"])
    assert not torch.equal(family.sample("validation", 3, 4).init_params()["2.weight"], task.init_params()["2.weight"])
    part = narrow(task, 1, 2)  # a share of the problems: exactly those problems
    torch.testing.assert_close(part.loss(part.init_params(), 7), losses[1:3])


def test_batch_norm_runs_vectorised_with_each_problems_running_statistics():
    family, loop = ModuleFamily(with_batch_norm, data(), batch_size=16), ModuleFamily(with_batch_norm, data(),
                                                                                        batch_size=16)
    loop.vectorised = False
    a, b = family.sample("train", 0, 3), loop.sample("train", 0, 3)
    torch.testing.assert_close(a.loss(a.init_params(), 0), b.loss(b.init_params(), 0))
    assert family.vectorised is True
    torch.testing.assert_close(a.buffers["1.running_mean"], b.buffers["1.running_mean"])
    assert not torch.equal(a.buffers["1.running_mean"][0], a.buffers["1.running_mean"][1])


def test_a_module_vmap_cannot_run_is_computed_problem_by_problem():
    family = ModuleFamily(ItemScaled, data(), batch_size=16)
    task = family.sample("train", 0, 3)
    losses = task.loss(task.init_params(), 0)
    assert family.vectorised is False and losses.shape == (3,) and torch.isfinite(losses).all()
    run = unroll(Adam(lr=0.05), task, 20).losses
    assert run[-1].mean() < run[0].mean()


def test_meta_training_on_ones_own_module():
    family = ModuleFamily(mlp, data(256), batch_size=16, name="my-mlp")
    cfg = TrainConfig(episodes=3, horizon=10, unroll=5, problems=2, val_every=3, val_problems=2, meta_lr=3e-3)
    result = meta_train(family, LSTMRule(), cfg, progress=False)
    assert result.state.episode == 3 and result.state.nan_skips == 0
    assert family.config() == {"name": "my-mlp", "model": "Sequential", "batch_size": 16, "parameters": 83,
                               "loss": "cross_entropy"}


def test_bad_data_is_a_clear_error():
    with pytest.raises(ValueError, match=r"data\['train'\] must be \(inputs, targets\)"):
        ModuleFamily(mlp, {"train": (torch.zeros(3, 6), torch.zeros(2))})
    with pytest.raises(ValueError, match="no 'test' data"):
        ModuleFamily(mlp, {"train": data()}).sample("test", 0, 1)
