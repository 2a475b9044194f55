"""The examples run as they are (with small settings) and write what they promise."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _module(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_family_example(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "custom_family.py"), "--episodes", "2", "--steps", "5",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "custom_family.json").read_text())
    assert set(result["final"]) == {"learned", "adam (lr 1e-3, default)", "adam (lr 0.1)"}
    assert (tmp_path / "custom_family.png").is_file() and (tmp_path / "regression_run" / "best.safetensors").is_file()


def test_custom_family_satisfies_the_protocol():
    from l2o.tasks import Task, TaskFamily

    ex = _module("custom_family")
    family = ex.RegressionFamily()
    assert isinstance(family, TaskFamily)
    task = family.sample("train", 0, 3)
    assert isinstance(task, Task)
    assert task.loss(task.init_params(), 0).shape == (3,)
    assert not torch.equal(family.sample("validation", 0, 3).w_true, task.w_true)


def test_train_your_model_example(tmp_path, monkeypatch):
    ex = _module("train_your_model")
    gen = torch.Generator().manual_seed(0)

    def fake():
        make = lambda n: (torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen))  # noqa: E731
        return make(256), make(64), make(64)

    monkeypatch.setattr(ex, "data", fake)
    monkeypatch.setattr(sys, "argv", ["x", "--steps", "4", "--eval-every", "2", "--checkpoint", "quadratic",
                                      "--out", str(tmp_path)])
    ex.main()
    result = json.loads((tmp_path / "train_your_model.json").read_text())
    assert set(result) == {"mlp", "convnet"}
    for r in result.values():
        assert len(r["final_test_loss"]) == 3 and r["tuned_lr"] in ex.ADAM_GRID
        assert [s for s, _ in r["curves"]["adam (lr 1e-3, default)"]] == [0, 2, 4]
    assert (tmp_path / "train_your_model.png").is_file()


def test_your_module_example(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "your_module.py"), "--episodes", "2", "--steps", "10",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "your_module.json").read_text())
    assert set(result["final"]) == {"learned", "adam"} and all(v > 0 for v in result["final"].values())
    assert "vectorised over problems" in out.stdout
    config = json.loads((tmp_path / "bars_run" / "config.json").read_text())
    assert config["task"]["name"] == "bars-cnn" and config["train"]["init_from"] == "mnist"
