"""Truncated BPTT in segments (``remat``): the same meta-gradient as in one piece, at one segment's memory."""

import pytest
import torch

from l2o.meta.estimators import TruncatedBPTT
from l2o.meta.objective import meta_loss
from l2o.meta.train import TrainConfig
from l2o.rules import LSTMRule
from l2o.rules.baselines import Adam
from l2o.tasks import QuadraticFamily


def _grads(remat, *, teacher=None, moments=(), second_order=False, unroll=12, truncation=1):
    torch.manual_seed(0)
    rule = LSTMRule(preprocess=False, output_scale=0.5, output_init=1.0, moments=moments).double()
    task = QuadraticFamily(dim=3, dtype="float64").sample("train", 0, 2)
    cfg = TrainConfig(unroll=unroll, horizon=unroll * 2, log_loss=True, loss_weights="linear")
    est = TruncatedBPTT(unroll, second_order, teacher, 0.5 if teacher else 0.0, remat=remat)

    def objective(losses, k, extra=None):
        loss = meta_loss(losses, cfg, k)
        return loss if extra is None else loss + extra

    carry = est.start(rule, task)
    carry = est.advance(rule, task, carry, 0)  # start mid-episode: a state that is not the initial one
    rule.zero_grad()
    loss, after = est.estimate(rule, task, carry, truncation, objective)
    return loss, [p.grad.clone() for p in rule.parameters()], after


@pytest.mark.parametrize("kw", [{}, {"moments": (0.5, 0.9)}, {"teacher": Adam(0.1)}, {"second_order": True}])
@pytest.mark.parametrize("remat", [1, 5, 4])
def test_segments_give_the_same_meta_gradient(kw, remat):
    loss, grads, after = _grads(0, **kw)
    loss_r, grads_r, after_r = _grads(remat, **kw)
    assert loss_r.item() == pytest.approx(loss.item(), rel=1e-12)
    assert any(g.abs().max() > 0 for g in grads)
    for g, g_r in zip(grads, grads_r):
        torch.testing.assert_close(g_r, g, rtol=1e-9, atol=1e-12)
    for a, b in zip(after[0].values(), after_r[0].values()):  # the carry to the next truncation
        torch.testing.assert_close(b, a, rtol=1e-12, atol=0)


def test_remat_settings_are_checked():
    with pytest.raises(ValueError, match="remat must be >= 0"):
        TrainConfig(remat=-1)
    with pytest.raises(ValueError, match="truncated BPTT"):
        TrainConfig(remat=5, estimator="pes")
    with pytest.raises(ValueError, match="remat must be >= 0"):
        TruncatedBPTT(10, remat=-2)
