"""The LSTM's momentum inputs (RNNprop-style): scale-free features of the gradient's history, kept in the state."""

import math
from dataclasses import replace

import pytest
import torch

from l2o import LearnedOptimizer
from l2o.checkpoint import load_rule, save_rule
from l2o.meta.train import TrainConfig, meta_train
from l2o.rules.lstm import LSTMConfig, LSTMRule
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily


def test_plain_settings_and_state_are_unchanged():
    plain = LSTMRule(implementation="torch")
    assert "moments" not in plain.config() and "gradient_input" not in plain.config()
    state = plain.init({"w": torch.zeros(2, 3)})
    assert len(state) == 6 and state.m == () and state.f == ()  # h, c, and empty history fields
    rule = LSTMRule(moments=(0.5, 0.9))
    assert rule.cells[0].input_size == 2 + 3
    assert rule.config()["moments"] == (0.5, 0.9)
    with pytest.raises(ValueError, match="decays in"):
        LSTMConfig(moments=(1.0,))
    with pytest.raises(ValueError, match="needs moments"):
        LSTMConfig(gradient_input=False)


def test_the_moments_are_adams_and_without_the_gradient_the_rule_ignores_the_losss_scale():
    torch.manual_seed(0)
    rule = LSTMRule(moments=(0.9,), gradient_input=False)
    params = {"w": torch.zeros(2, 5)}
    grads = [torch.randn(2, 5) for _ in range(4)]
    state, scaled_state = rule.init(params), rule.init(params)
    m = v = torch.zeros(10)
    with torch.no_grad():
        for t, g in enumerate(grads, 1):
            u, state = rule.update({"w": g}, state)
            u1000, scaled_state = rule.update({"w": 1000 * g}, scaled_state)
            torch.testing.assert_close(u1000["w"], u["w"], rtol=1e-4, atol=1e-6)  # the same step at any scale
            m, v = 0.9 * m + 0.1 * g.flatten(), 0.999 * v + 0.001 * g.flatten() ** 2
    torch.testing.assert_close(state.m[0], m)
    torch.testing.assert_close(state.v[0], v)
    assert state.t[0].tolist() == [4.0] * 10


def test_per_parameter_state_checkpoints_and_meta_training(tmp_path):
    torch.manual_seed(0)
    rule = LSTMRule(moments=(0.5, 0.99))
    params = {"a": torch.randn(3, 4), "b": torch.randn(3)}
    state = rule.init(params)
    with torch.no_grad():
        _, state = rule.update({k: torch.randn_like(v) for k, v in params.items()}, state)
    parts = rule.split_state(state, params)
    assert parts["b"].m[1].shape == (3,) and parts["a"].t[0].shape == (12,)
    joined = rule.join_state(parts, params)
    assert all(torch.equal(x, y) for a, b in zip(joined, state) for x, y in zip(a, b))
    save_rule(tmp_path / "m.safetensors", rule)
    again = load_rule(str(tmp_path / "m.safetensors"))
    assert again.cfg.moments == (0.5, 0.99)
    model = torch.nn.Linear(4, 2)
    opt = LearnedOptimizer(model.parameters(), checkpoint=str(tmp_path / "m.safetensors"))
    model(torch.randn(8, 4)).pow(2).mean().backward()
    opt.step()
    restored = LearnedOptimizer(model.parameters(), checkpoint=str(tmp_path / "m.safetensors"))
    restored.load_state_dict(opt.state_dict())
    cfg = TrainConfig(episodes=3, horizon=10, unroll=5, problems=4, val_every=3, val_problems=4)
    result = meta_train(QuadraticFamily(QuadraticConfig(dim=3)), LSTMRule(moments=(0.9,), output_scale=0.1), cfg,
                        progress=False)
    assert result.state.nan_skips == 0 and result.state.episode == 3


