"""`l2o data vgg19`: torchvision's VGG-19 weights checked (name hash, layout) and installed; used by the art task."""

import hashlib
import urllib.request

import pytest
import torch

from l2o.cli import main
from l2o.data import vgg
from l2o.data.idx import DataError
from l2o.tasks.art import ArtConfig, network
from test_features import torchvision_state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A file in torchvision's vgg19 layout (random weights) and its SHA-256."""
    state, ref = torchvision_state()
    path = tmp_path_factory.mktemp("w") / vgg.FILE
    torch.save(state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), ref


def test_install_check_and_use(weights, tmp_path, monkeypatch, capsys):
    path, sha, ref = weights
    monkeypatch.setattr(vgg, "SHA256_PREFIX", sha[:8])  # the generated file stands in for torchvision's
    root = tmp_path / "data"
    assert vgg.status(root) == {vgg.FILE: "missing"}
    with pytest.raises(DataError, match="l2o data vgg19"):
        network(ArtConfig(network="vgg19"), root)
    assert main(["data", "vgg19", "--source", str(path), "--data-dir", str(root)]) == 0
    assert vgg.status(root) == {vgg.FILE: "ok"}
    assert main(["data", "vgg19", "--check", "--data-dir", str(root)]) == 0
    net = network(ArtConfig(network="vgg19"), root)
    torch.testing.assert_close(net.convs[3].weight, ref.convs[3].weight)
    (root / "vgg19" / vgg.FILE).write_bytes(path.read_bytes()[:-10])  # truncated after installing
    assert vgg.status(root) == {vgg.FILE: "corrupt"}
    assert main(["data", "vgg19", "--check", "--data-dir", str(root)]) == 2
    assert "not ready: vgg19/vgg19-dcbb9e9d.pth" in capsys.readouterr().err


def test_a_foreign_or_corrupt_file_and_no_internet_are_clear_errors(weights, tmp_path, monkeypatch):
    path, sha, _ = weights
    with pytest.raises(DataError, match="does not start with dcbb9e9d"):
        vgg.install(path, tmp_path)  # not torchvision's file: its hash differs
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    monkeypatch.setattr(vgg, "SHA256_PREFIX", hashlib.sha256(junk.read_bytes()).hexdigest()[:8])
    with pytest.raises(DataError, match="not a readable state_dict"):
        vgg.install(junk, tmp_path)
    assert not (tmp_path / "vgg19").exists()  # nothing installed

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="could not download .*l2o data vgg19 --source vgg19-dcbb9e9d.pth"):
        vgg.fetch(tmp_path)
