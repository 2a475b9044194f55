"""The compiled fused LSTM step against the PyTorch implementation, to float32 tolerance."""

import pytest
import torch

from l2o import kernels
from l2o.rules import LSTMRule


@pytest.fixture(scope="module", autouse=True)
def built():
    assert kernels.lstm_step(wait=True) is not None, kernels.build_info()


def _states_close(a, b, tol=1e-5):
    return all(torch.allclose(x, y, atol=tol, rtol=tol) for x, y in zip(a.h + a.c, b.h + b.c))


@pytest.mark.parametrize("preprocess", [True, False])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15_910])
def test_fused_step_matches_pytorch(preprocess, n):
    torch.manual_seed(n)
    rule = LSTMRule(preprocess=preprocess, output_init=1.0, output_scale=0.5, input_scale=0.3).requires_grad_(False)
    grads = [torch.randn(n) * torch.logspace(-7, 1, n)[torch.randperm(n)] for _ in range(4)]
    grads[0][0] = 0.0  # an exact zero gradient takes the sign branch
    s_ref, s_fused = rule.init_flat(n), rule.init_flat(n)
    with torch.no_grad():
        for g in grads:
            rule.use_kernel = False
            u_ref, s_ref = rule.step_flat(g, s_ref)
            rule.use_kernel = True
            u_fused, s_fused = rule.step_flat(g, s_fused)
            assert torch.allclose(u_ref, u_fused, atol=1e-6, rtol=1e-5)
            assert _states_close(s_ref, s_fused)


def test_in_place_step_equals_out_of_place():
    rule = LSTMRule().requires_grad_(False)
    g = torch.randn(1001)
    with torch.no_grad():
        _, s = rule.step_flat(g, rule.init_flat(1001))
        u1, s1 = rule.step_flat(g, s)
        buffers = rule.init_flat(1001)
        for dst, src in zip(buffers.h + buffers.c, s.h + s.c):
            dst.copy_(src)
        u2, s2 = rule.step_flat(g, buffers, out=buffers)
    assert s2 is buffers and torch.equal(u1, u2) and _states_close(s1, s2, tol=0)


def test_kernel_is_not_used_when_a_meta_gradient_is_needed():
    rule = LSTMRule()
    update, _ = rule.step_flat(torch.randn(10), rule.init_flat(10))
    assert update.grad_fn is not None


def test_kernels_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("L2O_KERNELS", "0")
    assert kernels.lstm_step() is None
