"""CIFAR-10's data step on small generated files in both official formats (the real files are 160 MB and
not obtainable here): the checks, the restricted unpickler, atomic installation and clear errors."""

import hashlib
import io
import json
import os
import pickle
import tarfile
import urllib.request

import numpy as np
import pytest

from l2o.cli import main
from l2o.data import cifar
from l2o.data.idx import DataError


def batches(seed=0):
    rng = np.random.default_rng(seed)
    return {b: (rng.integers(0, 256, (cifar.RECORDS, 3, 32, 32), dtype=np.uint8),
                rng.integers(0, 10, cifar.RECORDS).astype(np.uint8)) for b in cifar.BATCHES}


def python_batch(images, labels) -> bytes:
    """As the official python release: a pickled dict with bytes keys, a uint8 array and a list of labels."""
    doc = {b"batch_label": b"generated", b"labels": [int(x) for x in labels], b"data": images.reshape(len(images), -1),
           b"filenames": [b"x.png"] * len(labels)}
    return pickle.dumps(doc, protocol=2)


def write_release(folder, data, release):
    folder.mkdir(parents=True)
    for b, (x, y) in data.items():
        if release == "binary":
            (folder / f"{b}.bin").write_bytes(cifar.to_binary(x, y))
        else:
            (folder / b).write_bytes(python_batch(x, y))
    (folder / ("batches.meta.txt" if release == "binary" else "batches.meta")).write_bytes(b"meta")


def archive(folder, path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=folder.name)
    path.write_bytes(buf.getvalue())
    return hashlib.md5(buf.getvalue()).hexdigest()


@pytest.fixture
def data(monkeypatch):
    monkeypatch.setattr(cifar, "RECORDS", 100)  # small batches (the official ones hold 10,000 images each)
    return batches()


def _same(images, data):
    np.testing.assert_array_equal(images.train_images[:cifar.RECORDS], data["data_batch_1"][0])
    np.testing.assert_array_equal(images.train_labels[-cifar.RECORDS:], data["data_batch_5"][1])
    np.testing.assert_array_equal(images.test_images, data["test_batch"][0])
    assert images.train_images.shape == (500, 3, 32, 32) and images.test_labels.shape == (100,)


@pytest.mark.parametrize("release", ["binary", "python"])
def test_archives_are_checked_against_their_published_md5_and_installed(release, data, tmp_path, monkeypatch):
    folder = tmp_path / "src" / cifar.ARCHIVE_FOLDER[release]
    write_release(folder, data, release)
    tgz = tmp_path / f"cifar-10-{release}.tar.gz"
    md5 = archive(folder, tgz)
    with pytest.raises(DataError, match="is neither CIFAR-10 archive's .*corrupt, truncated or foreign"):
        cifar.install(tgz, tmp_path / "root", log=lambda *a: None)  # the real published MD5s: refused
    monkeypatch.setitem(cifar.ARCHIVE_MD5, release, md5)  # as if this were the published archive
    root = tmp_path / "root"
    assert main(["data", "cifar10", "--source", str(tgz), "--data-dir", str(root)]) == 0
    _same(cifar.load(root), data)
    manifest = json.loads((root / "cifar10" / "manifest.json").read_text())
    assert manifest["release"] == release and "archive MD5" in manifest["checked"]
    assert sorted(os.listdir(root)) == ["cifar10"]  # no staging left behind
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(tgz.read_bytes()[:-100])
    with pytest.raises(DataError, match="cut.tar.gz: MD5"):
        cifar.install(truncated, root, log=lambda *a: None)
    _same(cifar.load(root), data)  # a failed install leaves the installed data as it was


def test_extracted_folders_of_both_releases(data, tmp_path, monkeypatch):
    binary, python = tmp_path / "cifar-10-batches-bin", tmp_path / "p" / "cifar-10-batches-py"
    write_release(binary, data, "binary")
    write_release(python, data, "python")
    _same(cifar.load(cifar.install(binary, tmp_path / "a", log=lambda *a: None).parent), data)
    assert "no per-file checksums" in json.loads((tmp_path / "a" / "cifar10" / "manifest.json").read_text())["checked"]
    with pytest.raises(DataError, match=r"data_batch_1: MD5 \w+ is not the published c99cafc1"):
        cifar.install(python, tmp_path / "b", log=lambda *a: None)  # generated files: not the published ones
    md5s = {b: hashlib.md5((python / b).read_bytes()).hexdigest() for b in cifar.BATCHES}
    monkeypatch.setattr(cifar, "PYTHON_MD5", md5s)
    _same(cifar.load(cifar.install(python.parent, tmp_path / "b", log=lambda *a: None).parent), data)  # its parent
    (binary / "test_batch.bin").write_bytes((binary / "test_batch.bin").read_bytes()[:-1])
    with pytest.raises(DataError, match="test_batch: 307,299 bytes, not the 307,300 of a CIFAR-10 batch"):
        cifar.install(binary, tmp_path / "c", log=lambda *a: None)


def test_the_pickle_reader_runs_no_code(tmp_path, data):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with pytest.raises(DataError, match="refused posix.system|refused os.system|refused nt.system"):
        cifar.parse_python(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2), "evil")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        cifar.parse_python(pickle.dumps({b"data": np.zeros((3, 4), np.uint8), b"labels": [1, 2, 3]}), "small")
    x, y = data["data_batch_2"]  # a real batch passes, at pickle protocol 2 (as the official files) and 4
    for protocol in (2, 4):
        got = cifar.parse_python(pickle.dumps({b"data": x.reshape(len(x), -1), b"labels": [int(v) for v in y]},
                                              protocol=protocol), "ok")
        np.testing.assert_array_equal(got[0], x)
        np.testing.assert_array_equal(got[1], y)


def test_missing_corrupt_and_offline(data, tmp_path, monkeypatch, capsys):
    root = tmp_path / "root"
    with pytest.raises(DataError, match="CIFAR-10 is not in .*`l2o data cifar10`"):
        cifar.load(root)
    write_release(tmp_path / "cifar-10-batches-bin", data, "binary")
    cifar.install(tmp_path / "cifar-10-batches-bin", root, log=lambda *a: None)
    with open(root / "cifar10" / "data_batch_3.bin", "r+b") as f:
        f.seek(5000)
        f.write(b"\xff")
    with pytest.raises(DataError, match=r"data_batch_3.bin corrupt; reinstall with `l2o data cifar10 --source PATH`"):
        cifar.load(root)
    assert main(["data", "cifar10", "--check", "--data-dir", str(root)]) == 2
    assert "data_batch_3.bin corrupt" in capsys.readouterr().out

    def offline(*a, **k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="could not download .*Network is unreachable.*--source PATH"):
        cifar.fetch(root, "auto", log=lambda *a: None)
    with pytest.raises(DataError, match="holds no CIFAR-10 release"):
        cifar.install(tmp_path / "root", tmp_path / "x", log=lambda *a: None)
