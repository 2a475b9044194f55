"""SpikeCut: a rule's steps halved per tensor where its gradient spikes; exact cuts, none while the gradient is steady
or during the warm-up, the cool-down between cuts; and, for it and Plateau, one checkpoint with a nested config,
LearnedOptimizer's per-parameter state and its exact resume."""

import pytest
import torch

from l2o import LearnedOptimizer, checkpoint
from l2o.meta import unroll
from l2o.rules import SGD, Adam, LSTMRule, Plateau, SpikeCut, make_rule
from l2o.tasks.mlp import MLPConfig, MLPFamily, synthetic_dataset
from test_plateau import _steps  # a rule's updates and final state along a list of gradients


def _spikes(at, n, size=10.0):
    """n one-coordinate gradients of 1, with ``size`` at the (1-based) steps in ``at``."""
    return [{"w": torch.tensor([[size if t in at else 1.0]])} for t in range(1, n + 1)]


def test_a_spike_halves_the_steps_from_its_own_step_on_and_the_cool_down_skips_the_next():
    # fast 0: the fast average is this step's squared gradient (100 at a spike); the slow one is about 2.3 at step 151
    rule = SpikeCut(SGD(lr=1.0), threshold=10.0, warmup=100, cooldown=50, fast=0.0, slow=0.99)
    updates, state = _steps(rule, _spikes({151, 160, 210}, 220))
    steps = [-u["w"].item() for u in updates]
    assert steps[:150] == [1.0] * 150
    assert steps[150] == pytest.approx(5.0) and steps[151:159] == pytest.approx([0.5] * 8)
    assert steps[159] == pytest.approx(5.0)  # step 160: 9 steps after the cut, within the cool-down: no second cut
    assert steps[209] == pytest.approx(2.5) and steps[219] == pytest.approx(0.25)  # step 210: a second cut
    assert rule.cuts(state)["w"].tolist() == [2] and rule.rates(state)["w"].item() == pytest.approx(0.25)


def test_no_cut_during_the_warm_up_or_while_the_gradient_is_steady_and_the_steps_are_the_rule_s():
    rule = SpikeCut(Adam(lr=0.01), warmup=100, fast=0.0, slow=0.99)
    grads = _spikes({50}, 300)  # a spike, but within the warm-up
    wrapped, state = _steps(rule, grads)
    plain, _ = _steps(Adam(lr=0.01), grads)
    assert all(torch.equal(a["w"], b["w"]) for a, b in zip(wrapped, plain))
    assert rule.cuts(state)["w"].tolist() == [0]
    # a gradient that shrinks steadily (as while the loss falls) is never cut, whatever the defaults' warm-up
    grads = [{"w": torch.full((2, 3), 0.999**t)} for t in range(2000)]
    _, state = _steps(SpikeCut(SGD(lr=1.0)), grads)
    assert SpikeCut(SGD(lr=1.0)).cuts(state)["w"].tolist() == [0, 0]


def test_each_tensor_and_problem_is_cut_on_its_own():
    rule = SpikeCut(SGD(lr=1.0), warmup=100, cooldown=50, fast=0.0, slow=0.99)
    ones = torch.ones(2, 1)
    grads = [{"a": ones.clone(), "b": ones.clone()} for _ in range(160)]
    grads[150]["a"][1] = 10.0  # problem 1 of "a" spikes; problem 0 and both problems of "b" stay steady
    _, state = _steps(rule, grads)
    assert rule.cuts(state)["a"].tolist() == [0, 1] and rule.cuts(state)["b"].tolist() == [0, 0]


def test_in_place_updates_keep_the_controller_s_buffers_and_match_whatever_the_gradients_order():
    rule = SpikeCut(SGD(lr=1.0), warmup=100, cooldown=50, fast=0.0, slow=0.99)
    grads = [{"b": torch.ones(1, 1), "a": g["w"]} for g in _spikes({151}, 160)]
    plain, _ = _steps(rule, grads)
    state = rule.init({"a": torch.zeros(1, 1), "b": torch.zeros(1, 1)})
    buffers = state.log_rate["a"]
    for grads_t, expected in zip(grads, plain):
        u, state = rule.update(grads_t, state, inplace=True)
        assert all(torch.equal(u[k], expected[k]) for k in u)
    assert state.log_rate["a"] is buffers and rule.cuts(state) == {"a": torch.tensor([1]), "b": torch.tensor([0])}


def test_bad_settings_are_refused():
    for kw, match in [({"threshold": 1.0}, "threshold"), ({"factor": 1.0}, "factor"), ({"warmup": -1}, "warmup"),
                      ({"cooldown": 2.5}, "cooldown"), ({"fast": 0.999, "slow": 0.9}, "decays"),
                      ({"slow": 1.0}, "decays")]:
        with pytest.raises(ValueError, match=match):
            SpikeCut(SGD(lr=1.0), **kw)


WRAPPERS = pytest.mark.parametrize(
    "wrap", [lambda r: Plateau(r, window=3, ratio=0.9, patience=1),
             lambda r: SpikeCut(r, threshold=1.01, warmup=3, cooldown=2, fast=0.0, slow=0.5)],
    ids=["plateau", "spike_cut"])


@WRAPPERS
def test_checkpoint_round_trip_and_unroll(tmp_path, wrap):
    torch.manual_seed(0)
    rule = wrap(LSTMRule(output_init=1.0))
    checkpoint.save_rule(tmp_path / "s.safetensors", rule)
    loaded = checkpoint.load_rule(tmp_path / "s.safetensors")
    assert loaded.config() == rule.config() and loaded.config()["rule"]["name"] == "lstm"
    assert type(make_rule(**rule.config())) is type(rule)
    task = MLPFamily(synthetic_dataset(n=256), MLPConfig(hidden=(4,))).sample("test", 0, 2)
    with torch.no_grad():
        a, b = unroll(rule, task, 12), unroll(loaded, task, 12)
    assert torch.equal(a.losses, b.losses)


@WRAPPERS
def test_learned_optimizer_keeps_the_controller_per_parameter_and_resumes_exactly(tmp_path, wrap):
    torch.manual_seed(0)
    rule = wrap(LSTMRule(output_init=1.0))
    checkpoint.save_rule(tmp_path / "p.safetensors", rule)
    x, y = torch.randn(32, 3), torch.randn(32, 1)

    def run(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = LearnedOptimizer(model.named_parameters(), checkpoint=tmp_path / "p.safetensors")
    run(model, opt, 7)
    saved = {"model": {k: v.clone() for k, v in model.state_dict().items()}, "opt": opt.state_dict()}
    torch.save(saved, tmp_path / "ck.pt")
    run(model, opt, 8)
    loaded = torch.load(tmp_path / "ck.pt", weights_only=True)
    model2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    model2.load_state_dict(loaded["model"])
    opt2 = LearnedOptimizer(model2.named_parameters(), checkpoint=tmp_path / "p.safetensors")
    opt2.load_state_dict(loaded["opt"])
    run(model2, opt2, 8)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    # each parameter's state holds its own count (15 steps) and factor; some parameter was cut
    states = list(opt.state_dict()["state"].values())
    assert [s["rule_state"][-5].item() for s in states] == [15.0] * 4  # the count, 5th from the end
    assert any(s["rule_state"][-1].item() < 0 for s in states)
