"""A mixture of task families (one member per batch, validation on every member) and the horizon curriculum."""

import pytest
import torch

from l2o.meta.train import TrainConfig, episode_horizon, meta_train
from l2o.rules.lstm import LSTMRule
from l2o.tasks.mixture import MixtureFamily
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily


def mixture(weights=None):
    return MixtureFamily({"small": QuadraticFamily(QuadraticConfig(dim=3)),
                          "large": QuadraticFamily(QuadraticConfig(dim=7))}, weights)


def test_a_batch_comes_from_one_member_chosen_by_weight_and_seed():
    family = mixture([3, 1])
    picks = [family.member("train", s) for s in range(400)]
    assert picks == [family.member("train", s) for s in range(400)]  # a function of (split, seed)
    assert 0.68 < picks.count("small") / 400 < 0.82
    task = family.sample("train", 11, 4)
    assert task.init_params()["theta"].shape == (4, 3 if family.member("train", 11) == "small" else 7)
    sets = family.validation_sets(5)
    assert {k: t.init_params()["theta"].shape for k, t in sets.items()} == {"small": (5, 3), "large": (5, 7)}
    assert family.config()["members"]["large"]["dim"] == 7 and family.config()["weights"] == [3.0, 1.0]
    with pytest.raises(ValueError, match="one weight >= 0 per member"):
        mixture([1, -1])


def test_meta_training_on_a_mixture_validates_on_every_member():
    family = mixture()
    cfg = TrainConfig(episodes=4, horizon=10, unroll=5, problems=4, val_every=2, val_problems=4,
                      val_metric="log_final")
    torch.manual_seed(0)
    result = meta_train(family, LSTMRule(preprocess=False, output_scale=0.1), cfg, progress=False)
    from l2o.meta.objective import score
    from l2o.meta.unroll import unroll

    sets = family.validation_sets(4)
    rule = LSTMRule(preprocess=False, output_scale=0.1)
    rule.load_state_dict(result.rule.state_dict())
    expected = sum(score(unroll(rule, t, 10).losses, "log_final") for t in sets.values()) / 2
    assert result.state.best_metric == pytest.approx(expected, rel=1e-5)


def test_the_curriculum_lengthens_the_episodes_by_stage():
    cfg = TrainConfig(episodes=6, horizon=40, unroll=10, curriculum=(10, 20, 40))
    assert [episode_horizon(cfg, e) for e in range(6)] == [10, 10, 20, 20, 40, 40]
    assert episode_horizon(TrainConfig(horizon=40, unroll=10), 3) == 40
    result = meta_train(QuadraticFamily(QuadraticConfig(dim=3)), LSTMRule(preprocess=False), cfg, progress=False)
    assert result.state.meta_steps == 2 * (1 + 2 + 4)  # one meta-step per truncation of each episode
    for bad, match in [((10, 25), "multiple of unroll"), ((20, 10), "must not decrease")]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(episodes=6, horizon=40, unroll=10, curriculum=bad)