@pytest.mark.parametrize("implementation", ["torch", "fused"])
def test_direct_term_starts_as_adam_and_learns(implementation):
    """With ``direct`` and output_init=0 the untrained rule takes Adam's steps (lr = output_scale); the direct
    weights get meta-gradients, equal on both implementations."""
    from l2o import kernels
    from l2o.rules.baselines import Adam

    if implementation == "fused" and kernels.lstm_step() is None:
        pytest.skip("the fused kernel is not available here")
    torch.manual_seed(0)
    rule = LSTMRule(moments=(0.5, 0.9, 0.99), gradient_input=False, direct=True, output_scale=0.01,
                    output_init=0.0, implementation=implementation)
    assert rule.direct.tolist() == [0.0, 0.0, -1.0, 0.0] and rule.config()["direct"] is True
    assert "direct" not in LSTMRule(moments=(0.9,)).config()
    params = {"w": torch.randn(3, 7)}
    adam = Adam(lr=0.01)
    state, adam_state = rule.init(params), adam.init(params)
    with torch.no_grad():
        for _ in range(5):
            g = {"w": torch.randn(3, 7) * 10}
            u, state = rule.update(g, state)
            ua, adam_state = adam.update(g, adam_state)
            torch.testing.assert_close(u["w"], ua["w"], rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="direct needs moments"):
        LSTMConfig(direct=True)


def test_direct_term_meta_gradients_agree_between_implementations():
    from l2o import kernels

    if kernels.lstm_step() is None:
        pytest.skip("the fused kernel is not available here")
    grads_by = {}
    for implementation in ("torch", "fused"):
        torch.manual_seed(0)
        rule = LSTMRule(moments=(0.9, 0.99), direct=True, output_scale=0.1, implementation=implementation)
        state = rule.init_flat(50)
        total = 0
        for _ in range(3):
            update, state = rule.step_flat(torch.randn(50), state)
            total = total + (update * torch.arange(50)).sum()
        total.backward()
        grads_by[implementation] = [p.grad.clone() for p in rule.parameters()]
    assert grads_by["torch"][-1].abs().sum() > 0  # the direct weights (registered last) learn
    for a, b in zip(*grads_by.values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * float(a.abs().max()))


