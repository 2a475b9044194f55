"""Feature networks for neural art: the random network, VGG-19 weights from a file, Gram matrices."""

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from l2o.tasks import features as feat


def test_random_network_is_fixed_by_its_seed_and_has_vggs_layers():
    a, b, c = feat.random_network(seed=1), feat.random_network(seed=1), feat.random_network(seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.convs[0].weight, c.convs[0].weight)
    assert not any(p.requires_grad for p in a.parameters())
    x = torch.rand(2, 3, 64, 64)
    out = a(x, (*feat.STYLE_LAYERS, feat.CONTENT_LAYER))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "conv1_1": (2, 32, 64, 64), "conv2_1": (2, 64, 32, 32), "conv3_1": (2, 128, 16, 16),
        "conv4_1": (2, 256, 8, 8), "conv4_2": (2, 256, 8, 8), "conv5_1": (2, 256, 4, 4)}
    torch.testing.assert_close(a(x[:1], ("conv2_1",))["conv2_1"], out["conv2_1"][:1])  # each image on its own
    with pytest.raises(ValueError, match="five positive channel counts"):
        feat.random_network(widths=(8, 8))


def test_multiscale_network_is_fixed_by_its_seed_and_has_a_map_per_scale_and_kernel():
    a, b, c = feat.MultiScaleNet(seed=1), feat.MultiScaleNet(seed=1), feat.MultiScaleNet(seed=2)
    assert a.names == ["s1k3", "s1k5", "s1k7", "s2k3", "s2k5", "s2k7", "s4k3", "s4k5", "s4k7"]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.s1k3, c.s1k3) and not any(p.requires_grad for p in a.parameters())
    x = torch.rand(2, 3, 64, 64)
    out = a(x, tuple(a.names))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        f"s{s}k{k}": (2, 64, 64 // s, 64 // s) for s in (1, 2, 4) for k in (3, 5, 7)}
    assert min(float(v.min()) for v in out.values()) >= 0  # after ReLU
    torch.testing.assert_close(a(x[:1], ("s2k5",))["s2k5"], out["s2k5"][:1])  # each image on its own
    manual = torch.relu(torch.nn.functional.conv2d(
        torch.nn.functional.pad(torch.nn.functional.avg_pool2d(x - 0.5, 4), (1,) * 4, mode="reflect"), a.s4k3))
    torch.testing.assert_close(out["s4k3"], manual)
    with pytest.raises(KeyError, match="no layer 'conv1_1'; this network's layers are s1k3"):
        a(x, ("conv1_1",))
    with pytest.raises(ValueError, match="odd kernel sizes"):
        feat.MultiScaleNet(kernels=(3, 4))


def torchvision_state(seed: int = 0) -> tuple[dict, feat.FeatureNet]:
    """A state_dict in torchvision's vgg19 layout (random weights), and the network it holds."""
    torch.manual_seed(seed)
    ref = feat.FeatureNet(feat.VGG19)
    state = {}
    for conv, i in zip(ref.convs, feat._torchvision_indices()):
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = conv.weight.clone(), conv.bias.clone()
    return state, ref


def test_vgg19_weights_from_a_file_of_torchvisions_layout(tmp_path):
    state, ref = torchvision_state()
    assert sorted(int(k.split(".")[1]) for k in state if k.endswith("weight"))[:5] == [0, 2, 5, 7, 10]
    save_file(state, tmp_path / "vgg19.safetensors")
    torch.save(state, tmp_path / "vgg19.pth")
    sha = hashlib.sha256((tmp_path / "vgg19.pth").read_bytes()).hexdigest()
    for name in ("vgg19.safetensors", "vgg19.pth"):
        net = feat.vgg19(tmp_path / name, sha256=sha if name.endswith("pth") else None)
        assert all(torch.equal(a.weight, b.weight) for a, b in zip(net.convs, ref.convs)) and net.normalize
    with pytest.raises(ValueError, match="is not the expected"):
        feat.vgg19(tmp_path / "vgg19.safetensors", sha256=sha)
    with pytest.raises(FileNotFoundError, match="network='random'"):
        feat.vgg19(tmp_path / "none.pth")
    del state["features.34.weight"]
    save_file(state, tmp_path / "partial.safetensors")
    with pytest.raises(ValueError, match="does not hold torchvision's vgg19 weights"):
        feat.vgg19(tmp_path / "partial.safetensors")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="not a readable state_dict"):
        feat.vgg19(tmp_path / "junk.pth")


def test_gram_matrices():
    f = torch.randn(2, 3, 4, 5)
    g = feat.gram(f)
    manual = torch.stack([f[b].reshape(3, -1) @ f[b].reshape(3, -1).T for b in range(2)]) / 60
    torch.testing.assert_close(g, manual)
    assert torch.allclose(g, g.transpose(1, 2))
