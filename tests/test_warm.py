"""Problems started deep into a baseline's run (l2o.tasks.warm) and meta-training on them (TrainConfig.warm_start)."""

import pytest
import torch

from l2o.meta import TrainConfig, meta_train
from l2o.meta.sampling import training_task
from l2o.meta.unroll import unroll
from l2o.rules import LSTMRule
from l2o.rules.baselines import Adam
from l2o.tasks import QuadraticFamily
from l2o.tasks.base import narrow
from l2o.tasks.warm import WarmStartedTask, parse, warm_up_steps


def test_a_warm_started_task_continues_the_baselines_run():
    task = QuadraticFamily().sample("train", 3, 4)
    whole = unroll(Adam(lr=0.05), task, 30)
    warm = WarmStartedTask(task, Adam(lr=0.05), 12)
    first = unroll(Adam(lr=0.05), task, 12).params
    assert all(torch.equal(warm.init_params()[k], first[k]) for k in first)
    assert torch.allclose(warm.loss(warm.init_params(), 0), whole.losses[12])
    assert float(warm.loss(warm.init_params(), 0).mean()) < 0.5 * float(task.loss(task.init_params(), 0).mean())
    params = {k: v + 0.1 for k, v in first.items()}
    assert torch.equal(warm.loss(params, 5), task.loss(params, 17))  # its step t is the task's step 12 + t
    # a part of the batch is warmed up as it is in the whole
    part = WarmStartedTask(narrow(task, 1, 2), Adam(lr=0.05), 12)
    for k, v in warm.narrow(1, 2).init_params().items():
        assert torch.allclose(part.init_params()[k], v, rtol=1e-6, atol=1e-7)
    assert WarmStartedTask(task, Adam(lr=0.05), 0).init_params()["theta"].equal(task.init_params()["theta"])


def test_each_episode_draws_its_warm_up_from_its_seed():
    ks = [warm_up_steps("adam:0.01:50", seed) for seed in range(200)]
    assert ks == [warm_up_steps("adam:0.01:50", seed) for seed in range(200)]
    assert min(ks) == 0 and max(ks) == 50 and len(set(ks)) > 40
    cfg = TrainConfig(problems=3, horizon=10, unroll=5, warm_start="adam:0.03:40")
    task, _ = training_task(QuadraticFamily(), cfg, episode=7)
    assert isinstance(task, WarmStartedTask) and task.steps == warm_up_steps("adam:0.03:40", 7)
    assert task.rule.lr == 0.03 and task.num_problems == 3


@pytest.mark.parametrize("spec", ["adam", "adam:0.01", "adam:-1:10", "adam:0.01:-5", "bfgs:0.1:10", "adam:x:10",
                                  "adam:0.01:10:3"])
def test_bad_specs_are_refused_at_once(spec):
    with pytest.raises(ValueError, match="warm_start must be NAME:LR:MAX"):
        TrainConfig(warm_start=spec)


def test_meta_training_on_warm_started_problems_is_a_function_of_its_settings(tmp_path):
    cfg = TrainConfig(episodes=4, horizon=10, unroll=5, problems=4, val_every=2, val_problems=4, checkpoint_every=2,
                      warm_start="adam:0.05:60")
    rule = lambda: LSTMRule(preprocess=False, output_scale=0.1)  # noqa: E731
    a = meta_train(QuadraticFamily(), rule(), cfg, tmp_path / "a", progress=False)
    b = meta_train(QuadraticFamily(), rule(), cfg, tmp_path / "b", progress=False, stop_after=2)
    b = meta_train(QuadraticFamily(), rule(), cfg, tmp_path / "b", progress=False, resume=True)
    assert a.state.history == [{**h, "seconds": r["seconds"]} for h, r in zip(b.state.history, a.state.history)]
    assert parse(cfg.warm_start) == ("adam", 0.05, 60)
    assert '"warm_start": "adam:0.05:60"' in (tmp_path / "a" / "config.json").read_text()


def test_self_warm_up_runs_the_rule_itself_then_meta_trains_a_later_window(tmp_path):
    from l2o.meta.estimators import TruncatedBPTT
    from l2o.meta.train import self_warm_up

    cfg = TrainConfig(episodes=4, horizon=10, unroll=5, problems=4, val_every=2, val_problems=4, checkpoint_every=2,
                      warm_start="self:60")
    skips = [self_warm_up(cfg, e) for e in range(50)]
    assert skips == [warm_up_steps("self:60", e) // 5 for e in range(50)] and max(skips) in (11, 12) and min(skips) == 0
    assert self_warm_up(TrainConfig(warm_start="adam:0.01:60"), 3) == 0 and self_warm_up(TrainConfig(), 3) == 0
    task = QuadraticFamily().sample("train", 0, 4)
    rule = LSTMRule(preprocess=False, output_scale=0.1)
    est = TruncatedBPTT(unroll=5)
    carry = est.start(rule, task)
    for k in range(3):  # three truncations without a meta-gradient = 15 steps of the rule, its state carried
        carry = est.advance(rule, task, carry, k)
    whole = unroll(rule, task, 15)
    assert torch.allclose(carry[0]["theta"], whole.params["theta"], rtol=1e-5, atol=1e-6)
    assert not carry[0]["theta"].requires_grad
    a = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=0.1), cfg, tmp_path / "a", progress=False)
    b = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=0.1), cfg, tmp_path / "b", progress=False,
                   stop_after=2)
    b = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=0.1), cfg, tmp_path / "b", progress=False,
                   resume=True)
    assert a.state.history == [{**h, "seconds": r["seconds"]} for h, r in zip(b.state.history, a.state.history)]
    assert a.state.meta_steps == 4 * 2  # two truncations of the horizon per episode, whatever the warm-up
    with pytest.raises(ValueError, match="needs truncated BPTT"):
        TrainConfig(warm_start="self:100", estimator="pes")
    with pytest.raises(ValueError, match="or self:MAX"):
        TrainConfig(warm_start="self")
