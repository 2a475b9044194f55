import math

import pytest
import torch

from l2o.tasks.mlp import MLPConfig, MLPFamily, synthetic_dataset


def test_paper_mlp_shapes_and_initial_loss():
    task = MLPFamily().sample("train", 0, 3)
    params = task.init_params()
    assert sum(v[0].numel() for v in params.values()) == 15_910  # 784·20 + 20 + 20·10 + 10
    loss = task.loss(params, 0)
    assert loss.shape == (3,)
    assert torch.allclose(loss, torch.full((3,), math.log(10)), atol=0.01)  # tiny weights: chance level


def test_problems_are_independent_and_match_a_plain_network():
    fam = MLPFamily(hidden=(7, 5), activation="relu", init="torch", batch_size=16)
    task = fam.sample("test", 1, 2)
    params = task.init_params()
    x, y = task.batch(4)
    for b in range(2):
        h = torch.relu(x[b] @ params["w0"][b] + params["b0"][b])
        h = torch.relu(h @ params["w1"][b] + params["b1"][b])
        logits = h @ params["w2"][b] + params["b2"][b]
        expected = torch.nn.functional.cross_entropy(logits, y[b])
        assert torch.allclose(task.loss(params, 4)[b], expected, atol=1e-6)


def test_batches_and_initialisation_come_from_the_seed():
    fam = MLPFamily()
    a, b, c = fam.sample("train", 5, 1), fam.sample("train", 5, 1), fam.sample("train", 6, 1)
    assert torch.equal(a.batch(3)[0], b.batch(3)[0]) and not torch.equal(a.batch(3)[0], c.batch(3)[0])
    assert torch.equal(a.init_params()["w0"], b.init_params()["w0"])
    assert not torch.equal(a.batch(3)[0], a.batch(4)[0])


def test_synthetic_labels_use_every_class():
    assert synthetic_dataset(n=2000).y.unique().numel() == 10


@pytest.mark.parametrize("kwargs, message", [({"hidden": ()}, "hidden"), ({"activation": "gelu"}, "activation"),
                                             ({"init": "xavier"}, "init")])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLPConfig(**kwargs)
