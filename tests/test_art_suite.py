"""The neural-art suite end to end on tiny settings and generated photographs."""

import json
from dataclasses import asdict

import pytest
import torch

from l2o.cli import main
from l2o.data import art_images
from l2o.experiments import art
from l2o.meta.train import TrainConfig
from l2o.meta.unroll import unroll
from l2o.rules import Adam
from l2o.tasks.art import ArtConfig
from l2o.tasks.registry import make_family
from test_art_images import fake_photos


@pytest.fixture
def photos(tmp_path, monkeypatch):
    (tmp_path / "photos").mkdir()
    files = fake_photos(tmp_path / "photos")
    monkeypatch.setattr(art_images, "photo_files", lambda: files)
    return files


def tiny(only="all"):
    return art.Settings(
        task=ArtConfig(size=32),
        train=TrainConfig(episodes=2, horizon=4, unroll=2, problems=1, val_every=1, val_problems=1, seed=0),
        experiment=art.ExperimentConfig(test_problems=3, tune_problems=1, steps=4, test_size=48, lr_min=0.01,
                                        lr_max=1.0, per_decade=1, figure_problems=2, only=only))


def test_suite_end_to_end_figures_and_reuse(photos, tmp_path):
    out = tmp_path / "out"
    summary = art.run(out, tiny(), progress=False, log=lambda *a: None)
    assert list(summary["tasks"]) == ["train_style", "new_style"]
    assert summary["meta_train_cpu"]["complete"] and summary["meta_train_cpu"]["seconds"] > 0
    assert summary["feature_network"] == ("random filters (one layer at kernel sizes 3, 5, 7 and image scales 1, 1/2, "
                                          "1/4; seed 0, no pretrained weights), content at every layer")
    for name, size, style in (("train_style", 32, "stained-glass"), ("new_style", 48, "swirls")):
        r = json.loads((out / "tasks" / name / "results.json").read_text())
        assert (r["task"]["size"], r["task"]["style"], r["steps"], r["num_problems"]) == (size, style, 4, 3)
        assert set(r["rules"]) == {art.LEARNED, "sgd", "nag", "rmsprop", "adam"}
        t = summary["tasks"][name]
        assert set(t["figure9_final_losses"]) == {art.LEARNED, t["best_baseline"]}
        assert len(t["figure9_final_losses"][art.LEARNED]) == 2 and (out / f"figure9_{name}.png").is_file()
        assert t["seconds_per_step"]["feature_network_s"] > 0 and t["seconds_per_step"]["optimizer_s"] > 0
    assert (out / "figure8.png").is_file() and "content at every layer" in (out / "results.md").read_text()
    own = json.loads((out / "train" / "summary.json").read_text())
    assert own["experiment"] == "art" and set(own["tasks"]) == {"train_style", "new_style"}
    cfg = json.loads((out / "train" / "config.json").read_text())
    assert cfg["task"]["name"] == "art" and cfg["rule"]["output_scale"] == 1.0 and cfg["train"]["unroll"] == 2
    stamp = (out / "tasks" / "new_style" / "results.json").stat().st_mtime_ns
    again = art.run(out, tiny(), progress=False, log=lambda *a: None)
    assert again["tasks"]["new_style"]["learned_final_mean"] == summary["tasks"]["new_style"]["learned_final_mean"]
    assert (out / "tasks" / "new_style" / "results.json").stat().st_mtime_ns == stamp


def test_figure9_shows_the_evaluations_first_test_images(photos, tmp_path):
    family = make_family("art", **asdict(ArtConfig(size=32)))
    finals = art.figure9(tmp_path / "f.png", family, {"adam": Adam(lr=0.05)}, 3, 2, "t")
    task = family.sample("test", 0, 5)  # what an evaluation on 5 test images runs
    assert len(set(map(tuple, task.content.flatten(1).tolist()))) == 5  # distinct content images
    torch.testing.assert_close(torch.tensor(finals["adam"]), unroll(Adam(lr=0.05), task, 3).losses[-1][:2])
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_settings_and_cli_errors(photos, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown settings \['old_style'\]"):
        art.eval_tasks(tiny("train_style,old_style"))
    with pytest.raises(ValueError, match="test_problems must be between 1 and 64"):
        art.ExperimentConfig(test_problems=65)
    assert main(["art", "--out", str(tmp_path / "x"), "--only", "nothing", "--no-progress"]) == 2
    assert "unknown settings ['nothing']" in capsys.readouterr().err
    assert main(["art", "--out", str(tmp_path / "y"), "--art-content-layer", "conv9_9", "--no-progress"]) == 2
    assert "content_layer must be 'auto' or a layer of the multiscale network" in capsys.readouterr().err
