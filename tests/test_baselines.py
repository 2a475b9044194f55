"""Our pure-function baselines against torch.optim, step for step, in float64."""

import pytest
import torch

from l2o.meta import unroll
from l2o.rules import NAG, SGD, Adam, RMSprop, apply_updates, make_rule

CASES = [
    (SGD(lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    (NAG(lr=0.02), lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True)),
    (NAG(lr=0.01, momentum=0.5), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.5, nesterov=True)),
    (RMSprop(lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    (Adam(lr=0.1), lambda p: torch.optim.Adam(p, lr=0.1)),
    (Adam(lr=0.01, beta1=0.5, beta2=0.9, eps=1e-6), lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.9), eps=1e-6)),
]


def _loss(params):  # a non-quadratic function of two tensors, so every state variable matters
    a, b = params["a"], params["b"]
    return (a.sin() * 3).sum() + ((b @ b.T - 1) ** 2).sum() + (a[:2] * b[0, :2]).sum() ** 2


@pytest.mark.parametrize("rule, make_torch", CASES, ids=lambda c: getattr(c, "name", ""))
def test_trajectory_matches_torch_optim(rule, make_torch):
    g = torch.Generator().manual_seed(0)
    start = {"a": torch.randn(3, generator=g, dtype=torch.float64),
             "b": torch.randn(2, 3, generator=g, dtype=torch.float64)}
    ref = {k: v.clone().requires_grad_() for k, v in start.items()}
    opt = make_torch(list(ref.values()))
    params, state = dict(start), rule.init(start)
    for _ in range(50):
        p = {k: v.detach().requires_grad_() for k, v in params.items()}
        grads = dict(zip(p, torch.autograd.grad(_loss(p), list(p.values()))))
        updates, state = rule.update(grads, state)
        params = apply_updates(params, updates)
        opt.zero_grad()
        _loss(ref).backward()
        opt.step()
        for k in params:
            assert torch.max(torch.abs(params[k] - ref[k].detach())) < 1e-10


def test_update_is_pure():
    grads = {"w": torch.ones(3)}
    for name in ("sgd", "nag", "rmsprop", "adam"):
        rule = make_rule(name, lr=0.1)
        state = rule.init(grads)
        before = [t.clone() for t in torch.utils._pytree.tree_leaves(state) if isinstance(t, torch.Tensor)]
        rule.update(grads, state)
        after = [t for t in torch.utils._pytree.tree_leaves(state) if isinstance(t, torch.Tensor)]
        assert all(torch.equal(x, y) for x, y in zip(before, after))
        assert torch.equal(grads["w"], torch.ones(3))


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="learning rate must be a positive finite number"):
        SGD(lr=lr)


def test_unknown_rule_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown update rule 'adagrad'; available: adam, agreement, lbfgs, lstm, nag, ntm, plateau, rmsprop, routed, sgd, spike_cut"):
        make_rule("adagrad", lr=1.0)


def test_lbfgs_matches_torch_optim_lbfgs_step_for_step_in_float64():
    """Each problem of a vectorised batch follows torch.optim.LBFGS (no line search, max_iter 1, history 10)."""
    from l2o.rules import LBFGS
    from l2o.tasks import QuadraticFamily

    task = QuadraticFamily(dtype="float64").sample("test", 0, 3)
    ours = unroll(LBFGS(lr=0.5), task, 15).params["theta"]
    for b in range(3):
        theta = torch.nn.Parameter(task.theta0[b].clone())
        opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=1, history_size=10, line_search_fn=None,
                                tolerance_grad=-1.0, tolerance_change=0.0)
        W, y = task.W[b], task.y[b]

        def closure():
            opt.zero_grad()
            loss = ((W @ theta - y) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(15):
            opt.step(closure)
        torch.testing.assert_close(theta.detach(), ours[b], rtol=1e-10, atol=1e-12)


def test_lbfgs_solves_a_quadratic_far_faster_than_sgd():
    from l2o.rules import LBFGS
    from l2o.tasks import QuadraticFamily

    task = QuadraticFamily(dtype="float64").sample("test", 1, 16)
    gap = lambda rule: float((unroll(rule, task, 100).losses[-1] - task.solution_loss()).mean())  # noqa: E731
    assert gap(LBFGS(lr=1.0)) < 1e-9 and gap(make_rule("sgd", lr=0.01)) > 0.1


def test_a_scaled_rule_multiplies_the_updates_only():
    from l2o.rules.baselines import Adam
    from l2o.rules.scaled import ScaledRule

    params = {"w": torch.randn(2, 5)}
    grads = {"w": torch.randn(2, 5)}
    plain, scaled = Adam(lr=0.1), ScaledRule(Adam(lr=0.1), 2.5)
    (u, s1), (v, s2) = plain.update(grads, plain.init(params)), scaled.update(grads, scaled.init(params))
    assert torch.allclose(v["w"], 2.5 * u["w"]) and repr(s1) == repr(s2)  # the same state: the factor never reaches it
    assert scaled.config() == {"name": "scaled", "factor": 2.5, "rule": plain.config()}
    with pytest.raises(ValueError, match="factor must be > 0"):
        ScaledRule(plain, 0)
