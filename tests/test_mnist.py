"""The MNIST task family and the MNIST suite, on small generated files in the IDX format."""

import json

import numpy as np
import pytest
import torch

from l2o.cli import main
from l2o.data import datasets as ds
from l2o.data.idx import DataError
from l2o.experiments import mnist
from l2o.meta.train import TrainConfig
from l2o.tasks import make_family
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
from test_data import small_dataset


@pytest.fixture
def data(monkeypatch, tmp_path):
    """A data dir with a small "mnist" (60 training images, 24 test images) whose checksums are registered."""
    root = tmp_path / "data"
    arrays, shas = small_dataset(root / "mnist", n=60, nt=24)
    monkeypatch.setitem(ds.DATASETS, "mnist", ds.DatasetSpec(name="mnist", sha256=shas, urls=(), sources=()))
    monkeypatch.setenv("L2O_DATA", str(root))
    return root, arrays


def test_splits_are_disjoint_and_from_the_right_files(data):
    root, arrays = data
    fam = ImageMLPFamily(dataset="mnist", data_dir=root)
    x = torch.from_numpy(arrays["train-images-idx3-ubyte"].reshape(60, -1)).float() / 255
    assert torch.equal(fam.data["train"].x, x[:50]) and torch.equal(fam.data["validation"].x, x[50:])
    xt = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].reshape(24, -1)).float() / 255
    assert torch.equal(fam.data["test"].x, xt)
    assert fam.data["train"].x.max() <= 1 and fam.data["train"].x.min() >= 0


def test_problems_draw_only_from_their_split(data):
    root, _ = data
    fam = ImageMLPFamily(dataset="mnist", data_dir=root)
    for split in ("train", "validation", "test"):
        task = fam.sample(split, 3, 2)
        x, _ = task.batch(0)
        pool = fam.data[split].x
        assert all(any(torch.equal(row, p) for p in pool) for row in x[0, :5])
    a, b = fam.sample("train", 3, 2), fam.sample("train", 3, 2)
    assert torch.equal(a.batch(7)[0], b.batch(7)[0]) and torch.equal(a.theta0["w0"], b.theta0["w0"])
    c = fam.sample("train", 4, 2)
    assert not torch.equal(a.theta0["w0"], c.theta0["w0"])


def test_make_family_and_config_round_trip(data):
    root, _ = data
    fam = make_family("mnist", data_dir=root, hidden=[40, 40], activation="relu")
    assert fam.cfg == MLPConfig(hidden=(40, 40), activation="relu")
    again = make_family(**json.loads(json.dumps(fam.config())), data_dir=root)
    assert again.config() == fam.config()
    assert [p.shape for p in fam.sample("test", 0, 3).theta0.values()] == [
        (3, 784, 40), (3, 40), (3, 40, 40), (3, 40), (3, 40, 10), (3, 10)]


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(DataError, match="l2o data mnist"):
        ImageMLPFamily(dataset="mnist", data_dir=tmp_path)
    assert main(["train", "--task", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "l2o data mnist" in capsys.readouterr().err
    assert main(["data", "mnist", "--check", "--data-dir", str(tmp_path)]) == 2


def tiny(out_tasks="base,relu,sweep"):
    return mnist.Settings(
        task=MLPConfig(hidden=(4,), batch_size=8),
        train=TrainConfig(episodes=2, horizon=4, unroll=2, problems=2, val_every=1, val_problems=2, seed=0),
        experiment=mnist.ExperimentConfig(test_problems=3, tune_problems=2, steps=4, long_steps=6, lr_min=0.01,
                                          lr_max=1.0, per_decade=1, sweep_hidden=(2, 4), sweep_layers=(1,),
                                          only=out_tasks))


def test_suite_end_to_end_and_reuse(data, tmp_path):
    out = tmp_path / "suite"
    summary = mnist.run(out, tiny(), progress=False, log=lambda *a: None)
    assert set(summary["tasks"]) == {"base", "relu", "h2_l1", "h4_l1"}
    for f in ("figure4.png", "sweep.png", "results.md", "summary.json", "train/best.safetensors"):
        assert (out / f).is_file(), f
    assert summary["tasks"]["h4_l1"] == summary["tasks"]["base"]  # the same task, computed once
    assert not (out / "tasks" / "h4_l1").exists()
    r = json.loads((out / "tasks" / "base" / "results.json").read_text())
    assert set(r["rules"]) == {mnist.LEARNED, "sgd", "nag", "rmsprop", "adam"} and r["num_problems"] == 3
    assert r["split"] == "test"
    stamp = (out / "tasks" / "relu" / "results.json").stat().st_mtime_ns
    again = mnist.run(out, tiny(), progress=False, log=lambda *a: None)  # everything reused
    assert (out / "tasks" / "relu" / "results.json").stat().st_mtime_ns == stamp
    assert again["tasks"] == summary["tasks"]
    changed = tiny()
    changed = mnist.Settings(changed.task, changed.rule, changed.train,
                             mnist.ExperimentConfig(**{**changed.experiment.__dict__, "test_problems": 4}))
    third = mnist.run(out, changed, progress=False, log=lambda *a: None)  # new settings: recomputed
    assert third["tasks"]["relu"]["num_problems"] == 4


def test_unknown_task_name_is_rejected():
    s = tiny("base,figure9")
    with pytest.raises(ValueError, match="unknown tasks \\['figure9'\\]"):
        mnist.eval_tasks(s)


def test_cli_mnist_flags_reach_the_settings(data, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(mnist, "run", lambda out, settings, **kw: seen.update(settings=settings, kw=kw))
    assert main(["mnist", "--out", str(tmp_path), "--mlp-hidden", "40", "40", "--mlp-activation", "relu",
                 "--episodes", "7", "--sweep-hidden", "8", "16", "--only", "base"]) == 0
    s = seen["settings"]
    assert s.task.hidden == (40, 40) and s.task.activation == "relu" and s.train.episodes == 7
    assert s.experiment.sweep_hidden == (8, 16) and s.rule == mnist.RULE
    assert np.isclose(s.rule.output_scale, 0.1)


def test_cli_data_fetches_from_a_folder_then_checks(data, tmp_path, capsys):
    root, _ = data
    target = tmp_path / "elsewhere"
    assert main(["data", "mnist", "--check", "--data-dir", str(target)]) == 2
    assert main(["data", "mnist", "--source", str(root / "mnist"), "--data-dir", str(target)]) == 0
    assert main(["data", "mnist", "--check", "--data-dir", str(target)]) == 0
    assert "train-images-idx3-ubyte ok" in capsys.readouterr().out
