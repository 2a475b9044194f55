import math

import pytest
import torch

from l2o.rules import LSTMConfig, LSTMRule, log_sign


def test_log_sign_matches_the_paper_formula():
    p = 10.0
    g = torch.tensor([3.0, -0.5, 1e-3, -2e-5, 1e-6, -1e-9, 0.0])
    x = log_sign(g, p)
    for gi, (a, b) in zip(g.tolist(), x.tolist()):
        if abs(gi) >= math.exp(-p):
            assert a == pytest.approx(math.log(abs(gi)) / p, rel=1e-6)
            assert b == (1.0 if gi > 0 else -1.0)
        else:
            assert a == -1.0
            assert b == pytest.approx(math.exp(p) * gi, rel=1e-5, abs=1e-12)


def test_log_sign_is_differentiable_at_zero():
    g = torch.tensor([0.0, 1e-30, 2.0], requires_grad=True)
    (grad,) = torch.autograd.grad(log_sign(g, 5.0).sum(), g)
    assert torch.all(torch.isfinite(grad))


def test_state_has_one_row_per_coordinate_across_tensors():
    rule = LSTMRule()
    params = {"a": torch.zeros(3), "b": torch.zeros(2, 2), "c": torch.zeros(1, 1, 5)}
    state = rule.init(params)
    assert [h.shape for h in state.h] == [(12, 20), (12, 20)]
    grads = {k: torch.randn_like(v) for k, v in params.items()}
    updates, _ = rule.update(grads, state)
    assert {k: u.shape for k, u in updates.items()} == {k: v.shape for k, v in params.items()}


def test_each_coordinate_keeps_its_own_state():
    """Changing one coordinate's gradients changes only that coordinate's updates, at every step."""
    rule = LSTMRule(preprocess=True)
    params = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    gen = torch.Generator().manual_seed(1)
    grads = [{k: torch.randn(v.shape, generator=gen) for k, v in params.items()} for _ in range(5)]
    poked = [{k: v.clone() for k, v in g.items()} for g in grads]
    for g in poked:
        g["b"][1, 0] += 1.0
    with torch.no_grad():
        s1, s2 = rule.init(params), rule.init(params)
        for g1, g2 in zip(grads, poked):
            u1, s1 = rule.update(g1, s1)
            u2, s2 = rule.update(g2, s2)
            assert torch.equal(u1["a"], u2["a"])
            changed = (u1["b"] != u2["b"])
            assert changed[1, 0] and changed.sum() == 1


def test_joint_update_equals_separate_updates():
    rule = LSTMRule()
    params = {"a": torch.zeros(4), "b": torch.zeros(3, 2)}
    with torch.no_grad():
        joint = rule.init(params)
        sep = {k: rule.init({k: v}) for k, v in params.items()}
        for _ in range(4):
            grads = {k: torch.randn_like(v) for k, v in params.items()}
            uj, joint = rule.update(grads, joint)
            for k in params:
                us, sep[k] = rule.update({k: grads[k]}, sep[k])
                assert torch.allclose(uj[k], us[k], atol=1e-6)


def test_every_weight_is_a_registered_parameter():
    rule = LSTMRule(hidden_size=20, num_layers=2)
    n = sum(p.numel() for p in rule.parameters())
    expected = 4 * 20 * (2 + 20 + 2) + 4 * 20 * (20 + 20 + 2) + 21
    assert n == expected


def test_state_size_mismatch_is_explained():
    rule = LSTMRule()
    with pytest.raises(ValueError, match="5 coordinates but the LSTM state has 3 rows"):
        rule.update({"a": torch.zeros(5)}, rule.init({"a": torch.zeros(3)}))


@pytest.mark.parametrize("kwargs, message", [({"hidden_size": 0}, "hidden_size"), ({"p": 0.0}, "p must be"),
                                             ({"output_scale": 0.0}, "output_scale")])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTMConfig(**kwargs)


@pytest.mark.parametrize("rule_kind", ["lstm", "gac", "ntm"])
def test_pieces_without_autograd_equal_one_call(rule_kind, monkeypatch):
    """On many rows without autograd the PyTorch cells run piece by piece: bitwise the same steps."""
    from l2o.rules import NTMRule
    from l2o.rules import lstm as lstm_module

    torch.manual_seed(0)
    rule = {"lstm": lambda: LSTMRule(implementation="torch"), "gac": lambda: LSTMRule(gac=2),
            "ntm": lambda: NTMRule(memory="window", output_init=1.0)}[rule_kind]()
    grads = {"w": torch.randn(3, 700) * 0.1, "b": torch.randn(3, 7)}
    state = rule.init(grads)
    with torch.no_grad():
        whole = rule.update(grads, state)
        calls = []
        real = torch.nn.LSTMCell.forward
        monkeypatch.setattr(torch.nn.LSTMCell, "forward", lambda self, *a: calls.append(a[0].shape[0]) or real(self, *a))
        monkeypatch.setattr(lstm_module, "CHUNK_ROWS", 500)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)  # pieces only single-threaded
            pieces = rule.update(grads, state)
        finally:
            torch.set_num_threads(threads)
    assert calls[:5] == [500, 500, 500, 500, 121]  # 2,121 rows in pieces of 500
    torch.testing.assert_close(pieces, whole, rtol=0, atol=0)
