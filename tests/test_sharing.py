"""The sharing experiment (LSTM vs LSTM+GAC vs NTM-BFGS / NTM-L-BFGS), end to end on tiny settings."""

import json
from dataclasses import replace

import pytest

from l2o.cli import main
from l2o.experiments import sharing
from l2o.meta.train import TrainConfig
from test_mnist import data  # noqa: F401  (the fixture: small generated MNIST files)

TINY = TrainConfig(episodes=2, problems=2, val_every=1, val_problems=2, horizon=4, unroll=2, seed=3)
QUIET = dict(progress=False, log=lambda *a: None)


def test_quadratic_end_to_end_and_reuse(tmp_path):
    s = sharing.Settings("quadratic", sharing.ExperimentConfig(test_problems=6, tune_problems=4), TINY)
    summary = sharing.run(tmp_path, s, **QUIET)
    labels = ["LSTM", "LSTM+GAC (2)", "NTM-BFGS"]
    assert list(summary["learned"]) == labels
    assert summary["learned"]["NTM-BFGS"]["rule"]["memory"] == "full"
    assert summary["learned"]["LSTM+GAC (2)"]["rule"]["gac"] == 2
    for f in ("sharing.png", "results.md", "summary.json", "tasks/base/results.json", "train/ntm/best.safetensors"):
        assert (tmp_path / f).is_file(), f
    r = json.loads((tmp_path / "tasks" / "base" / "results.json").read_text())
    assert summary["labels"] == [*labels, "NTM-BFGS (reads zeroed)"]  # the ablation: the controller alone
    assert set(r["rules"]) == {*summary["labels"], "sgd", "nag", "rmsprop", "adam", "lbfgs"} and r["num_problems"] == 6
    assert summary["learned"]["NTM-BFGS"]["rule"]["read_scale"] == 0.1
    t = summary["tasks"]["base"]
    assert t["NTM-BFGS"]["ratio_final_vs_lstm"] == pytest.approx(
        r["rules"]["NTM-BFGS"]["final_mean"] / r["rules"]["LSTM"]["final_mean"])
    best = min(t["baselines"], key=lambda k: t["baselines"][k]["final_mean"])
    assert t["LSTM"]["best_baseline"] == best
    text = (tmp_path / "results.md").read_text()
    assert "NTM-BFGS / LSTM" in text and f"{t['NTM-BFGS']['ratio_final_vs_lstm']:.3f}×" in text
    assert "best first-order baseline" in text  # beside L-BFGS
    own = json.loads((tmp_path / "train" / "gac" / "summary.json").read_text())  # what `l2o export` ships
    assert own["tasks"]["base"]["learned_final_mean"] == r["rules"]["LSTM+GAC (2)"]["final_mean"]
    assert main(["export", str(tmp_path / "train" / "ntm"), "--out", str(tmp_path / "ntm.safetensors")]) == 0
    shipped = json.loads((tmp_path / "ntm.json").read_text())
    assert shipped["info"]["result"]["label"] == "NTM-BFGS" and shipped["rule"]["name"] == "ntm"
    stamp = (tmp_path / "tasks" / "base" / "results.json").stat().st_mtime_ns
    again = sharing.run(tmp_path, s, **QUIET)  # everything reused: no training, no evaluation
    assert (tmp_path / "tasks" / "base" / "results.json").stat().st_mtime_ns == stamp
    assert again["tasks"] == summary["tasks"]


def test_train_only_then_evaluate(tmp_path):
    s = sharing.Settings("quadratic", sharing.ExperimentConfig(only="gac", train_only=True), TINY)
    done = sharing.run(tmp_path, s, **QUIET)
    assert list(done["learned"]) == ["LSTM+GAC (2)"] and (tmp_path / "train" / "gac" / "best.safetensors").is_file()
    assert not (tmp_path / "tasks").exists() and not (tmp_path / "summary.json").exists()
    stamp = (tmp_path / "train" / "gac" / "state.safetensors").stat().st_mtime_ns
    s = sharing.Settings("quadratic", sharing.ExperimentConfig(only="gac", test_problems=3, tune_problems=2), TINY)
    summary = sharing.run(tmp_path, s, **QUIET)  # evaluates what was trained, without training it again
    assert (tmp_path / "train" / "gac" / "state.safetensors").stat().st_mtime_ns == stamp
    assert summary["tasks"]["base"]["LSTM+GAC (2)"]["num_problems"] == 3


