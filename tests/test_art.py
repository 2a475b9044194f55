"""The neural-art task family on generated images with the random feature network."""

import pytest
import torch

from l2o.meta import unroll
from l2o.rules import Adam
from l2o.tasks.art import ArtConfig, ArtFamily, ArtTask, out_of_range, total_variation
from l2o.tasks.features import MultiScaleNet, random_network


def family(size=32, **kw):
    gen = torch.Generator().manual_seed(0)
    contents = {s: torch.rand(4, 3, size, size, generator=gen) for s in ("train", "validation", "test")}
    return ArtFamily(ArtConfig(size=size, **kw), contents=contents, style=torch.rand(3, size, size, generator=gen))


def test_each_term_vanishes_where_it_should():
    fam = family()
    content = fam.contents["test"][:2]
    task = ArtTask(fam.cfg, fam.net, content, fam.style, content.clone())
    terms = task.losses({"image": content.clone()})
    assert terms["content"].abs().max() == 0 and terms["style"].min() > 0
    same_style = task.losses({"image": fam.style.expand(2, -1, -1, -1).clone()})
    assert same_style["style"].abs().max() < 1e-12 and same_style["content"].min() > 0
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert total_variation(flat).item() == 0
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    assert total_variation(ramp).item() == pytest.approx(1.0)  # every horizontal step is 1, vertical ones 0
    assert terms["range"].abs().max() == 0  # the content image is in [0, 1]
    outside = torch.tensor([[-0.5, 0.0, 1.0, 1.2]])
    assert out_of_range(outside).item() == pytest.approx((0.25 + 0.04) / 4)


def test_each_layers_term_is_relative_to_its_target_so_scaling_the_features_changes_nothing():
    fam = family()
    content = fam.contents["test"][:2]
    task = ArtTask(fam.cfg, fam.net, content, fam.style, content.clone())
    x = {"image": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))}
    before = task.losses(x)
    for name in fam.net.names:  # ReLU(c·w * x) = c · ReLU(w * x): features ×2, Gram matrices ×4
        getattr(fam.net, name).mul_(2)
    scaled = ArtTask(fam.cfg, fam.net, content, fam.style, content.clone()).losses(x)
    for term in ("content", "style"):
        torch.testing.assert_close(scaled[term], before[term])
    assert len(task.content_layers) == len(task.style_layers) == 9  # every (scale, kernel) map, for both


def test_problems_side_by_side_equal_each_alone_and_adam_styles():
    fam = family()
    task = fam.sample("train", 0, 3)
    assert task.theta0["image"].shape == (3, 3, 32, 32) and abs(float(task.theta0["image"].mean()) - 0.5) < 0.01
    together = task.loss(task.init_params())
    for b in range(3):
        alone = ArtTask(fam.cfg, fam.net, task.content[b:b + 1], fam.style, task.theta0["image"][b:b + 1])
        torch.testing.assert_close(alone.loss(alone.init_params())[0], together[b], rtol=1e-5, atol=1e-7)
    losses = unroll(Adam(lr=0.02), task, 30).losses
    assert (losses[-1] < 0.5 * losses[0]).all(), losses[[0, -1]]


def test_settings_are_checked():
    for bad, match in [(dict(size=8), "size must be >= 16"),
                       (dict(network="vgg16"), "network must be one of multiscale, random, vgg19, got 'vgg16'"),
                       (dict(init_std=0), "init_std > 0"), (dict(range_weight=-1), "weights must be >= 0"),
                       (dict(padding="circle"), "padding must be 'auto'"),
                       (dict(network="random", size=16), "size >= 32, got 16"),
                       (dict(content_layer="conv4_2"), r"a layer of the multiscale network \(s1k3 … s4k7\)"),
                       (dict(network="random", content_layer="s1k3"), "conv1_1 … conv5_4"),
                       (dict(network="random", size=16, padding="zeros"), None), (dict(size=16), None)]:
        if match is None:
            ArtConfig(**bad)  # zero padding: four poolings of 16 pixels are fine; the multi-scale net needs 16
            continue
        with pytest.raises(ValueError, match=match):
            ArtConfig(**bad)
    with pytest.raises(ValueError, match=r"content images must be \(n, 3, 32, 32\)"):
        ArtFamily(ArtConfig(size=32), contents={"train": torch.rand(2, 3, 16, 16)}, style=torch.rand(3, 32, 32),
                  net=random_network())


def test_the_random_networks_are_reflect_padded_so_borders_are_not_special():
    from l2o.tasks.art import network, padding

    assert padding(ArtConfig()) == "reflect" and padding(ArtConfig(network="vgg19")) == "zeros"
    flat = torch.full((1, 3, 32, 32), 0.4)  # a constant image: every pixel sees the same neighbourhood ...
    for layer in MultiScaleNet().names:
        multi = network(ArtConfig())(flat, (layer,))[layer]
        assert (multi - multi[..., :1, :1]).abs().max() < 1e-6, layer  # ... and the same features, to the border
    reflect = network(ArtConfig(network="random"))(flat, ("conv2_1",))["conv2_1"]
    assert (reflect - reflect[..., 5:6, 5:6]).abs().max() < 1e-6
    zeros = network(ArtConfig(network="random", padding="zeros"))(flat, ("conv2_1",))["conv2_1"]
    assert (zeros - zeros[..., 5:6, 5:6]).abs().max() > 1e-3  # zero padding: the border differs
    assert zeros.shape[-1] == 16  # conv2_1: border effects reach 2 of its pixels in
    torch.testing.assert_close(zeros[..., 3:-3, 3:-3], reflect[..., 3:-3, 3:-3])  # the same filters inside
    with pytest.raises(ValueError, match="trained with zero padding"):
        network(ArtConfig(network="vgg19", padding="reflect"), data_dir="/nonexistent")
