"""PES (persistent evolution strategies): unbiased for the whole episode, checked against the exact gradient."""

import pytest
import torch

from l2o.meta.estimators import PES, TruncatedBPTT
from l2o.meta.objective import meta_loss
from l2o.meta.train import TrainConfig, meta_train
from l2o.meta.unroll import unroll
from l2o.rules.lstm import LSTMRule
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily

CFG = TrainConfig(horizon=6, unroll=3, problems=2)


def objective(losses, k):
    return meta_loss(losses, CFG, k)


def setup():
    torch.manual_seed(0)
    rule = LSTMRule(hidden_size=2, num_layers=1, preprocess=False, output_scale=0.1, implementation="torch")
    return rule, QuadraticFamily(QuadraticConfig(dim=3)).sample("train", 0, 2)


def episode_gradient(rule, task, estimator, seed=0) -> torch.Tensor:
    """The sum of the estimator's meta-gradients over the episode's truncations, φ held fixed."""
    carry, total = estimator.start(rule, task, seed), 0
    for k in range(CFG.horizon // CFG.unroll):
        for p in rule.parameters():
            p.grad = None
        _, carry = estimator.estimate(rule, task, carry, k, objective)
        total = total + torch.cat([p.grad.flatten() for p in rule.parameters()])
    return total


def test_pes_matches_the_exact_gradient_of_the_whole_episode_where_truncated_bptt_is_biased():
    rule, task = setup()
    # brute force: the whole episode unrolled at once, second derivatives kept
    out = unroll(rule, task, CFG.horizon, meta=True, second_order=True)
    total = sum(objective(out.losses[3 * k:3 * k + 4], k) for k in range(2))
    exact = torch.cat([g.flatten() for g in torch.autograd.grad(total, list(rule.parameters()))])
    before = [p.detach().clone() for p in rule.parameters()]
    pes = episode_gradient(rule, task, PES(CFG.unroll, sigma=1e-3, pairs=1000))
    assert all(torch.equal(a, b) for a, b in zip(before, rule.parameters()))  # φ restored bit for bit
    assert torch.nn.functional.cosine_similarity(pes, exact, dim=0) > 0.97
    assert 0.85 < float(pes.norm() / exact.norm()) < 1.15
    truncated = episode_gradient(rule, task, TruncatedBPTT(CFG.unroll))
    assert float(truncated.norm() / exact.norm()) < 0.8  # truncation drops the earlier truncations' part


def test_pes_draws_from_the_episode_seed_and_skips_a_non_finite_loss():
    rule, task = setup()
    a = episode_gradient(rule, task, PES(3, pairs=2), seed=5)
    assert torch.equal(a, episode_gradient(rule, task, PES(3, pairs=2), seed=5))
    assert not torch.equal(a, episode_gradient(rule, task, PES(3, pairs=2), seed=6))
    for p in rule.parameters():
        p.grad = None
    loss, _ = PES(3, pairs=2).estimate(rule, task, PES(3, pairs=2).start(rule, task, 0), 0,
                                       lambda losses, k: losses.sum() * float("nan"))
    assert not torch.isfinite(loss) and all(p.grad is None for p in rule.parameters())
    with pytest.raises(ValueError, match="PES needs"):
        PES(3, sigma=0)


def test_meta_training_with_pes_improves_and_resumes_exactly(tmp_path):
    family = QuadraticFamily(QuadraticConfig(dim=3))
    cfg = TrainConfig(episodes=6, horizon=10, unroll=5, problems=4, meta_lr=0.01, val_every=3, val_problems=8,
                      estimator="pes", pes_sigma=0.01, pes_pairs=4, checkpoint_every=2)

    def rule():
        return LSTMRule(hidden_size=4, num_layers=1, preprocess=False, output_scale=0.1)

    whole = meta_train(family, rule(), cfg, tmp_path / "whole", progress=False)
    assert whole.state.best_metric < whole.state.history[0]["val_final"]
    meta_train(family, rule(), cfg, tmp_path / "parts", progress=False, stop_after=3)
    resumed = meta_train(family, rule(), cfg, tmp_path / "parts", resume=True, progress=False)
    for a, b in zip(whole.rule.state_dict().values(), resumed.rule.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="PES needs"):
        TrainConfig(estimator="pes", second_order=True)
    with pytest.raises(ValueError, match="estimator must be one of"):
        TrainConfig(estimator="reinforce")
