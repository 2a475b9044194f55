"""The meta-gradient: against finite differences, with and without second derivatives, and truncation."""

import torch

from l2o.meta import unroll
from l2o.rules import LSTMRule, apply_updates, detach
from l2o.tasks import QuadraticFamily


def _setup():
    torch.manual_seed(0)
    rule = LSTMRule(preprocess=False, output_scale=0.5, output_init=1.0).double()
    task = QuadraticFamily(dim=3, dtype="float64").sample("train", 0, 2)
    return rule, task


def _meta_loss(rule, task, second_order):
    return unroll(rule, task, 3, meta=True, second_order=second_order).losses[1:].mean(-1).sum()


def _replay_loss(rule, task, frozen_grads):
    """Σ f(θ_t) when the rule is fed the given (frozen) gradients instead of its own."""
    params = task.init_params()
    state = rule.init(params)
    total = 0.0
    for g in frozen_grads:
        updates, state = rule.update(g, state)
        params = apply_updates(params, updates)
        total = total + task.loss(params).mean()
    return total


def _fd(fn, idx, eps=1e-6):
    out = []
    for p, i in idx:
        flat = p.data.view(-1)
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(fn())
        flat[i] = old - eps
        minus = float(fn())
        flat[i] = old
        out.append((plus - minus) / (2 * eps))
    return torch.tensor(out, dtype=torch.float64)


def _coords(rule, per_tensor=4):
    gen = torch.Generator().manual_seed(0)
    idx = []
    for p in rule.parameters():
        for i in torch.randint(0, p.numel(), (per_tensor,), generator=gen).tolist():
            idx.append((p, i))
    return idx


def _autograd(rule, loss, idx):
    grads = torch.autograd.grad(loss, list(rule.parameters()))
    lookup = {id(p): g for p, g in zip(rule.parameters(), grads)}
    return torch.tensor([lookup[id(p)].view(-1)[i].item() for p, i in idx], dtype=torch.float64)


def test_second_order_meta_gradient_matches_finite_differences():
    rule, task = _setup()
    idx = _coords(rule)
    analytic = _autograd(rule, _meta_loss(rule, task, True), idx)
    with torch.no_grad():
        numeric = _fd(lambda: unroll(rule, task, 3).losses[1:].mean(-1).sum(), idx)
    assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-8), (analytic, numeric)
    assert analytic.abs().max() > 1e-3  # a real gradient, not zeros


def test_first_order_meta_gradient_treats_gradients_as_constants():
    """Dropping second derivatives = the exact derivative of the loss with the gradients frozen."""
    rule, task = _setup()
    idx = _coords(rule)
    first = _autograd(rule, _meta_loss(rule, task, False), idx)
    second = _autograd(rule, _meta_loss(rule, task, True), idx)
    # the gradients the rule saw on its own trajectory, frozen
    frozen, params, state = [], task.init_params(), rule.init(task.init_params())
    with torch.no_grad():
        for _ in range(3):
            p = {k: v.detach().requires_grad_() for k, v in params.items()}
            with torch.enable_grad():
                g = dict(zip(p, torch.autograd.grad(task.loss(p).sum(), list(p.values()))))
            frozen.append(g)
            updates, state = rule.update(g, state)
            params = apply_updates(params, updates)
        numeric = _fd(lambda: _replay_loss(rule, task, frozen), idx)
    assert torch.allclose(first, numeric, rtol=1e-5, atol=1e-8), (first, numeric)
    # and the flag matters: the two meta-gradients differ
    assert (first - second).abs().max() > 1e-3 * second.abs().max()


def test_no_gradient_crosses_a_truncation_boundary():
    rule, task = _setup()
    first = unroll(rule, task, 3, meta=True)
    fired = []
    first.params["theta"].register_hook(lambda g: fired.append(1))
    params, state = detach(first.params), detach(first.state)
    second = unroll(rule, task, 3, params=params, state=state, start=3, meta=True)
    second.losses[1:].sum().backward()
    assert fired == []
    # control: without the detach, the same hook does fire
    third = unroll(rule, task, 3, params=first.params, state=first.state, start=3, meta=True)
    third.losses[1:].sum().backward()
    assert fired


def test_unroll_without_meta_keeps_no_graph():
    rule, task = _setup()
    out = unroll(rule, task, 5)
    assert not out.losses.requires_grad
    assert all(not p.requires_grad for p in out.params.values())
    assert out.losses.shape == (6, 2)
