"""The IDX reader and the data step, on small files in the IDX format that the tests write."""

import gzip

import numpy as np
import pytest

from l2o.data import DATASETS, DataError, data_dir, fetch, load, parse_idx, read_idx, status, write_idx
from l2o.data import datasets as ds
from l2o.data.idx import sha256


def small_dataset(folder, n=50, nt=20, seed=0, compress=False):
    """Write the four files of an MNIST-like dataset; returns their SHA-256 (of the uncompressed content)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (nt, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, nt, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    shas = {}
    for name, a in arrays.items():
        path = folder / (name + (".gz" if compress else ""))
        write_idx(path, a, compress=compress)
        shas[name] = sha256(gzip.decompress(path.read_bytes()) if compress else path.read_bytes())
    return arrays, shas


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """A dataset spec "mnist" whose checksums are those of small generated files in tmp_path/src."""
    arrays, shas = small_dataset(tmp_path / "src")
    spec = ds.DatasetSpec(name="mnist", sha256=shas, urls=("http://127.0.0.1:9/",), sources=("official",))
    monkeypatch.setitem(ds.DATASETS, "mnist", spec)
    return tmp_path, arrays


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, dtype, compress):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "a", a, compress=compress)
    b = read_idx(tmp_path / "a")
    assert b.dtype == np.dtype(dtype) and b.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_big_endian(tmp_path):
    write_idx(tmp_path / "a", np.zeros((3, 2), np.uint8))
    assert (tmp_path / "a").read_bytes()[:12] == bytes([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 2])


def test_idx_errors_name_the_problem(tmp_path):
    write_idx(tmp_path / "a", np.zeros((10, 4), np.uint8))
    data = (tmp_path / "a").read_bytes()
    with pytest.raises(DataError, match="truncated"):
        parse_idx(data[:-3], "a")
    with pytest.raises(DataError, match="trailing"):
        parse_idx(data + b"x", "a")
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x89PNG\r\n\x1a\n" + data, "a")
    with pytest.raises(DataError, match="unknown value type"):
        parse_idx(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 0]), "a")
    (tmp_path / "b.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DataError, match="b.gz: corrupt gzip"):
        read_idx(tmp_path / "b.gz")
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "missing")
    with pytest.raises(DataError, match="checksum mismatch"):
        read_idx(tmp_path / "a", sha="0" * 64)


def test_data_dir_flag_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("L2O_DATA", str(tmp_path / "env"))
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("L2O_DATA")
    assert data_dir().parts[-3:] == (".cache", "l2o", "data")


def test_missing_data_says_what_to_run(fake):
    tmp_path, _ = fake
    with pytest.raises(DataError, match=r"(?s)l2o data mnist.*--data-dir.*L2O_DATA"):
        load("mnist", tmp_path / "empty")


def test_fetch_from_a_directory_then_load(fake):
    tmp_path, arrays = fake
    root = tmp_path / "data"
    fetch("mnist", root, source=str(tmp_path / "src"), log=lambda *a: None)
    assert set(status("mnist", root).values()) == {"ok"}
    got = load("mnist", root)
    np.testing.assert_array_equal(got.train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(got.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_gz_files_are_accepted_and_checked_by_content(fake, tmp_path):
    _, shas = small_dataset(tmp_path / "gz", compress=True)  # same seed: same content as the fake spec's
    root = tmp_path / "data"
    fetch("mnist", root, source=str(tmp_path / "gz"), log=lambda *a: None)
    assert load("mnist", root).train_images.shape == (50, 28, 28)


def test_a_corrupt_file_is_reported_and_replaced(fake):
    tmp_path, _ = fake
    root = tmp_path / "data"
    fetch("mnist", root, source=str(tmp_path / "src"), log=lambda *a: None)
    target = root / "mnist" / "train-labels-idx1-ubyte"
    target.write_bytes(target.read_bytes()[:-1] + b"\x07")
    assert status("mnist", root)["train-labels-idx1-ubyte"] == "corrupt"
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: checksum mismatch"):
        load("mnist", root)
    fetch("mnist", root, source=str(tmp_path / "src"), log=lambda *a: None)
    assert set(status("mnist", root).values()) == {"ok"}


def test_foreign_files_are_not_installed(fake, tmp_path):
    small_dataset(tmp_path / "other", seed=1)
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("mnist", tmp_path / "data", source=str(tmp_path / "other"), log=lambda *a: None)
    assert set(status("mnist", tmp_path / "data").values()) == {"missing"}


def test_unreachable_network_fails_with_advice(fake):
    tmp_path, _ = fake
    with pytest.raises(DataError, match=r"(?s)could not obtain mnist.*--source /path/to/files"):
        fetch("mnist", tmp_path / "data", source="auto", timeout=2, log=lambda *a: None)


def test_unknown_dataset_and_source():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        fetch("cifar", log=lambda *a: None)
    with pytest.raises(DataError, match="unknown source"):
        fetch("mnist", "/nonexistent-l2o-root", source="ftp", log=lambda *a: None)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_files_when_present(name):
    """The real datasets, where the data step has run (it has on this project's machines)."""
    if set(status(name).values()) != {"ok"}:
        pytest.skip(f"{name} not in {data_dir()}")
    a = load(name)
    assert a.train_images.shape == (60000, 28, 28) and a.test_images.shape == (10000, 28, 28)
    assert sorted(np.unique(a.train_labels)) == list(range(10))
    assert DATASETS[name].sha256
