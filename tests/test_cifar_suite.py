"""The CIFAR-10 suite end to end on tiny settings and generated MNIST-shaped images (a stand-in)."""

import json
from dataclasses import replace

import pytest
import torch

from l2o.cli import main
from l2o.experiments import cifar
from l2o.meta.train import TrainConfig
from l2o.tasks import conv as conv_tasks
from l2o.tasks.conv import ConvConfig, Images
from test_mnist import data  # noqa: F401  (the fixture: small generated MNIST files)


@pytest.fixture
def generated(monkeypatch):
    def splits(dataset, data_dir=None, labels=()):
        gen = torch.Generator().manual_seed(0)
        out = {}
        for split, n in (("train", 120), ("validation", 40), ("test", 40)):
            x = torch.rand(n, 1, 12, 12, generator=gen)
            y = torch.arange(n) % 10
            if labels:
                keep = torch.isin(y, torch.tensor(labels))
                x, y = x[keep], torch.tensor([labels.index(int(v)) for v in y[keep]])
            out[split] = Images(x, y)
        return out

    monkeypatch.setattr(conv_tasks, "image_splits", splits)


def tiny(only="ten,five,two,torch_layers", long_episodes=1, subsets_episodes=0):
    return cifar.Settings(
        task=ConvConfig(dataset="fashion-mnist", channels=(2, 2), hidden=(4,), batch_size=4),
        train=TrainConfig(episodes=2, horizon=4, unroll=2, problems=1, val_every=1, val_problems=1, seed=0),
        experiment=cifar.ExperimentConfig(test_problems=2, tune_problems=1, steps=5, tune_steps=3, lr_min=0.01,
                                          lr_max=1.0, per_decade=1, mlp_steps=4, only=only,
                                          long_episodes=long_episodes, long_horizon=6, long_unroll=3,
                                          long_val_every=1, subsets_episodes=subsets_episodes))


def test_suite_end_to_end_names_its_stand_in_and_reuses(generated, tmp_path):
    summary = cifar.run(tmp_path, tiny(), progress=False, log=lambda *a: None)
    assert summary["dataset_name"] == "Fashion-MNIST (stand-in for CIFAR-10)"
    assert list(summary["tasks"]) == ["ten", "five", "two", "torch_layers"]
    for key in ("lstm", "sub"):  # CPU time of both stages, counted from their first episodes
        assert summary["meta_train_cpu"][key]["complete"] and summary["meta_train_cpu"][key]["seconds"] > 0
    # LSTM-sub only on the subsets; the first stage alone only on the 10-class task
    assert set(summary["tasks"]["ten"]) == {"description", cifar.LEARNED, cifar.FIRST}
    assert set(summary["tasks"]["two"]) == {"description", cifar.LEARNED, cifar.SUB}
    r = json.loads((tmp_path / "tasks" / "five" / "results.json").read_text())
    assert r["task"]["labels"] == [0, 1, 2, 3, 4] and r["steps"] == 5
    assert set(r["rules"]) == {cifar.LEARNED, cifar.SUB, "sgd", "nag", "rmsprop", "adam"}
    sub = json.loads((tmp_path / "train" / "sub" / "config.json").read_text())
    assert sub["task"]["labels"] == [5, 6, 7, 8, 9] and sub["rule"]["name"] == "routed"
    assert set(sub["rule"]["rules"]) == {"conv", "fc"} and sub["rule"]["rules"]["conv"]["output_scale"] == 0.01
    text = (tmp_path / "results.md").read_text()
    assert "Fashion-MNIST (stand-in for CIFAR-10)" in text and (tmp_path / "figure7.png").is_file()
    for key in ("lstm", "sub"):  # the second stage starts from the first's best weights, at its own horizon
        second = json.loads((tmp_path / "train" / f"{key}-long" / "config.json").read_text())["train"]
        assert second["init_from"] == str(tmp_path / "train" / key) and (second["horizon"], second["unroll"]) == (6, 3)
        assert second["episodes"] == 1 and second["meta_lr"] == 1e-3
        assert (second["problems"], second["val_problems"]) == (1, 1)  # the first stage's unless asked
        assert (second["imitate"], second["imitate_weight"]) == ("nag:0.1", 1e4)  # the first stage imitates nothing
        assert summary["runs"][key] == str(tmp_path / "train" / f"{key}-long")
    first = json.loads((tmp_path / "train" / "lstm" / "config.json").read_text())["train"]
    assert first["horizon"] == 4 and first["init_from"] == "" and first["imitate"] == ""
    history = [(tmp_path / "train" / k / "history.csv").read_text().splitlines() for k in ("lstm", "lstm-long")]
    assert all(len(h) > 1 for h in history)
    assert not (tmp_path / "train" / "lstm" / "summary.json").exists()
    own = json.loads((tmp_path / "train" / "lstm-long" / "summary.json").read_text())
    assert own["dataset"] == "Fashion-MNIST (stand-in for CIFAR-10)" and set(own["tasks"]) == {"ten", "five", "two", "torch_layers"}
    layers = json.loads((tmp_path / "tasks" / "torch_layers" / "results.json").read_text())["task"]
    assert layers["init"] == "torch" and layers["bn_scale"] is True and (tmp_path / "users_models.png").is_file()
    stamp = (tmp_path / "tasks" / "two" / "results.json").stat().st_mtime_ns
    assert cifar.run(tmp_path, tiny(), progress=False, log=lambda *a: None)["tasks"] == summary["tasks"]
    assert (tmp_path / "tasks" / "two" / "results.json").stat().st_mtime_ns == stamp


