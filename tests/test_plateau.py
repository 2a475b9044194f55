"""Plateau: a rule's steps cut per tensor where the gradient stops shrinking; exact cuts, no cut while the gradient
shrinks, the reference's setting (its checkpoint round trip, LearnedOptimizer's per-parameter state and its exact
resume are tested, for it and SpikeCut, in test_spike_cut.py)."""

import pytest
import torch

from l2o import checkpoint
from l2o.rules import SGD, Adam, Plateau, make_rule


def _steps(rule, grads_per_step):
    state = rule.init({k: torch.zeros_like(g) for k, g in grads_per_step[0].items()})
    out = []
    for grads in grads_per_step:
        u, state = rule.update(grads, state)
        out.append(u)
    return out, state


def test_a_constant_gradient_is_cut_after_patience_checks():
    # window 2: checks at steps 2, 4, 6, ...; step 2 sets the least value; steps 4 and 6 see no fall (patience 2),
    # so the steps from step 6 on are halved, and again two checks later (step 10)
    rule = Plateau(SGD(lr=1.0), window=2, ratio=0.8, patience=2, factor=0.5)
    g = {"w": torch.ones(1, 3)}
    updates, state = _steps(rule, [g] * 11)
    assert [u["w"][0, 0].item() for u in updates] == pytest.approx([-1.0] * 5 + [-0.5] * 4 + [-0.25] * 2)
    assert rule.rates(state)["w"].item() == pytest.approx(0.25)


def test_a_shrinking_gradient_is_never_cut_and_the_steps_are_the_rule_s():
    rule = Plateau(Adam(lr=0.01), window=3, ratio=0.8, patience=1, beta=0.0)  # beta 0: s is this step's
    grads = [{"w": torch.full((2, 4), 0.7**t), "b": torch.full((2, 1), 0.6**t)} for t in range(30)]
    wrapped, state = _steps(rule, grads)
    plain, _ = _steps(Adam(lr=0.01), grads)
    for a, b in zip(wrapped, plain):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(bool((r == 1).all()) for r in rule.rates(state).values())


def test_each_tensor_and_problem_is_cut_on_its_own():
    rule = Plateau(SGD(lr=1.0), window=1, ratio=0.8, patience=1, beta=0.0)
    # problem 0 of "a" stalls, problem 1 of "a" and both problems of "b" shrink fast
    grads = [{"a": torch.tensor([[1.0], [0.5**t]]), "b": torch.full((2, 1), 0.5**t)} for t in range(4)]
    _, state = _steps(rule, grads)
    rates = rule.rates(state)
    assert rates["a"].tolist() == pytest.approx([0.125, 1.0]) and rates["b"].tolist() == [1.0, 1.0]


def test_in_place_updates_keep_the_controller_s_buffers_and_match():
    rule = Plateau(SGD(lr=1.0), window=1, ratio=0.8, patience=1, beta=0.0)
    grads = [{"a": torch.tensor([[1.0], [0.5**t]])} for t in range(4)]
    plain, _ = _steps(rule, grads)
    state = rule.init({"a": torch.zeros(2, 1)})
    buffers = state.log_rate["a"]
    for grads_t, expected in zip(grads, plain):
        u, state = rule.update(grads_t, state, inplace=True)
        assert torch.equal(u["a"], expected["a"])
    assert state.log_rate["a"] is buffers and rule.rates(state)["a"].tolist() == pytest.approx([0.125, 1.0])


def test_in_place_updates_match_buffers_by_name_whatever_the_gradients_order():
    rule = Plateau(SGD(lr=1.0), window=1, ratio=0.8, patience=1, beta=0.0)
    state = rule.init({"a": torch.zeros(1, 1), "b": torch.zeros(1, 1)})
    for t in range(4):  # "a" stalls and is cut; "b" keeps shrinking; the gradients come in the other order
        _, state = rule.update({"b": torch.tensor([[0.5**t]]), "a": torch.tensor([[1.0]])}, state, inplace=True)
    assert rule.rates(state)["a"].tolist() == pytest.approx([0.125]) and rule.rates(state)["b"].tolist() == [1.0]


def test_a_spike_cuts_against_the_least_value_and_not_against_the_last_check():
    # the gradient halves every step, jumps back up once (step 5) and halves again: against its least value the two
    # checks after the spike are stalled (a cut); against the last check only the spike's own check is
    g = [1.0, 0.5, 0.25, 0.125, 1.0, 0.5, 0.25, 0.125, 0.0625]
    grads = [{"w": torch.tensor([[v]])} for v in g]
    rates = {}
    for reference in ("least", "last"):
        rule = Plateau(SGD(lr=1.0), window=1, ratio=0.8, patience=2, beta=0.0, reference=reference)
        _, state = _steps(rule, grads)
        rates[reference] = rule.rates(state)["w"].item()
    assert rates == {"least": pytest.approx(0.5), "last": 1.0}
    # a gradient that does not shrink is cut either way
    rule = Plateau(SGD(lr=1.0), window=1, ratio=0.8, patience=2, beta=0.0, reference="last")
    _, state = _steps(rule, [{"w": torch.ones(1, 1)}] * 5)
    assert rule.rates(state)["w"].item() == pytest.approx(0.25)


def test_bad_settings_are_refused():
    for kw, match in [({"window": 0}, "window"), ({"ratio": 1.5}, "ratio"), ({"patience": 0}, "patience"),
                      ({"factor": 1.0}, "factor"), ({"beta": 1.0}, "beta"), ({"reference": "min"}, "reference")]:
        with pytest.raises(ValueError, match=match):
            Plateau(SGD(lr=1.0), **kw)


def test_the_reference_round_trips_and_the_default_keeps_the_settings_saved_before_it(tmp_path):
    rule = Plateau(SGD(lr=1.0), reference="last")
    checkpoint.save_rule(tmp_path / "p.safetensors", rule)
    assert checkpoint.load_rule(tmp_path / "p.safetensors").reference == "last"
    # results are cached by the rule's settings: the default leaves them as they were before the option existed
    assert set(Plateau(SGD(lr=1.0)).config()) == {"name", "rule", "window", "ratio", "patience", "factor", "beta"}
    assert make_rule(**Plateau(SGD(lr=1.0)).config()).reference == "least"
