"""The LSTM rule's PyTorch and fused implementations against an independent reference: the naive eager
implementation in benchmarks/naive_lstm.py (its own preprocessing, two nn.LSTMCell, nn.Linear), which
shares no code with l2o.LSTMRule."""

import sys
from pathlib import Path

import pytest
import torch

from l2o import LSTMRule, kernels, load_rule

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from naive_lstm import NaiveLSTMOptimizer  # noqa: E402


def _gradients(n: int, steps: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(n)
    grads = []
    for _ in range(steps):
        g = torch.randn(n, generator=gen) * torch.logspace(-9, 2, n)[torch.randperm(n, generator=gen)]
        g[0], g[1] = 0.0, -1e-30  # zero and far below e^-p: the preprocessing's second branch
        grads.append(g)
    return grads


def _compare(rule: LSTMRule, n: int = 500, steps: int = 5, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    reference = NaiveLSTMOptimizer.like(rule)
    H = rule.cfg.hidden_size
    ref_state = ((torch.zeros(n, H), torch.zeros(n, H)), (torch.zeros(n, H), torch.zeros(n, H)))
    state = rule.init_flat(n)
    with torch.no_grad():
        for g in _gradients(n, steps):
            u_ref, ref_state = reference(g, ref_state)
            u, state = rule.step_flat(g, state)
            torch.testing.assert_close(u, u_ref, rtol=rtol, atol=atol)
            for ours, theirs in zip(state.h + state.c, (ref_state[0][0], ref_state[1][0], ref_state[0][1],
                                                        ref_state[1][1])):
                torch.testing.assert_close(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("implementation", ["torch", "fused"])
@pytest.mark.parametrize("name", ["quadratic", "mnist"])
def test_shipped_optimizers_match_the_naive_reference(name, implementation):
    if implementation == "fused" and kernels.lstm_step() is None:
        pytest.skip(f"the fused kernel is not available here: {kernels.status()['error']}")
    rule = load_rule(name, implementation=implementation)
    assert rule.implementation == implementation
    _compare(rule)


@pytest.mark.parametrize("implementation", ["torch", "fused"])
@pytest.mark.parametrize("settings", [dict(preprocess=True, p=5.0, output_scale=0.3),
                                      dict(preprocess=False, input_scale=0.2, output_scale=2.0)])
def test_random_rules_match_the_naive_reference(settings, implementation):
    if implementation == "fused" and kernels.lstm_step() is None:
        pytest.skip(f"the fused kernel is not available here: {kernels.status()['error']}")
    torch.manual_seed(4)
    rule = LSTMRule(output_init=1.0, implementation=implementation, **settings).requires_grad_(False)
    _compare(rule)


def test_the_torch_path_matches_the_reference_at_other_sizes_and_in_float64():
    torch.manual_seed(5)
    _compare(LSTMRule(hidden_size=7, output_init=1.0).requires_grad_(False))
    rule = LSTMRule(output_init=1.0).requires_grad_(False).double()
    assert rule.implementation == "torch"
    torch.set_default_dtype(torch.float64)
    try:
        _compare(rule, rtol=1e-12, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)
