"""The compiled fused LSTM step against the PyTorch implementation, to float32 tolerance."""

import platform
import shutil

import pytest
import torch

from l2o import kernels
from l2o.rules import LSTMRule


@pytest.fixture(scope="module", autouse=True)
def built():
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler on this machine: l2o uses its PyTorch implementation")
    assert kernels.lstm_step() is not None, kernels.status()


def _states_close(a, b, tol=1e-5):
    assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b))
    return all(torch.allclose(x, y, atol=tol, rtol=tol) for x, y in zip(sum(a, ()), sum(b, ())))


# the first cell's inputs: the gradient preprocessed (2) or raw (1), with or without moment features, or those alone
INPUTS = {"log/sign": dict(preprocess=True), "raw": dict(preprocess=False),
          "log/sign + moments": dict(moments=(0.5, 0.9, 0.99)), "raw + moment": dict(preprocess=False, moments=(0.9,)),
          "moments only": dict(moments=(0.5, 0.9, 0.99, 0.999), gradient_input=False)}


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15_910])
def test_fused_step_matches_pytorch(inputs, n):
    torch.manual_seed(n)
    rule = LSTMRule(**INPUTS[inputs], output_init=1.0, output_scale=0.5, input_scale=0.3).requires_grad_(False)
    assert rule.implementation == "fused"
    grads = [torch.randn(n) * torch.logspace(-7, 1, n)[torch.randperm(n)] for _ in range(4)]
    grads[0][0] = 0.0  # an exact zero gradient takes the sign branch
    s_ref, s_fused = rule.init_flat(n), rule.init_flat(n)
    with torch.no_grad():
        for g in grads:
            rule.set_implementation("torch")
            u_ref, s_ref = rule.step_flat(g, s_ref)
            rule.set_implementation("fused")
            u_fused, s_fused = rule.step_flat(g, s_fused)
            assert torch.allclose(u_ref, u_fused, atol=1e-6, rtol=1e-5)
            assert _states_close(s_ref, s_fused)


@pytest.mark.parametrize("spread", [100.0, 1e4])
def test_fused_step_saturates_like_pytorch(spread):
    """Gate pre-activations far beyond ±88 (where e^x overflows float32) give the same finite states and
    updates as PyTorch's sigmoid and tanh, with no inf or NaN (the vectorised expf/tanhf of a -ffast-math
    build gave NaN there)."""
    _check_saturated_step(spread)


def _check_saturated_step(spread):
    torch.manual_seed(1)
    rule = LSTMRule(output_init=1.0).requires_grad_(False)
    with torch.no_grad():
        for cell in rule.cells:
            cell.bias_ih.copy_(torch.randn(80) * spread)
    n = 300
    g = torch.randn(n) * torch.logspace(-8, 2, n)
    state = rule.init_flat(n)
    state = type(state)(tuple(torch.randn(n, 20) for _ in range(2)), tuple(torch.randn(n, 20) * 5 for _ in range(2)))
    with torch.no_grad():
        rule.set_implementation("torch")
        u_ref, s_ref = rule.step_flat(g, state)
        rule.set_implementation("fused")
        u_fused, s_fused = rule.step_flat(g, state)
    assert rule.cells[0].bias_ih.abs().max() > 100  # the test reaches the range where e^x overflows
    assert torch.isfinite(u_fused).all() and all(torch.isfinite(t).all() for t in s_fused.h + s_fused.c)
    assert torch.allclose(u_ref, u_fused, atol=1e-6, rtol=1e-5)
    assert _states_close(s_ref, s_fused)


