"""Meta-training: resume equals uninterrupted (also of runs saved before a setting existed), NaN handling, every
weight trained, it beats tuned SGD, objective- and parameter-scale augmentation."""

import pytest
import torch
from safetensors.torch import load_file

from l2o.evaluate import evaluate
from l2o.meta import TrainConfig, meta_train
from l2o.rules import LSTMRule
from l2o.tasks import QuadraticFamily
from l2o.tune import tune, tuned_rules

SMALL = dict(horizon=20, unroll=10, problems=8, val_every=2, val_problems=16, checkpoint_every=2)


def _rule():
    return LSTMRule(preprocess=False, output_scale=1.0)


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_equals_uninterrupted(tmp_path, ema):
    fam = QuadraticFamily()
    cfg = TrainConfig(episodes=6, ema=ema, **SMALL)
    whole = meta_train(fam, _rule(), cfg, tmp_path / "whole", progress=False)
    part = meta_train(fam, _rule(), cfg, tmp_path / "split", progress=False, stop_after=3)
    assert part.state.episode == 3
    resumed = meta_train(fam, _rule(), cfg, tmp_path / "split", progress=False, resume=True)
    assert resumed.state.episode == 6 and resumed.state.meta_steps == whole.state.meta_steps
    a, b = load_file(tmp_path / "whole" / "state.safetensors"), load_file(tmp_path / "split" / "state.safetensors")
    assert a.keys() == b.keys()
    assert any(k.startswith("ema.") for k in a) == bool(ema)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.state.history == [
        {**h, "seconds": r["seconds"]} for h, r in zip(whole.state.history, resumed.state.history)
    ]