def test_one_optimizer_alone_then_the_whole_suite_reuses_it(generated, tmp_path):
    settings = tiny("five")
    alone = cifar.run(tmp_path, replace(settings, experiment=replace(settings.experiment, optimizers="sub")),
                      progress=False, log=lambda *a: None)
    assert alone == {"runs": {"sub": str(tmp_path / "train" / "sub-long")}}
    assert not (tmp_path / "train" / "lstm").exists() and not (tmp_path / "tasks").exists()
    stamp = (tmp_path / "train" / "sub-long" / "state.safetensors").stat().st_mtime_ns
    summary = cifar.run(tmp_path, settings, progress=False, log=lambda *a: None)  # trains lstm, reuses sub
    assert (tmp_path / "train" / "sub-long" / "state.safetensors").stat().st_mtime_ns == stamp
    assert set(summary["tasks"]["five"]) == {"description", cifar.LEARNED, cifar.SUB}
    with pytest.raises(ValueError, match="optimizers must be all, lstm or sub, got 'both'"):
        cifar.ExperimentConfig(optimizers="both")
    with pytest.raises(ValueError, match="long_problems and long_val_problems must be >= 0"):
        cifar.ExperimentConfig(long_problems=-1)


def test_the_second_stage_may_take_more_problems_than_the_first(generated, tmp_path):
    settings = tiny("five")
    settings = replace(settings, experiment=replace(settings.experiment, optimizers="sub", long_problems=2,
                                                    long_val_problems=3))
    cifar.run(tmp_path, settings, progress=False, log=lambda *a: None)
    first = json.loads((tmp_path / "train" / "sub" / "config.json").read_text())["train"]
    second = json.loads((tmp_path / "train" / "sub-long" / "config.json").read_text())["train"]
    assert (first["problems"], first["val_problems"]) == (1, 1)
    assert (second["problems"], second["val_problems"]) == (2, 3)


def test_the_five_class_split_is_a_setting_and_lstm_sub_trains_on_the_other_five(generated, tmp_path):
    settings = tiny("five")
    settings = replace(settings, experiment=replace(settings.experiment, optimizers="sub", five=(0, 1, 2, 5, 7)))
    assert settings.experiment.sub_labels == (3, 4, 6, 8, 9)
    cifar.run(tmp_path, settings, progress=False, log=lambda *a: None)
    for stage in ("sub", "sub-long"):
        assert json.loads((tmp_path / "train" / stage / "config.json").read_text())["task"]["labels"] == [3, 4, 6, 8, 9]
    tasks = cifar.eval_tasks(replace(settings, experiment=replace(settings.experiment, only="five")))
    assert tasks["five"][0].labels == (0, 1, 2, 5, 7)
    # five distinct classes of 0-9 holding 0 and 1, so that LSTM-sub's stay disjoint from the two-class task
    for bad in ((2, 3, 4, 5, 6), (0, 1, 2, 3), (0, 1, 2, 3, 3), (0, 1, 2, 3, 4, 4), (0, 1, 2, 3, 10)):
        with pytest.raises(ValueError, match="five must be five distinct classes of 0-9 holding \\[0, 1\\]"):
            cifar.ExperimentConfig(five=bad)


def test_the_suite_evaluates_without_lstm_sub_while_another_process_trains_it(generated, tmp_path):
    from problems import lock_held_elsewhere
    settings = tiny("five", long_episodes=0)
    (tmp_path / "train" / "sub").mkdir(parents=True)
    messages = []
    with lock_held_elsewhere(tmp_path / "train" / "sub" / ".lock", "4242") as holder:
        summary = cifar.run(tmp_path, settings, progress=False, log=messages.append)
    assert summary["pending"] == {"sub": f"being meta-trained in {tmp_path / 'train' / 'sub'} by another process "
                                         f"(pid {holder.pid})"}
    assert any("evaluating without it now" in m for m in messages)
    assert set(summary["tasks"]["five"]) == {"description", cifar.LEARNED} and "sub" not in summary["runs"]
    assert "Incomplete: LSTM-sub was being meta-trained" in (tmp_path / "results.md").read_text()
    assert not (tmp_path / "train" / "sub" / "state.safetensors").exists()
    results = tmp_path / "tasks" / "five" / "results.json"
    before = json.loads(results.read_text())["rules"]
    summary = cifar.run(tmp_path, settings, progress=False, log=lambda *a: None)  # the lock is free: trains sub
    assert summary["pending"] == {} and set(summary["tasks"]["five"]) == {"description", cifar.LEARNED, cifar.SUB}
    after = json.loads(results.read_text())["rules"]
    assert after["adam"]["mean"] == before["adam"]["mean"] and after[cifar.LEARNED] == before[cifar.LEARNED]


