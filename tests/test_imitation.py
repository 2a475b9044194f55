"""Imitation of a hand-designed optimizer as an extra meta-loss term (Chen et al. 2020)."""

import pytest
import torch

from l2o.meta.train import TrainConfig, meta_train
from l2o.meta.unroll import unroll
from l2o.rules import Adam, SGD
from l2o.rules.lstm import LSTMRule
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily


def test_the_distance_to_the_teacher_is_zero_for_the_teacher_itself_and_never_moves_theta():
    task = QuadraticFamily(QuadraticConfig(dim=4)).sample("train", 0, 3)
    same = unroll(Adam(lr=0.01), task, 5, teacher=(Adam(lr=0.01), Adam(lr=0.01).init(task.init_params())))
    assert same.imitation.shape == (5, 3) and same.imitation.abs().max() == 0
    other = unroll(SGD(lr=0.01), task, 5, teacher=(Adam(lr=0.01), Adam(lr=0.01).init(task.init_params())))
    alone = unroll(SGD(lr=0.01), task, 5)
    assert torch.equal(other.losses, alone.losses) and other.imitation.min() > 0


def test_meta_training_with_imitation_brings_the_rule_towards_the_teacher():
    family = QuadraticFamily(QuadraticConfig(dim=4))
    val = family.sample("validation", 0, 8)

    def distance(rule):
        return unroll(rule, val, 20, teacher=(Adam(lr=0.03), Adam(lr=0.03).init(val.init_params()))).imitation.mean()

    def trained(weight):
        cfg = TrainConfig(episodes=30, horizon=20, unroll=10, problems=8, meta_lr=0.01, val_every=30, val_problems=8,
                          imitate="adam:0.03", imitate_weight=weight, seed=1)
        return meta_train(family, LSTMRule(preprocess=True, output_scale=0.1, hidden_size=8, num_layers=1), cfg,
                          progress=False).rule

    torch.manual_seed(1)
    before = distance(LSTMRule(preprocess=True, output_scale=0.1, hidden_size=8, num_layers=1))
    imitating, not_imitating = distance(trained(100.0)), distance(trained(0.0))
    assert imitating < 0.5 * before and imitating < 0.5 * not_imitating, (before, imitating, not_imitating)
    for bad in ("adam", "adamw:0.1", "adam:-1", "adam:x"):
        with pytest.raises(ValueError, match="imitate must be NAME:LR"):
            TrainConfig(imitate=bad)
    with pytest.raises(ValueError, match="imitate must be NAME:LR"):
        TrainConfig(imitate="adam:0.1", estimator="pes")