def test_existing_run_needs_resume_and_same_settings(tmp_path):
    fam = QuadraticFamily()
    cfg = TrainConfig(episodes=2, **SMALL)
    meta_train(fam, _rule(), cfg, tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="pass --resume"):
        meta_train(fam, _rule(), cfg, tmp_path, progress=False)
    other = TrainConfig(episodes=2, **{**SMALL, "problems": 4})
    with pytest.raises(ValueError, match="train.problems: saved 8, now 4"):
        meta_train(fam, _rule(), other, tmp_path, progress=False, resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        meta_train(fam, _rule(), cfg, tmp_path / "empty", progress=False, resume=True)


def test_every_lstm_weight_changes(tmp_path):
    rule = _rule()
    torch.manual_seed(0)
    rule.reset_parameters()
    before = {k: v.clone() for k, v in rule.state_dict().items()}
    meta_train(QuadraticFamily(), rule, TrainConfig(episodes=3, **SMALL), tmp_path, progress=False)
    after = load_file(tmp_path / "state.safetensors")
    for k, v in before.items():
        assert torch.all(after["rule." + k] != v), f"{k}: some weights never changed"


class NaNFamily(QuadraticFamily):
    """Train episode 1 is poisoned: its problems give NaN losses."""

    def sample(self, split, seed, num_problems):
        task = super().sample(split, seed, num_problems)
        if split == "train" and seed == 1:
            task.W = task.W * float("nan")
        return task


def test_nan_meta_loss_is_skipped_counted_and_survived(tmp_path):
    result = meta_train(NaNFamily(), _rule(), TrainConfig(episodes=4, **SMALL), tmp_path, progress=False)
    assert result.state.episode == 4
    assert result.state.nan_skips == 1
    assert result.state.meta_steps == 3 * 2  # the poisoned episode's two truncations: one skipped, one not run
    assert all(torch.isfinite(p).all() for p in result.rule.parameters())
    assert result.state.history[-1]["nan_skips"] == 1


def test_bad_train_config():
    with pytest.raises(ValueError, match="multiple of unroll"):
        TrainConfig(horizon=100, unroll=30)
    with pytest.raises(ValueError, match="meta_lr"):
        TrainConfig(meta_lr=0.0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


@pytest.mark.slow
def test_short_meta_training_beats_tuned_sgd():
    fam = QuadraticFamily()
    cfg = TrainConfig(episodes=80, problems=64, val_every=20, val_problems=128)
    rule = meta_train(fam, _rule(), cfg, progress=False).rule
    tuning = tune(fam, names=("sgd",), num_problems=256, progress=False)
    results = evaluate({"lstm": rule, **tuned_rules(tuning)}, fam, num_problems=200, progress=False)
    lstm, sgd = results["rules"]["lstm"], results["rules"]["sgd"]
    assert lstm["final_mean"] < 0.8 * sgd["final_mean"], (lstm["final_mean"], sgd["final_mean"])
    assert lstm["sum_mean"] < sgd["sum_mean"]


def test_loss_weights():
    from l2o.meta.train import loss_weights

    cfg = TrainConfig(horizon=40, unroll=20, loss_weights="linear")
    assert loss_weights(cfg, 0)[0] == pytest.approx(1 / 40) and loss_weights(cfg, 1)[-1] == 1.0
    assert loss_weights(TrainConfig(horizon=40, unroll=20), 1).tolist() == [1.0] * 20
    assert loss_weights(TrainConfig(horizon=40, unroll=20, loss_weights="last"), 0).tolist() == [0.0] * 19 + [1.0]


def test_scaled_task_scales_objective_and_gradients_only():
    from l2o.tasks.scaled import ScaledTask, log_uniform_scales

    task = QuadraticFamily().sample("train", 3, 4)
    scale = torch.tensor([0.1, 1.0, 3.0, 40.0])
    scaled = ScaledTask(task, scale)
    params = {k: v.clone().requires_grad_() for k, v in task.init_params().items()}
    f, fs = task.loss(params, 0), scaled.loss(params, 0)
    torch.testing.assert_close(fs, f * scale)
    g = torch.autograd.grad(f.sum(), list(params.values()))[0]
    gs = torch.autograd.grad(scaled.loss(params, 0).sum(), list(params.values()))[0]
    torch.testing.assert_close(gs, g * scale.view(-1, *[1] * (g.dim() - 1)))
    for k, v in scaled.init_params().items():
        assert torch.equal(v, task.init_params()[k])
    with pytest.raises(ValueError, match="one scale per problem"):
        ScaledTask(task, torch.ones(3))
    with pytest.raises(ValueError, match="finite and positive"):
        ScaledTask(task, torch.tensor([1.0, 0.0, 1.0, 1.0]))
    c = log_uniform_scales(10_000, 10.0, seed=5)
    assert torch.equal(c, log_uniform_scales(10_000, 10.0, seed=5))
    assert 0.1 <= float(c.min()) < 0.11 and 9.0 < float(c.max()) <= 10.0
    assert abs(float(c.log().mean())) < 0.05  # log-uniform: symmetric around 1 in log scale
    with pytest.raises(ValueError, match="scale_spread"):
        TrainConfig(scale_spread=0.5)


def test_scale_augmentation_changes_training_not_validation(tmp_path):
    fam = QuadraticFamily()
    plain = meta_train(fam, _rule(), TrainConfig(episodes=2, **SMALL), progress=False)
    aug = meta_train(fam, _rule(), TrainConfig(episodes=2, scale_spread=10.0, **SMALL), tmp_path, progress=False)
    again = meta_train(fam, _rule(), TrainConfig(episodes=2, scale_spread=10.0, **SMALL), progress=False)
    # the first validation (before any step) is the same rule on the same unscaled problems
    assert aug.state.history[0]["val_final"] == plain.state.history[0]["val_final"]
    w_plain, w_aug, w_again = (r.rule.state_dict() for r in (plain, aug, again))
    assert any(not torch.equal(w_plain[k], w_aug[k]) for k in w_plain)
    assert all(torch.equal(w_aug[k], w_again[k]) for k in w_aug)  # the scales come from the seed


def test_param_scaled_task_is_a_reparametrisation():
    from l2o.tasks.scaled import ParamScaledTask, log_uniform_param_scales

    task = QuadraticFamily().sample("train", 3, 4)
    theta0 = task.init_params()
    c = log_uniform_param_scales(theta0, 10.0, seed=2)
    assert {k: v.shape for k, v in c.items()} == {k: v.shape for k, v in theta0.items()}
    assert all(torch.equal(c[k], log_uniform_param_scales(theta0, 10.0, seed=2)[k]) for k in c)
    scaled = ParamScaledTask(task, c)
    start = scaled.init_params()
    # the same point, hence the same losses, seen through θ = c ⊙ θ'
    torch.testing.assert_close(scaled.loss(start, 0), task.loss(theta0, 0))
    params = {k: v.clone().requires_grad_() for k, v in start.items()}
    gs = torch.autograd.grad(scaled.loss(params, 0).sum(), list(params.values()))
    plain = {k: v.clone().requires_grad_() for k, v in theta0.items()}
    g = torch.autograd.grad(task.loss(plain, 0).sum(), list(plain.values()))
    for name, a, b in zip(params, gs, g):
        torch.testing.assert_close(a, b * c[name])  # ∂f(c ⊙ θ')/∂θ' = c ⊙ ∇f
    name = sorted(theta0)[0]
    with pytest.raises(ValueError, match="one scale tensor per parameter"):
        ParamScaledTask(task, {name: c[name]} if len(c) > 1 else {})
    bad = dict(c)
    bad[name] = c[name].flatten()[:-1]
    with pytest.raises(ValueError, match="has shape"):
        ParamScaledTask(task, bad)
    bad[name] = torch.zeros_like(c[name])
    with pytest.raises(ValueError, match="finite and positive"):
        ParamScaledTask(task, bad)
    with pytest.raises(ValueError, match="param_scale_spread"):
        TrainConfig(param_scale_spread=float("nan"))


def test_param_scale_augmentation_changes_training_not_validation():
    fam = QuadraticFamily()
    plain = meta_train(fam, _rule(), TrainConfig(episodes=2, **SMALL), progress=False)
    aug, again = (meta_train(fam, _rule(), TrainConfig(episodes=2, param_scale_spread=10.0, **SMALL), progress=False)
                  for _ in range(2))
    assert aug.state.history[0]["val_final"] == plain.state.history[0]["val_final"]
    w_plain, w_aug, w_again = (r.rule.state_dict() for r in (plain, aug, again))
    assert any(not torch.equal(w_plain[k], w_aug[k]) for k in w_plain)
    assert all(torch.equal(w_aug[k], w_again[k]) for k in w_aug)


def test_resume_of_a_run_saved_before_a_setting_existed(tmp_path):
    import json

    from l2o import checkpoint

    cfg = TrainConfig(episodes=4, **SMALL)
    meta_train(QuadraticFamily(), _rule(), cfg, tmp_path, progress=False, stop_after=2)
    tensors, doc = checkpoint.load(tmp_path / "state.safetensors", "train_state")
    del doc["config"]["train"]["scale_spread"]  # as written by a version without the setting
    checkpoint.save(tmp_path / "state.safetensors", tensors, "train_state",
                    {k: v for k, v in doc.items() if k not in ("format", "version")})
    done = meta_train(QuadraticFamily(), _rule(), cfg, tmp_path, progress=False, resume=True)
    assert done.state.episode == 4
    assert json.loads((tmp_path / "config.json").read_text())["train"]["scale_spread"] == 1.0


def test_the_implementation_is_recorded_and_a_resume_never_switches_it(tmp_path):
    """config.json, the state and best checkpoints, and evaluation results name the implementation and the
    kernel's build; resuming with another implementation is refused; a changed kernel build is warned about
    and recorded."""
    import json

    from l2o import checkpoint, kernels

    fam = QuadraticFamily()
    cfg = TrainConfig(episodes=4, **SMALL)
    rule = _rule()
    expected = rule.implementation_info()
    if kernels.lstm_step() is not None:
        assert expected == {"implementation": "fused", "kernel": kernels.spec().name()}
    meta_train(fam, rule, cfg, tmp_path, progress=False, stop_after=2)
    assert json.loads((tmp_path / "config.json").read_text())["implementation"] == expected
    _, doc = checkpoint.load(tmp_path / "state.safetensors", "train_state")
    assert doc["config"]["implementation"] == expected
    assert doc["train_state"]["kernels"] == [{"episode": 0, **expected}]
    _, best = checkpoint.load(tmp_path / "best.safetensors", "rule")
    assert best["info"]["implementation"] == expected and best["info"]["trained"]["implementation"] == expected
    results = evaluate({"LSTM": checkpoint.load_rule(tmp_path)}, fam, steps=5, num_problems=4, progress=False)
    assert results["rules"]["LSTM"]["implementation"] == expected

    other = "torch" if expected["implementation"] == "fused" else "fused"
    if other == "fused" and kernels.lstm_step() is None:
        pytest.skip("the fused kernel is not available here")
    with pytest.raises(ValueError, match=f"cannot resume .* meta-trained with the '{expected['implementation']}' "
                                         f"implementation.* would use '{other}'"):
        meta_train(fam, LSTMRule(preprocess=False, output_scale=1.0, implementation=other), cfg, tmp_path,
                   progress=False, resume=True)

    if expected["implementation"] == "fused":  # the same implementation, another build of the kernel
        old = {"implementation": "fused", "kernel": "l2o_lstm_step_000000000000"}
        doc["config"]["implementation"] = old
        doc["train_state"]["kernels"] = [{"episode": 0, **old}]
        tensors, _ = checkpoint.load(tmp_path / "state.safetensors", "train_state")
        checkpoint.save(tmp_path / "state.safetensors", tensors, "train_state",
                        {k: v for k, v in doc.items() if k not in ("format", "version")})
        begun = {**json.loads((tmp_path / "config.json").read_text()), "implementation": old}
        (tmp_path / "config.json").write_text(json.dumps(begun))
        with pytest.warns(UserWarning, match="another build of the fused kernel"):
            done = meta_train(fam, _rule(), cfg, tmp_path, progress=False, resume=True)
        assert done.state.kernels == [{"episode": 0, **old}, {"episode": 2, **expected}]
        assert json.loads((tmp_path / "config.json").read_text()) == begun  # the record of the run's start stays


def test_second_order_runs_on_pytorch_and_says_so(tmp_path):
    cfg = TrainConfig(episodes=1, second_order=True, **SMALL)
    result = meta_train(QuadraticFamily(), _rule(), cfg, tmp_path, progress=False)
    assert result.rule.implementation_info() == {"implementation": "torch", "kernel": None}
    with pytest.raises(ValueError, match="second_order=True needs second derivatives"):
        meta_train(QuadraticFamily(), LSTMRule(preprocess=False, implementation="fused"), cfg, None, progress=False)


def test_a_second_process_on_the_same_run_stops_with_a_clear_error(tmp_path):
    """While one process meta-trains a run (it holds the folder's lock), another started on the same folder stops
    before reading or writing anything; once the first has ended, the run resumes."""
    from problems import lock_held_elsewhere

    fam, cfg = QuadraticFamily(), TrainConfig(episodes=2, **SMALL)
    meta_train(fam, _rule(), cfg, tmp_path, progress=False, stop_after=1)
    before = (tmp_path / "state.safetensors").read_bytes()
    with lock_held_elsewhere(tmp_path / ".lock", "4242"):
        with pytest.raises(RuntimeError, match=r"is being meta-trained by another process \(pid 4242\); wait"):
            meta_train(fam, _rule(), cfg, tmp_path, progress=False, resume=True)
        assert (tmp_path / "state.safetensors").read_bytes() == before
    assert meta_train(fam, _rule(), cfg, tmp_path, progress=False, resume=True).state.episode == 2
    # this process released the lock when it returned: the same folder can be opened again at once
    assert meta_train(fam, _rule(), cfg, tmp_path, progress=False, resume=True).state.episode == 2


def test_a_run_whose_starting_checkpoint_moved_resumes_and_another_file_refuses(tmp_path):
    import shutil
    from dataclasses import replace

    from l2o import checkpoint

    checkpoint.save_rule(tmp_path / "a" / "start.safetensors", LSTMRule(preprocess=False, output_scale=1.0))
    cfg = TrainConfig(episodes=2, horizon=4, unroll=2, problems=2, val_problems=2, val_every=1,
                      init_from=str(tmp_path / "a" / "start.safetensors"))
    run = tmp_path / "run"
    meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), cfg, run, stop_after=1,
               progress=False)
    shutil.move(tmp_path / "a", tmp_path / "b")  # the suite's folders moved together: the same file elsewhere
    moved = replace(cfg, init_from=str(tmp_path / "b" / "start.safetensors"))
    result = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), moved, run, resume=True,
                        progress=False)
    assert result.state.episode == 2
    torch.manual_seed(1)  # other weights, the same rule
    checkpoint.save_rule(tmp_path / "b" / "start.safetensors", LSTMRule(preprocess=False, output_scale=1.0))
    with pytest.raises(ValueError, match="init_from_sha256"):  # another file under the new path: not the same run
        meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), moved, run, resume=True,
                   progress=False)