def test_only_the_ten_class_task_trains_no_sub(generated, tmp_path):
    summary = cifar.run(tmp_path, tiny("ten", long_episodes=0), progress=False, log=lambda *a: None)
    assert list(summary["tasks"]) == ["ten"] and not (tmp_path / "train" / "sub").exists()
    assert summary["runs"] == {"lstm": str(tmp_path / "train" / "lstm")} and not (tmp_path / "train" / "lstm-long").exists()
    assert set(summary["tasks"]["ten"]) == {"description", cifar.LEARNED}
    assert (tmp_path / "train" / "lstm" / "summary.json").is_file()
    with pytest.raises(ValueError, match="long_episodes, long_problems and long_val_problems must be >= 0"):
        cifar.ExperimentConfig(long_episodes=-1)
    with pytest.raises(ValueError, match="imitate must be NAME:LR"):  # at once, not after the first stage
        cifar.ExperimentConfig(long_imitate="bfgs:1")
    cifar.ExperimentConfig(long_episodes=0, subsets_episodes=0, long_imitate="bfgs:1")  # no second stage: no check
    with pytest.raises(ValueError, match=r"unknown tasks \['eleven'\]"):
        cifar.eval_tasks(tiny("ten,eleven"))


def test_cli_dataset_flag_and_the_real_data_missing(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(cifar, "run", lambda out, settings, **kw: seen.update(settings=settings))
    assert main(["cifar", "--dataset", "fashion-mnist", "--episodes", "5", "--steps", "50"]) == 0
    assert seen["settings"].task.dataset == "fashion-mnist" and seen["settings"].train.episodes == 5
    assert seen["settings"].experiment.steps == 50 and seen["settings"].rule == cifar.RULE
    monkeypatch.undo()
    assert main(["cifar", "--out", str(tmp_path / "c"), "--data-dir", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "CIFAR-10 is not in" in capsys.readouterr().err


def test_the_conv_optimizer_on_the_papers_mnist_mlp(generated, data, tmp_path):  # noqa: F811
    root, _ = data
    summary = cifar.run(tmp_path, tiny("mnist_mlp"), data_dir=root, progress=False, log=lambda *a: None)
    t = summary["tasks"]["mnist_mlp"]
    assert t["description"] == "the paper's MNIST MLP (784-20-10 sigmoid), 4 steps" and t[cifar.LEARNED]["steps"] == 4
    assert not (tmp_path / "train" / "sub").exists() and not (tmp_path / "figure7.png").exists()


def test_a_third_stage_on_random_label_subsets_and_what_it_changed(generated, tmp_path):
    summary = cifar.run(tmp_path, tiny("ten,five", subsets_episodes=1), progress=False, log=lambda *a: None)
    for key, pool, sizes in (("lstm", list(range(10)), [2, 5, 10]), ("sub", [5, 6, 7, 8, 9], [2, 5])):
        third = json.loads((tmp_path / "train" / f"{key}-subsets" / "config.json").read_text())
        assert third["task"]["name"] == "conv_label_subsets" and third["task"]["pool"] == pool
        assert third["task"]["sizes"] == sizes and third["task"]["exclude"] == [[0, 1], [0, 1, 2, 3, 4]]
        assert third["train"]["init_from"] == str(tmp_path / "train" / f"{key}-long")
        assert third["train"]["episodes"] == 1 and third["train"]["val_problems"] == 2
        assert summary["runs"][key] == str(tmp_path / "train" / f"{key}-subsets")
    assert set(summary["tasks"]["ten"]) == {"description", cifar.LEARNED, cifar.FIRST, cifar.SECOND}
    assert set(summary["tasks"]["five"]) == {"description", cifar.LEARNED, cifar.SUB, cifar.SECOND, cifar.SUB_SECOND}
    with pytest.raises(ValueError, match="subsets_episodes must be >= 0 \\(and needs long_episodes\\)"):
        cifar.ExperimentConfig(long_episodes=0, subsets_episodes=5)
    with pytest.raises(ValueError, match="subsets_sizes between 2 and 5"):
        cifar.ExperimentConfig(subsets_sizes=(1,))


def test_the_second_stage_in_segments_has_its_own_remat(generated, tmp_path):
    settings = tiny("ten")
    settings = replace(settings, experiment=replace(settings.experiment, long_remat=1, optimizers="lstm"))
    cifar.run(tmp_path, settings, progress=False, log=lambda *a: None)
    first = json.loads((tmp_path / "train" / "lstm" / "config.json").read_text())["train"]
    second = json.loads((tmp_path / "train" / "lstm-long" / "config.json").read_text())["train"]
    assert (first["remat"], second["remat"], second["unroll"]) == (0, 1, 3)  # the first stage's runs are unchanged
    with pytest.raises(ValueError, match="remat must be >= 0"):  # at once, not after the first stage
        cifar.ExperimentConfig(long_remat=-1)