@pytest.mark.parametrize("implementation", ["torch", "fused"])
def test_correction_scale_multiplies_the_lstm_part_only(implementation):
    """κ scales the LSTM's output W h + b and nothing else: the update is output_scale · (κ · lstm + d · f)."""
    from l2o import kernels

    if implementation == "fused" and kernels.lstm_step() is None:
        pytest.skip("the fused kernel is not available here")
    grad = torch.randn(40)
    parts = {}
    for kappa in (1.0, 0.1):
        torch.manual_seed(0)
        rule = LSTMRule(moments=(0.9, 0.99), gradient_input=False, direct=True, output_scale=0.1, output_init=1.0,
                        correction_scale=kappa, implementation=implementation)
        with torch.no_grad():
            full, _ = rule.step_flat(grad, rule.init_flat(40))
            rule.direct.zero_()
            lstm_only, _ = rule.step_flat(grad, rule.init_flat(40))
        parts[kappa] = (full, lstm_only)
        assert (rule.config().get("correction_scale") == kappa) == (kappa != 1)
    assert parts[1.0][1].abs().max() > 1e-4  # the LSTM part is there to be scaled
    torch.testing.assert_close(parts[0.1][1], 0.1 * parts[1.0][1], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(parts[0.1][0] - parts[0.1][1], parts[1.0][0] - parts[1.0][1], rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="correction_scale"):
        LSTMConfig(correction_scale=0.1)


def test_fixed_direct_term_is_saved_but_not_learned():
    rule = LSTMRule(moments=(0.5, 0.9), gradient_input=False, direct=True, learn_direct=False, output_init=0.0,
                    implementation="torch")
    assert "direct" in rule.state_dict() and all(p is not rule.direct for p in rule.parameters())
    assert rule.direct.tolist() == [0.0, 0.0, -1.0] and rule.config()["learn_direct"] is False
    assert "learn_direct" not in LSTMRule(moments=(0.9,), direct=True).config()
    update, _ = rule.step_flat(torch.randn(30), rule.init_flat(30))
    (update * torch.arange(30)).sum().backward()
    assert rule.out.weight.grad is not None and rule.direct.grad is None
    again = LSTMRule(rule.cfg, implementation="torch")
    with torch.no_grad():
        rule.direct[0] = 0.5
    again.load_state_dict(rule.state_dict())
    assert again.direct.tolist() == [0.5, 0.0, -1.0]
    with pytest.raises(ValueError, match="learn_direct"):
        LSTMConfig(moments=(0.9,), learn_direct=False)


def test_scale_correction_starts_as_adam_is_bounded_and_agrees_between_implementations():
    """correction="scale": update = output_scale · exp(κ tanh(W h + b)) · d · f. Untrained (output layer at zero) it
    is Adam's step; whatever the LSTM's output, within e^±κ of the direct term's step; both implementations give
    the same steps and meta-gradients."""
    from l2o import kernels
    from l2o.rules.baselines import Adam

    implementations = ["torch"] + (["fused"] if kernels.lstm_step() is not None else [])
    cfg = LSTMConfig(moments=(0.5, 0.9, 0.99), gradient_input=False, direct=True, learn_direct=False,
                     correction="scale", correction_scale=2.0, output_scale=0.01, output_init=0.0)
    params = {"w": torch.randn(4, 5)}
    grads = [{"w": torch.randn(4, 5) * 3} for _ in range(4)]
    for implementation in implementations:
        rule, adam = LSTMRule(cfg, implementation=implementation), Adam(lr=0.01)
        state, adam_state = rule.init(params), adam.init(params)
        with torch.no_grad():
            for g in grads:
                u, state = rule.update(g, state)
                ua, adam_state = adam.update(g, adam_state)
                torch.testing.assert_close(u["w"], ua["w"], rtol=1e-5, atol=1e-8)
    saturated = LSTMRule(replace(cfg, output_init=1.0), implementation="torch")
    with torch.no_grad():
        saturated.out.bias.fill_(50.0)  # a huge output: the factor is e^κ at most
        g, state = torch.randn(20), saturated.init_flat(20)
        feats, _ = saturated._moment_features(g, state)
        update, _ = saturated.step_flat(g, state)
    torch.testing.assert_close(update, 0.01 * (feats @ saturated.direct) * math.exp(2.0), rtol=1e-5, atol=1e-9)
    meta = {}
    for implementation in implementations:
        torch.manual_seed(1)
        rule = LSTMRule(replace(cfg, output_init=1.0), implementation=implementation)
        state, total = rule.init_flat(20), 0
        for g in [torch.randn(20, generator=torch.Generator().manual_seed(k)) for k in range(3)]:
            update, state = rule.step_flat(g, state)
            total = total + (update * torch.arange(20)).sum()
        total.backward()
        meta[implementation] = [p.grad.clone() for p in rule.parameters()]
    assert meta["torch"][-1].abs().sum() > 0  # the output layer learns
    if len(meta) == 2:
        for a, b in zip(*meta.values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * float(a.abs().max()) + 1e-12)
    assert LSTMRule(cfg).config()["correction"] == "scale" and "correction" not in LSTMRule(moments=(0.9,)).config()
    with pytest.raises(ValueError, match="correction"):
        LSTMConfig(correction="scale")


def test_second_moment_decay_and_a_correction_that_fades_with_the_step_count():
    """second_moment is Adam's β2 for the moment features (the untrained rule is Adam with that β2);
    correction_decay τ fades the LSTM's factor: exp(κ tanh(·) τ/(τ+t)), so a saturated LSTM multiplies the step
    by e^κ at t = 0+ and by e^(κ τ/(τ+t)) later, in both implementations."""
    from l2o import kernels
    from l2o.rules.baselines import Adam

    implementations = ["torch"] + (["fused"] if kernels.lstm_step() is not None else [])
    cfg = LSTMConfig(moments=(0.5, 0.9), gradient_input=False, direct=True, learn_direct=False, correction="scale",
                     correction_scale=2.0, output_scale=0.01, output_init=0.0, second_moment=0.9999)
    params = {"w": torch.randn(3, 4)}
    grads = [{"w": torch.randn(3, 4) * (1 if k < 1000 else 10)} for k in range(1020)]  # late growth: β2 matters
    for implementation in implementations:
        rule, adam, plain = LSTMRule(cfg, implementation=implementation), Adam(0.01, beta2=0.9999), Adam(0.01)
        state, a_state, p_state = rule.init(params), adam.init(params), plain.init(params)
        with torch.no_grad():
            for g in grads:
                u, state = rule.update(g, state)
                ua, a_state = adam.update(g, a_state)
                up, p_state = plain.update(g, p_state)
        # the rule's bias correction 1 − β2^t is computed in float32 (t is a tensor): ~1e-4 relative at β2 = 0.9999
        torch.testing.assert_close(u["w"], ua["w"], rtol=3e-4, atol=1e-8)
        assert ((u["w"] - up["w"]) / up["w"]).abs().max() > 0.01  # β2 = 0.999 differs by more than 1%
    for implementation in implementations:
        fading = LSTMRule(replace(cfg, output_init=1.0, correction_decay=10.0), implementation=implementation)
        with torch.no_grad():
            fading.out.bias.fill_(50.0)  # saturated: tanh = 1
            g, state = torch.randn(6), fading.init_flat(6)
            for t in range(1, 31):
                feats, _ = fading._moment_features(g, state)
                update, state = fading.step_flat(g, state)
                if t in (1, 30):
                    torch.testing.assert_close(update, 0.01 * (feats @ fading.direct) * math.exp(2.0 * 10 / (10 + t)),
                                               rtol=1e-5, atol=1e-9)
    eps = LSTMRule(replace(cfg, second_moment=0.999, moment_eps=1e-3), implementation="torch")
    adam, state, a_state = Adam(0.01, eps=1e-3), eps.init(params), Adam(0.01).init(params)
    with torch.no_grad():
        for g in grads[:3]:
            u, state = eps.update({"w": g["w"] * 1e-3}, state)  # √v̂ near ε: the two differ unless ε is used
            ua, a_state = adam.update({"w": g["w"] * 1e-3}, a_state)
    torch.testing.assert_close(u["w"], ua["w"], rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="moment_eps"):
        LSTMConfig(moment_eps=1e-3)
    assert LSTMRule(cfg).config()["second_moment"] == 0.9999 and "second_moment" not in LSTMRule(moments=(0.9,)).config()
    with pytest.raises(ValueError, match="second_moment"):
        LSTMConfig(second_moment=0.99)
    with pytest.raises(ValueError, match="correction_decay"):
        LSTMConfig(moments=(0.9,), direct=True, correction_decay=5.0)


def test_second_order_meta_gradients_are_finite_where_a_coordinate_has_no_gradient():
    """√v̂ is never differentiated at v = 0: with create_graph a coordinate whose gradient is zero would give 0 · ∞."""
    torch.manual_seed(0)
    rule = LSTMRule(LSTMConfig(moments=(0.9,), gradient_input=False, direct=True, correction="scale",
                               output_scale=0.01, output_init=1.0), implementation="torch")
    theta = {"w": torch.tensor([1.0, -2.0, 3.0], requires_grad=True)}
    state, total = rule.init(theta), 0
    x = torch.tensor([1.0, 2.0, 0.0])  # an input that is always zero (as MNIST's border pixels): its weight's
    for _ in range(3):                   # gradient is 0 · (something that depends on θ)
        loss = ((x * theta["w"]).sum() - 1) ** 2
        (g,) = torch.autograd.grad(loss, [theta["w"]], create_graph=True)
        update, state = rule.update({"w": g}, state)
        theta = {"w": theta["w"] + update["w"]}
        total = total + ((x * theta["w"]).sum() - 1) ** 2
    total.backward()
    grads = [p.grad for p in rule.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_agreement_input_is_the_sign_of_gradient_times_last_momentum_in_both_implementations():
    """agreement: one more input, sign(∇_t · m_t−1) at the shortest decay, before the moment features (so the
    direct term reads the same columns); the implementations agree on steps and meta-gradients; the config
    round-trips through a checkpoint and is left out of plain rules' configs."""
    from l2o import kernels

    cfg = LSTMConfig(moments=(0.9, 0.5), gradient_input=False, direct=True, learn_direct=False, correction="scale",
                     correction_scale=2.0, output_scale=0.01, output_init=1.0, agreement=True)
    rule = LSTMRule(cfg, implementation="torch")
    assert rule.cells[0].input_size == 1 + 3 and cfg.input_size == 4
    g0, g1 = torch.tensor([1.0, -2.0, 3.0, 0.5]), torch.tensor([2.0, -1.0, -3.0, 0.0])
    state = rule.init_flat(4)
    x, _ = rule._features(g0, state)
    assert x[:, 0].tolist() == [0.0] * 4  # no history at the first step
    with torch.no_grad():
        _, state = rule.step_flat(g0, state)
    x, _ = rule._features(g1, state)
    assert x[:, 0].tolist() == [1.0, 1.0, -1.0, 0.0]  # agrees, agrees, turns, no gradient
    assert state.m[1].tolist() == (0.5 * g0).tolist()  # the shortest decay's momentum is the one compared
    implementations = ["torch"] + (["fused"] if kernels.lstm_step() is not None else [])
    steps, meta = {}, {}
    for implementation in implementations:
        torch.manual_seed(3)
        rule = LSTMRule(cfg, implementation=implementation)
        state, total, us = rule.init_flat(20), 0, []
        for k in range(4):
            g = torch.randn(20, generator=torch.Generator().manual_seed(k))
            update, state = rule.step_flat(g, state)
            us.append(update.detach())
            total = total + (update * torch.arange(20)).sum()
        total.backward()
        steps[implementation] = torch.stack(us)
        meta[implementation] = [p.grad.clone() for p in rule.parameters()]
    assert meta["torch"][0].abs().sum() > 0
    if len(meta) == 2:
        torch.testing.assert_close(steps["torch"], steps["fused"], rtol=1e-5, atol=1e-8)
        for a, b in zip(*meta.values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * float(a.abs().max()) + 1e-12)
    assert rule.config()["agreement"] is True and "agreement" not in LSTMRule(moments=(0.9,)).config()
    with pytest.raises(ValueError, match="agreement needs moments"):
        LSTMConfig(agreement=True)


def test_agreement_factor_accumulates_delta_bar_deltas_factor_in_the_state():
    """agreement_factor (up, down): an input log₁₀ f with f × up where ∇_t and m_t−1 agree in sign, × down where
    they turn, within [0.1, 10]; kept in the state (per parameter too), the same in both implementations."""
    from l2o import kernels

    cfg = LSTMConfig(moments=(0.5, 0.9), gradient_input=False, direct=True, learn_direct=False, correction="scale",
                     output_scale=0.01, output_init=1.0, agreement=True, agreement_factor=(2.0, 0.5))
    assert cfg.input_size == 1 + 1 + 3
    gs = [torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])] + \
        [torch.tensor([1.0, 1.0, 1.0])] * 4
    factors = {}
    for implementation in ["torch"] + (["fused"] if kernels.lstm_step() is not None else []):
        rule, seen = LSTMRule(cfg, implementation=implementation), []
        state = rule.init_flat(3)
        with torch.no_grad():
            for g in gs:
                seen.append(rule._features(g, state)[0][:, 1].clone())
                _, state = rule.step_flat(g, state)
        factors[implementation] = state.f[0]
        assert [round(float(x), 6) for x in seen[1]] == [round(math.log10(2), 6), -round(math.log10(2), 6), 0.0]
        # m at decay 0.5 is (0.5, −0.25, 0.375, …) on the second coordinate: it turns twice (0.5 · 0.5), then agrees
        assert seen[2].tolist() == pytest.approx([math.log10(4), math.log10(0.25), 0.0])  # the third: no gradient, 1
    assert factors["torch"].tolist() == [10.0, 4.0, 10.0]  # 2⁶ capped at 10; 0.25 · 2⁴; 2⁴ capped
    if "fused" in factors:
        assert torch.equal(factors["torch"], factors["fused"])
    with pytest.raises(ValueError, match="up > 1 > down"):
        LSTMConfig(moments=(0.9,), agreement_factor=(0.5, 2.0))
    assert LSTMRule(cfg).config()["agreement_factor"] == (2.0, 0.5)
