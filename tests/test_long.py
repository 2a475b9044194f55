"""The long-horizon suite on tiny settings and generated MNIST files."""

import json

import pytest

from l2o.cli import main
from l2o.experiments import long
from test_mnist import data  # noqa: F401  (the fixture: small generated MNIST files)


def test_the_suite_runs_each_optimizer_once_and_resumes(data, tmp_path, capsys):  # noqa: F811
    root, _ = data
    out = tmp_path / "long"
    args = ["long", "--out", str(out), "--data-dir", str(root), "--steps", "30", "--window", "10", "--record-every",
            "7", "--test-problems", "2", "--tune-steps", "5", "--tune-problems", "1", "--adam-lrs", "0.001", "0.1",
            "--learned", "mnist", "nonesuch", "--only", "mnist_sigmoid,mnist_relu", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "not shipped in this installation, skipped: nonesuch" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == {"mnist_sigmoid", "mnist_relu"} and summary["skipped"] == ["nonesuch"]
    head = summary["tasks"]["mnist_relu"]
    assert head["best_adam"] in ("adam (lr 0.001)", "adam (lr 0.1)") and "mnist" in head
    runs = sorted(p.name for p in (out / "tasks" / "mnist_relu").glob("*.json"))
    assert len(runs) == 1 + 1 + 2 + 2 and "tuning.json" in runs  # mnist, two Adams, tuned RMSprop and NAG
    r = json.loads((out / "tasks" / "mnist_relu" / "mnist.json").read_text())
    assert r["recorded_steps"] == [0, 7, 14, 21, 28, 30] and len(r["mean"]) == 6 and r["nonfinite_steps"] == 0
    assert r["diverged"] == (not r["last_window_mean"] < r["initial_mean"])
    assert (out / "long.png").is_file() and "### mnist_relu" in (out / "results.md").read_text()
    # each learned optimizer's own results, which `l2o export --summary` stores with a shipped optimizer
    own = json.loads((out / "own" / "mnist.json").read_text())["tasks"]["mnist_relu"]
    best = head["best_adam"]
    assert own["learned_final_mean"] == r["last_window_mean"] and own["best_baseline"] == best
    assert own["ratio_final_vs_best_baseline"] == r["last_window_mean"] / head["best_adam_last_window_mean"]
    assert main(["export", "mnist", "--out", str(tmp_path / "m.safetensors"), "--summary", str(out / "own" / "mnist.json")]) == 0
    exported = json.loads((tmp_path / "m.json").read_text())["info"]
    assert exported["result"]["tasks"]["mnist_relu"] == own
    assert exported["result"]["meta_train_seconds"] == exported["train_seconds"]  # the run's, kept with the results
    stamp = (out / "tasks" / "mnist_relu" / "mnist.json").stat().st_mtime_ns
    assert main(args) == 0  # everything is reused
    assert (out / "tasks" / "mnist_relu" / "mnist.json").stat().st_mtime_ns == stamp


def test_tuned_baselines_can_be_left_out_or_chosen(data, tmp_path):  # noqa: F811
    root, _ = data
    out = tmp_path / "long"
    base = ["long", "--out", str(out), "--data-dir", str(root), "--steps", "12", "--window", "4", "--test-problems",
            "1", "--tune-steps", "3", "--tune-problems", "1", "--adam-lrs", "0.01", "--learned", "--only",
            "mnist_relu", "--no-progress"]
    assert main([*base, "--tuned"]) == 0  # the flag alone: no tuning, no tuned baseline
    assert sorted(p.name for p in (out / "tasks" / "mnist_relu").iterdir()) == ["adam_lr_0.01.json"]
    assert main([*base, "--tuned", "nag"]) == 0
    runs = sorted(p.name for p in (out / "tasks" / "mnist_relu").glob("*.json"))
    assert runs[0] == "adam_lr_0.01.json" and runs[1].startswith("nag_tuned_lr_") and runs[2:] == ["tuning.json"]
    assert json.loads((out / "summary.json").read_text())["settings"]["tuned"] == ["nag"]


def test_bad_settings():
    with pytest.raises(ValueError, match="window <= steps"):
        long.LongConfig(steps=10, window=20)
    with pytest.raises(ValueError, match=r"unknown baselines \['adam'\]; choose from rmsprop, nag"):
        long.LongConfig(tuned=("adam",))
    with pytest.raises(ValueError, match=r"unknown tasks \['cifar'\]"):
        long.families(long.Settings(long.LongConfig(only="cifar")))


@pytest.mark.parametrize("which", ["lstm", "adam"])
def test_a_run_cut_short_resumes_within_it_on_the_same_trajectory(tmp_path, monkeypatch, which):
    """Saved every ``segment`` steps: a run interrupted after two segments resumes from the second and ends with
    exactly the losses of an uninterrupted run; the progress file of another run is not used; a damaged one is
    said and ignored."""
    import torch

    from l2o.rules import LSTMRule
    from l2o.rules.baselines import Adam
    from l2o.tasks.quadratic import QuadraticFamily

    fam = QuadraticFamily()
    task = fam.sample("test", 0, 3)
    torch.manual_seed(0)
    rule = LSTMRule(moments=(0.9,), direct=True, output_scale=0.1, output_init=0.0) if which == "lstm" else Adam(lr=0.1)
    e = long.LongConfig(steps=25, window=5, segment=10, record_every=1)
    whole = long.run_one(rule, task, e)
    partial, key = tmp_path / "run.partial.pt", {"run": 1}
    real, calls = long.unroll, {"n": 0}

    def cut(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(long, "unroll", cut)
    with pytest.raises(KeyboardInterrupt):
        long.run_one(rule, task, e, partial, key)
    assert partial.is_file()
    calls["n"] = -100  # from here on, counting only
    resumed = long.run_one(rule, task, e, partial, key)
    assert calls["n"] == -99  # the last segment only (steps 20-25)
    assert resumed["mean"] == whole["mean"] and resumed["median"] == whole["median"]
    calls["n"] = -100
    other = long.run_one(rule, task, e, partial, {"run": 2})  # another run's progress file: started over
    assert calls["n"] == -97 and other["mean"] == whole["mean"]
    partial.write_bytes(b"not a checkpoint")
    calls["n"] = -100
    with pytest.warns(UserWarning, match="cannot be read"):
        assert long.run_one(rule, task, e, partial, key)["mean"] == whole["mean"]
    assert calls["n"] == -97