def test_fused_step_keeps_relative_accuracy_near_zero():
    """Gate pre-activations near 0, where tanh(x) ≈ x: tiny cell states come out to float32's relative
    precision, as PyTorch's do (a tanh computed as 2σ(2x) − 1, say, is accurate only to ~1e-7 absolute
    there). The gates are the biases alone (zero weights), so that no sum cancels and both paths are exact
    up to the activation functions."""
    torch.manual_seed(3)
    rule = LSTMRule(preprocess=False, output_init=1.0).requires_grad_(False)
    with torch.no_grad():
        for cell in rule.cells:
            cell.weight_ih.zero_()
            cell.weight_hh.zero_()
            cell.bias_ih.copy_(torch.randn(80) * 1e-4)
            cell.bias_hh.zero_()
    n = 64
    g = torch.randn(n)
    with torch.no_grad():
        rule.set_implementation("torch")
        _, s_ref = rule.step_flat(g, rule.init_flat(n))
        rule.set_implementation("fused")
        _, s_fused = rule.step_flat(g, rule.init_flat(n))
    assert s_ref.c[0].abs().max() < 1e-3  # the range where only relative accuracy tests anything
    for ref, fused in zip(s_ref.h + s_ref.c, s_fused.h + s_fused.c):
        assert torch.allclose(ref, fused, rtol=1e-5, atol=0)


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


def test_fused_meta_gradient_does_not_depend_on_the_thread_count():
    rule = LSTMRule()
    g = torch.randn(20_000)
    out = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rule.zero_grad()
        update, state = rule.step_flat(g, rule.init_flat(20_000))
        (update.sum() + state.c[1].sum()).backward()
        out.append([p.grad.clone() for p in rule.parameters()])
    torch.set_num_threads(1)
    assert all(torch.equal(a, b) for a, b in zip(*out))


def test_the_build_is_named_after_source_flags_torch_and_cpu(monkeypatch):
    """Everything the binary depends on is in its name, so a cache shared across machines or versions holds
    one build of each and never hands one to another."""
    from l2o.kernels import build

    spec = kernels.spec()
    name = spec.name()
    assert build.find(spec)[1] is None  # built by the fixture
    other_flags = kernels.spec(list(spec.flags) + ["-fno-unroll-loops"])
    assert other_flags.name() != name
    identity = spec.identity()
    for key, value in [("torch", "0.0"), ("python", "cpython-00"), ("cpu", {"model name": "another"})]:
        assert spec.name({**identity, key: value}) != name
    monkeypatch.setattr(build, "cpu_identity", lambda: {"machine": "x86_64", "model name": "another CPU"})
    assert spec.name() != name and build.find(spec)[1] == "not built yet"


def test_kernels_can_be_switched_off(monkeypatch):
    """L2O_KERNELS=0: no kernel; "auto" resolves to torch and says so once; "fused" is refused clearly."""
    monkeypatch.setenv("L2O_KERNELS", "0")
    monkeypatch.setattr(kernels, "_warned", set())
    assert kernels.lstm_step() is None and kernels.status()["error"] == "disabled by L2O_KERNELS=0"
    with pytest.warns(kernels.KernelUnavailableWarning, match="disabled by L2O_KERNELS=0"):
        rule = LSTMRule()
    assert rule.implementation == "torch" and rule.implementation_info() == {"implementation": "torch", "kernel": None}
    with pytest.raises(RuntimeError, match="implementation='fused' was asked for, but the kernel is not available"):
        LSTMRule(implementation="fused")


def test_implementation_is_resolved_when_built_and_when_moved():
    rule = LSTMRule()
    assert rule.implementation == "fused"
    assert rule.implementation_info() == {"implementation": "fused", "kernel": kernels.spec().name()}
    assert rule.double().implementation == "torch"  # float64: the kernel does not apply
    assert rule.float().implementation == "fused"
    assert LSTMRule(hidden_size=10).implementation == "torch"
    assert LSTMRule(implementation="torch").implementation == "torch"
    with pytest.raises(RuntimeError, match="specialised for 2 layers of 20 units"):
        LSTMRule(hidden_size=10, implementation="fused")
    with pytest.raises(RuntimeError, match="at most 10 inputs per coordinate, this rule has 11"):
        LSTMRule(moments=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), implementation="fused")
    with pytest.raises(RuntimeError, match="float32 on the CPU"):
        LSTMRule(implementation="fused").double()
    with pytest.raises(ValueError, match="implementation must be one of"):
        LSTMRule(implementation="cuda")
    with pytest.raises(ValueError, match="runs the fused kernel .* torch.float64 gradient"):
        rule.step_flat(torch.zeros(3, dtype=torch.float64), rule.init_flat(3))


