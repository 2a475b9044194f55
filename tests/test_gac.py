"""LSTM+GAC (paper Appendix D): global averaging cells whose outgoing activations are averaged over the
coordinates of one optimizee at every step."""

import pytest
import torch
from problems import assert_problems_stay_apart

from l2o import LearnedOptimizer, LSTMRule, checkpoint, load_rule
from l2o.meta import unroll
from l2o.tasks.mlp import MLPConfig, MLPFamily, synthetic_dataset


def _gac_rule(k=2, **kw):
    torch.manual_seed(0)
    return LSTMRule(gac=k, output_init=1.0, **kw)


def test_zero_gacs_is_the_plain_lstm():
    torch.manual_seed(0)
    plain = LSTMRule(implementation="torch")
    torch.manual_seed(0)
    zero = LSTMRule(gac=0, implementation="torch")
    assert zero.config() == plain.config() and "gac" not in plain.config()
    g = {"w": torch.randn(2, 30)}
    (u1, _), (u2, _) = plain.update(g, plain.init(g)), zero.update(g, zero.init(g))
    assert torch.equal(u1["w"], u2["w"])


def test_the_averaging_cells_hold_each_optimizees_mean_and_the_others_do_not():
    rule = _gac_rule(3)
    g = {"w": torch.randn(2, 7, 3), "b": torch.randn(2, 3)}
    _, state = rule.update(g, rule.init(g))
    index, counts = rule.problem_index(g)
    assert counts.tolist() == [24, 24]
    for h in state.h:
        for b in range(2):
            rows = h[index == b]
            assert torch.allclose(rows[:, :3], rows[:1, :3].expand(24, 3))  # one value per optimizee
            assert not torch.allclose(rows[:, 3:], rows[:1, 3:].expand(24, 17))
        assert not torch.allclose(h[index == 0][0, :3], h[index == 1][0, :3])  # and per optimizee


def test_averages_never_mix_problems():
    """Two problems side by side give what each gives alone."""
    rule = _gac_rule(2)
    family = MLPFamily(synthetic_dataset(n=512), MLPConfig(hidden=(6,)))
    assert_problems_stay_apart(rule, family, steps=4)


def test_meta_gradients_reach_through_the_averages():
    rule = _gac_rule(2, preprocess=False)
    task = MLPFamily(synthetic_dataset(n=256), MLPConfig(hidden=(4,))).sample("train", 0, 2)
    unroll(rule, task, 3, meta=True).losses[1:].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rule.parameters())


def test_through_learned_optimizer_the_average_is_over_the_groups_coordinates(tmp_path):
    rule = _gac_rule(2).requires_grad_(False)
    checkpoint.save_rule(tmp_path / "gac.safetensors", rule)
    assert load_rule(tmp_path / "gac.safetensors").config()["gac"] == 2
    a, b = torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(5))
    opt = LearnedOptimizer([("a", a), ("b", b)], checkpoint=str(tmp_path / "gac.safetensors"))
    ga, gb = torch.randn(3, 4), torch.randn(5)
    a.grad, b.grad = ga, gb
    opt.step()
    grads = {"a": ga.unsqueeze(0), "b": gb.unsqueeze(0)}
    expected, _ = rule.update(grads, rule.init(grads))  # one optimizee: both tensors together
    torch.testing.assert_close(a.detach(), expected["a"][0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(b.detach(), expected["b"][0], rtol=1e-6, atol=1e-7)


def test_bad_numbers_of_gacs():
    with pytest.raises(ValueError, match="gac must be between 0 and hidden_size"):
        LSTMRule(gac=21)
    with pytest.raises(RuntimeError, match="no global averaging cells"):
        LSTMRule(gac=1, implementation="fused")
