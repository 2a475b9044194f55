"""SignAgreement: a rule's steps × the delta-bar-delta factor (l2o.rules.agreement), and the LSTM input that reads
the same factor, so that a learned rule can imitate it."""

import pytest
import torch

from l2o import LearnedOptimizer
from l2o.checkpoint import load_rule, save_rule
from l2o.meta.train import TrainConfig
from l2o.meta.unroll import unroll
from l2o.rules import Adam, LSTMConfig, LSTMRule, SignAgreement, make_rule
from l2o.rules.baselines import from_spec
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily


def test_power_zero_is_the_wrapped_rule_and_the_factor_follows_the_signs():
    task = QuadraticFamily(QuadraticConfig(dim=5)).sample("train", 0, 3)
    assert torch.equal(unroll(SignAgreement(Adam(lr=0.1), power=0.0), task, 20).losses,
                       unroll(Adam(lr=0.1), task, 20).losses)
    rule = SignAgreement(Adam(lr=0.1), up=2.0, down=0.5, power=1.0)
    params = {"w": torch.zeros(1, 3)}
    state = rule.init(params)
    adam, adam_state = Adam(lr=0.1), Adam(lr=0.1).init(params)
    # m at decay 0.5 before each step: 0, (0.5, −0.5, 0.5), (0.75, 0.75, −0.25): no history, then agree / turn / turn
    expected = [[1, 1, 1], [2, 0.5, 0.5], [4, 0.25, 0.25]]
    for g, f in zip([[1.0, -1.0, 1.0], [1.0, 2.0, -1.0], [1.0, -1.0, 1.0]], expected):
        g = {"w": torch.tensor([g])}
        u, state = rule.update(g, state)
        ua, adam_state = adam.update(g, adam_state)
        assert state.f["w"][0].tolist() == f
        torch.testing.assert_close(u["w"], ua["w"] * torch.tensor([f]))
    last = SignAgreement(Adam(lr=0.1), up=2.0, down=0.5, decay=0.0)  # each gradient against the last one
    state = last.init(params)
    for g in [[1.0, -1.0, 1.0], [1.0, 2.0, -1.0], [1.0, -1.0, -1.0]]:
        _, state = last.update({"w": torch.tensor([g])}, state)
    assert state.f["w"][0].tolist() == [4, 0.25, 1]  # agree twice; turn twice; turn, then agree
    with pytest.raises(ValueError, match="decay must be in"):
        SignAgreement(Adam(lr=0.1), decay=1.0)


def test_the_lstm_reads_the_same_factor_the_rule_applies():
    """The LSTM's agreement_factor input is log₁₀ of SignAgreement's f on the same gradients."""
    lstm = LSTMRule(LSTMConfig(moments=(0.5, 0.9), gradient_input=False, agreement_factor=(1.2, 0.5)),
                    implementation="torch")
    rule = SignAgreement(Adam(lr=0.1))
    params = {"w": torch.zeros(2, 6)}
    state, teacher = lstm.init(params), rule.init(params)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(12):
            g = {"w": torch.randn(2, 6, generator=gen)}
            x, _ = lstm._features(g["w"].reshape(-1), state)
            _, teacher = rule.update(g, teacher)
            torch.testing.assert_close(x[:, 0], teacher.f["w"].reshape(-1).log10())
            _, state = lstm.update(g, state)


def test_specs_checkpoints_and_per_parameter_state(tmp_path):
    rule = from_spec("adam:0.316+agreement:0.7")
    assert isinstance(rule, SignAgreement) and rule.power == 0.7 and rule.rule.lr == 0.316
    for bad in ("adam:0.3+agreement", "adam:0.3+agreement:0", "adam:0.3+plateau:1", "adam:x+agreement:1"):
        assert from_spec(bad) is None
    assert TrainConfig(imitate="adam:0.316+agreement:0.7").imitate == "adam:0.316+agreement:0.7"
    with pytest.raises(ValueError, match="agreement:POWER"):
        TrainConfig(imitate="adam:0.316+agreement:-1")
    with pytest.raises(ValueError, match="up > 1 > down > 0"):
        SignAgreement(Adam(lr=0.1), up=0.9)
    wrapped = SignAgreement(LSTMRule(hidden_size=20), power=0.5)
    again = make_rule(**wrapped.config())
    assert again.config() == wrapped.config() and isinstance(again.rule, LSTMRule)
    save_rule(tmp_path / "a.safetensors", wrapped)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    loaded = load_rule(str(tmp_path / "a.safetensors"))
    assert loaded.config() == wrapped.config()
    opt = LearnedOptimizer(model.parameters(), checkpoint=str(tmp_path / "a.safetensors"))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
