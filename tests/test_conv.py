"""The conv-net task family (paper §3.3) on generated images: the authors' network, problems side by side
exactly as each alone, label subsets, splits, and the CIFAR-10 data path."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from l2o.tasks import make_family
from l2o.tasks.conv import ConvConfig, ConvFamily, Images


def images(n=300, shape=(3, 32, 32), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=gen)
    y = (x.mean((1, 2, 3)) * 1e4).long() % 10
    return {"train": Images(x[:200], y[:200]), "validation": Images(x[200:250], y[200:250]),
            "test": Images(x[250:], y[250:])}


def reference(params, x, cfg):
    """One network with PyTorch's own layers: conv2d, batch_norm (batch statistics, no scale), max_pool2d."""
    h = x
    for i in range(len(cfg.channels)):
        h = F.conv2d(h, params[f"conv{i}.weight"], params[f"conv{i}.bias"], padding=cfg.kernel // 2)
        h = F.batch_norm(h, None, None, params.get(f"conv{i}.scale"), params[f"conv{i}.offset"], training=True,
                         eps=cfg.bn_eps)
        h = F.max_pool2d(F.relu(h), 2)
    h = h.flatten(1)
    for j in range(len(cfg.hidden)):
        h = h @ params[f"fc{j}.weight"] + params[f"fc{j}.bias"]
        h = F.relu(F.batch_norm(h, None, None, params.get(f"fc{j}.scale"), params[f"fc{j}.offset"], training=True,
                                eps=cfg.bn_eps))
    return h @ params["out.weight"] + params["out.bias"]


def test_the_authors_network_has_their_parameter_count():
    fam = ConvFamily(data=images())
    assert sum(torch.Size(s).numel() for s in fam.shapes.values()) == 22_682  # as the authors' code
    assert [k for k, s in fam.shapes.items() if len(s) == 4] == ["conv0.weight", "conv1.weight", "conv2.weight"]
    theta = fam.sample("train", 0, 2).theta0
    assert theta["conv0.weight"].shape == (2, 16, 3, 5, 5) and theta["fc0.weight"].shape == (2, 256, 32)
    assert 0.009 < float(theta["conv1.weight"].std()) < 0.011 and not theta["conv0.offset"].any()


@pytest.mark.parametrize("init,bn_scale", [("paper", False), ("torch", True)])
def test_problems_side_by_side_equal_each_alone_and_pytorch_layers(init, bn_scale):
    cfg = ConvConfig(init=init, batch_size=16, bn_scale=bn_scale)
    task = ConvFamily(cfg, data=images()).sample("train", 3, 3)
    params = task.init_params()
    with torch.no_grad():  # give the offsets and biases something to do
        for k in params:
            if k.endswith(("offset", "bias", "scale")):
                params[k].normal_(0, 0.1)
    x, y = task.batch(5)
    logits = task.logits(params, x)
    for b in range(3):
        alone = reference({k: v[b] for k, v in params.items()}, x[b], cfg)
        torch.testing.assert_close(logits[b], alone, rtol=1e-4, atol=1e-5)
    losses = task.loss(params, 5)
    torch.testing.assert_close(losses[1], F.cross_entropy(logits[1], y[1]))
    grads = torch.autograd.grad(task.loss({k: v.requires_grad_() for k, v in params.items()}, 5)[0],
                                list(params.values()), allow_unused=True)
    assert all(g is None or not g[1:].any() for g in grads)  # problem 0's loss depends on its own θ only


def test_label_subsets_mnist_shaped_images_and_settings():
    cfg = ConvConfig(dataset="mnist", labels=(7, 2, 9), batch_size=8)
    data = images(shape=(1, 28, 28))
    keep = {s: torch.isin(d.y, torch.tensor([7, 2, 9])) for s, d in data.items()}
    remapped = {s: Images(d.x[keep[s]], torch.tensor([{7: 0, 2: 1, 9: 2}[int(v)] for v in d.y[keep[s]]]))
                for s, d in data.items()}
    fam = ConvFamily(cfg, data=remapped)
    assert fam.shapes["out.weight"] == (32, 3) and fam.shapes["fc0.weight"] == (16 * 3 * 3, 32)  # 28 → 14 → 7 → 3
    task = fam.sample("test", 0, 2)
    assert task.loss(task.init_params(), 0).shape == (2,)
    saved = {k: list(v) if isinstance(v, tuple) else v for k, v in fam.config().items() if k != "name"}
    assert ConvConfig(**saved) == cfg  # the settings round-trip through JSON (lists back to tuples)
    for bad, match in [(dict(labels=(3,)), "at least two distinct"), (dict(labels=(1, 1)), "at least two distinct"),
                       (dict(kernel=4), "odd"), (dict(dataset="svhn"), "dataset must be one of"),
                       (dict(batch_size=1), "batch_size")]:
        with pytest.raises(ValueError, match=match):
            ConvConfig(**bad)
    with pytest.raises(ValueError, match="poolings of 2 leave nothing"):
        ConvFamily(ConvConfig(channels=(4,) * 6), data=images(shape=(1, 28, 28)))


def test_cifar10_from_the_data_step_with_a_label_subset(tmp_path, monkeypatch):
    from test_cifar import batches, write_release

    from l2o.data import cifar

    monkeypatch.setattr(cifar, "RECORDS", 60)
    data = batches()
    write_release(tmp_path / "cifar-10-batches-bin", data, "binary")
    cifar.install(tmp_path / "cifar-10-batches-bin", tmp_path / "root", log=lambda *a: None)
    fam = make_family("conv", data_dir=tmp_path / "root", labels=[3, 5], batch_size=4)
    train_y = torch.cat([torch.from_numpy(data[f"data_batch_{i}"][1]) for i in range(1, 6)]).long()
    kept = train_y[torch.isin(train_y, torch.tensor([3, 5]))]
    cut = len(kept) - len(kept) // 6
    assert torch.equal(fam.data["train"].y, (kept[:cut] == 5).long())  # 3 → 0, 5 → 1
    assert len(fam.data["validation"].y) == len(kept) - cut and fam.image == (3, 32, 32)
    first = torch.from_numpy(data["data_batch_1"][0]).float() / 255
    torch.testing.assert_close(fam.data["train"].x[0], first[torch.isin(train_y[:60], torch.tensor([3, 5]))][0])
    assert set(fam.data["test"].y.tolist()) <= {0, 1}


def test_random_label_subsets_are_drawn_per_task_and_never_the_excluded_ones():
    from l2o.tasks.label_subsets import LabelSubsetsFamily

    data = images(shape=(1, 28, 28))
    cfg = ConvConfig(dataset="mnist", batch_size=8)
    fam = LabelSubsetsFamily(cfg, pool=range(10), sizes=(2, 5, 10), exclude=[(1, 0), (0, 1, 2, 3, 4)], data=data)
    drawn = [fam.classes("train", s) for s in range(300)]
    assert {len(c) for c in drawn} == {2, 5, 10} and (0, 1) not in drawn and (0, 1, 2, 3, 4) not in drawn
    assert len(set(drawn)) > 50 and all(list(c) == sorted(c) for c in drawn)
    assert fam.classes("train", 7) == drawn[7] and fam.classes("validation", 7) != fam.classes("train", 7)
    # a task is the conv net on its classes, as ConvFamily makes it with labels set to them
    labels = fam.classes("train", 3)
    task = fam.sample("train", 3, 2)
    keep = {s: torch.isin(d.y, torch.tensor(labels)) for s, d in data.items()}
    alone = ConvFamily(replace(cfg, labels=labels), data={s: Images(d.x[keep[s]], torch.tensor(
        [labels.index(int(v)) for v in d.y[keep[s]]])) for s, d in data.items()}).sample("train", 3, 2)
    assert task.init_params()["out.weight"].shape[-1] == len(labels)
    torch.testing.assert_close(task.loss(task.init_params(), 4), alone.loss(alone.init_params(), 4))
    val = fam.validation_sets(1)
    assert [k.split(" classes")[0] for k in val] == ["2", "5", "10"]
    assert all(t.init_params()["out.weight"].shape[-1] == int(k.split()[0]) for k, t in val.items())
    assert fam.config()["exclude"] == [[0, 1], [0, 1, 2, 3, 4]]
    for kw, match in [(dict(pool=(3,)), "pool must be"), (dict(sizes=(1,)), "sizes must be between"),
                      (dict(pool=(0, 1), sizes=(2,), exclude=[(0, 1)]), "every 2-class subset of \\[0, 1\\]")]:
        with pytest.raises(ValueError, match=match):
            LabelSubsetsFamily(cfg, data=data, **kw)
    with pytest.raises(ValueError, match="give them as pool"):
        LabelSubsetsFamily(replace(cfg, labels=(1, 2)), data=data)