def _meta_gradients(rule, grads, use_kernel):
    """Gradients of the rule's weights and of the initial h¹ through len(grads) steps, either path."""
    n = grads[0].shape[0]
    rule.set_implementation("fused" if use_kernel else "torch")
    rule.zero_grad()
    state = rule.init_flat(n)
    h0 = state.h[0].clone().requires_grad_()
    state = state._replace(h=(h0, state.h[1]))
    total = 0
    for g in grads:
        update, state = rule.step_flat(g, state)
        assert (update.grad_fn.name() == "FusedStepBackward") == use_kernel
        total = total + (update * torch.arange(n)).sum() + 0.3 * state.h[1].sum() + 0.1 * state.c[0].pow(2).sum()
    total.backward()
    return [p.grad.clone() for p in rule.parameters()] + [h0.grad.clone()]


@pytest.mark.parametrize("inputs", INPUTS)
def test_fused_meta_gradient_matches_pytorch_autograd(inputs):
    """Meta-gradients (weights and initial state) through 3 fused steps equal PyTorch's autograd."""
    torch.manual_seed(0)
    rule = LSTMRule(**INPUTS[inputs], output_init=1.0, output_scale=0.7)
    n = 37  # not a multiple of the kernel's block of 8
    grads = [torch.randn(n) * torch.logspace(-6, 1, n) for _ in range(3)]
    for ref, fused in zip(_meta_gradients(rule, grads, False), _meta_gradients(rule, grads, True)):
        assert torch.allclose(ref, fused, rtol=1e-5, atol=1e-6 * ref.abs().max())


def test_fused_meta_gradient_matches_pytorch_autograd_when_saturated():
    """Meta-gradients through saturated gates (biases of ±100s): finite, and PyTorch's to float32 tolerance."""
    _check_saturated_meta_gradient()


def _check_saturated_meta_gradient():
    torch.manual_seed(2)
    rule = LSTMRule(output_init=1.0)
    with torch.no_grad():
        for cell in rule.cells:
            cell.bias_ih.copy_(torch.randn(80) * 100)
    n = 45
    grads = [torch.randn(n) * torch.logspace(-6, 1, n) for _ in range(3)]
    # near saturation σ' = σ(1 − σ) keeps few significant bits in float32 on either path (1 − σ of a σ one
    # rounding step below 1), so the tolerance is 1e-5 of each tensor's largest entry rather than 1e-6
    for ref, fused in zip(_meta_gradients(rule, grads, False), _meta_gradients(rule, grads, True)):
        assert torch.isfinite(fused).all()
        assert torch.allclose(ref, fused, rtol=1e-5, atol=1e-5 * ref.abs().max())


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86 build")
def test_build_without_avx512_matches_pytorch_when_saturated(monkeypatch):
    """The kernel as it is built on an x86 machine without AVX-512 (``-mno-avx512f`` plus the flags the
    library adds on x86): saturated gates give PyTorch's states and meta-gradients. Without ``-mno-recip``
    that build's σ of a saturated gate came out one rounding step below 1 and its meta-gradients were off."""
    from l2o.kernels.build import obtain

    module, _ = obtain(kernels.spec(kernels._flags(x86=True) + ["-mno-avx512f"]))
    monkeypatch.setitem(kernels._state, "module", module)
    assert kernels.lstm_step() is module
    _check_saturated_step(1e4)
    _check_saturated_meta_gradient()


def test_second_order_uses_pytorch_autograd():
    """A gradient that itself requires grad (second-order meta-training) goes through PyTorch's autograd even
    when the rule runs the fused kernel, which treats the gradient as a constant."""
    rule = LSTMRule()
    assert rule.implementation == "fused"
    g = torch.randn(5, requires_grad=True)
    update, _ = rule.step_flat(g, rule.init_flat(5))
    assert update.grad_fn.name() != "FusedStepBackward"