def test_only_some_rules_and_unknown_names(tmp_path):
    s = sharing.Settings("quadratic", sharing.ExperimentConfig(only="gac", test_problems=3, tune_problems=2), TINY)
    summary = sharing.run(tmp_path, s, **QUIET)
    assert list(summary["learned"]) == ["LSTM+GAC (2)"] and not (tmp_path / "train" / "lstm").exists()
    assert "ratio_final_vs_lstm" not in summary["tasks"]["base"]["LSTM+GAC (2)"]
    with pytest.raises(ValueError, match=r"unknown learned rules \['bfgs'\]; available: lstm, gac, ntm"):
        sharing.run(tmp_path, sharing.Settings("quadratic", sharing.ExperimentConfig(only="gac,bfgs")), **QUIET)
    with pytest.raises(ValueError, match=r"unknown evaluation tasks \['steps200'\]; available: base"):
        sharing.run(tmp_path, sharing.Settings("quadratic", sharing.ExperimentConfig(tasks="steps200")), **QUIET)
    with pytest.raises(ValueError, match="runs on quadratic, mnist, not 'conv'"):
        sharing.run(tmp_path, sharing.Settings("conv"), **QUIET)


def test_mnist_variants_and_generalisation_tasks(data, tmp_path):  # noqa: F811
    root, _ = data
    s = sharing.Settings("mnist", sharing.ExperimentConfig(only="gac,ntm", test_problems=2, tune_problems=1), TINY,
                         dict(steps=4, long_steps=6, lr_min=0.01, lr_max=1.0, per_decade=1))
    summary = sharing.run(tmp_path, s, data_dir=root, **QUIET)
    assert list(summary["learned"]) == ["LSTM+GAC (2)", "NTM-L-BFGS"]
    assert summary["learned"]["NTM-L-BFGS"]["rule"]["read_scale"] == 1 / 15910
    assert "best first-order baseline" not in (tmp_path / "results.md").read_text()
    assert summary["learned"]["NTM-L-BFGS"]["rule"]["memory"] == "window"
    assert summary["learned"]["NTM-L-BFGS"]["rule"]["preprocess"] is True
    assert list(summary["tasks"]) == ["base", "steps200", "units40", "layers2"]
    blind = "NTM-L-BFGS (reads zeroed)"  # the ablation on the task meta-trained on only
    assert blind in summary["tasks"]["base"] and all(blind not in summary["tasks"][k] for k in ("steps200", "layers2"))
    assert " — |" in (tmp_path / "results.md").read_text()
    assert summary["tasks"]["steps200"]["NTM-L-BFGS"]["steps"] == 6 and summary["tasks"]["base"]["steps"] == 4
    r = json.loads((tmp_path / "tasks" / "layers2" / "results.json").read_text())
    assert r["task"]["hidden"] == [20, 20] and set(r["rules"]) >= {"NTM-L-BFGS", "adam"}
    stamp = (tmp_path / "tasks" / "units40" / "results.json").stat().st_mtime_ns
    part = sharing.run(tmp_path, replace(s, experiment=replace(s.experiment, tasks="units40,base")), data_dir=root,
                       **QUIET)  # some of the tasks (e.g. one process each), reusing what is done
    assert list(part["tasks"]) == ["base", "units40"] and part["tasks"]["units40"] == summary["tasks"]["units40"]
    assert (tmp_path / "tasks" / "units40" / "results.json").stat().st_mtime_ns == stamp


def test_cli_reaches_the_settings(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(sharing, "run", lambda out, settings, **kw: seen.update(out=out, settings=settings, kw=kw))
    assert main(["sharing", "--task", "mnist", "--only", "lstm,ntm", "--test-problems", "9"]) == 0
    assert seen["out"] == "runs/sharing/mnist" and seen["settings"].task == "mnist"
    assert seen["settings"].experiment == sharing.ExperimentConfig(only="lstm,ntm", test_problems=9)
    assert seen["settings"].train is None  # the task's shipped recipe


def test_evaluate_reads_zeroed_adds_each_ntm_alone(tmp_path):
    import torch

    from l2o import LSTMRule, checkpoint
    from l2o.rules import NTMRule

    torch.manual_seed(0)
    checkpoint.save_rule(tmp_path / "ntm.safetensors", NTMRule(preprocess=False, output_scale=1.0, head_init=1.0))
    checkpoint.save_rule(tmp_path / "lstm.safetensors", LSTMRule(preprocess=False))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--learned", f"m={tmp_path / 'ntm.safetensors'}", f"l={tmp_path / 'lstm.safetensors'}",
                 "--reads-zeroed", "--task", "quadratic", "--problems", "5", "--steps", "6", "--out", str(out),
                 "--no-progress"]) == 0
    r = json.loads(out.read_text())["rules"]
    assert list(r) == ["m", "l", "m (reads zeroed)"]  # the LSTM has no memory: no ablation
    assert r["m"]["final_mean"] != r["m (reads zeroed)"]["final_mean"]
