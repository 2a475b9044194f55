"""The coordinatewise LSTM optimizer m(∇, h; φ) of Andrychowicz et al. (2016).

One small recurrent network is applied to every coordinate of θ independently: its weights φ are
shared by all coordinates, and each coordinate has its own hidden and cell state. All tensors of a
model are flattened and concatenated into one vector of N coordinates, so the state is one row per
coordinate, ``(N, hidden_size)`` per layer, and no two coordinates ever share a row.

    x_t = preprocess(∇_t)                         (N, 2)  log/sign, or (N, 1) the scaled raw gradient
    h¹_t, c¹_t = LSTMCell¹(x_t, h¹_{t−1}, c¹_{t−1})
    h²_t, c²_t = LSTMCell²(h¹_t, h²_{t−1}, c²_{t−1})
    g_t = output_scale · (W h²_t + b)             (N,)    the update: θ_{t+1} = θ_t + g_t

The cells live in an ``nn.ModuleList`` so the meta-optimizer sees every weight (a plain Python list
hides them: a bug of a popular port of the paper).

References:
    Andrychowicz et al., "Learning to learn by gradient descent by gradient descent", NIPS 2016, §2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from l2o import kernels
from l2o.rules.preprocess import log_sign
from l2o.tasks.base import Params


@dataclass(frozen=True)
class LSTMConfig:
    hidden_size: int = 20  # units per LSTM layer (paper: 20)
    num_layers: int = 2  # stacked LSTM layers (paper: 2)
    preprocess: bool = True  # log/sign gradient preprocessing (paper App. A); off: raw gradient input
    p: float = 10.0  # preprocessing constant (paper: 10; authors' code: 5)
    input_scale: float = 1.0  # multiplies the raw gradient when preprocess is off
    output_scale: float = 0.1  # multiplies the linear output (paper: 0.1 MNIST, 1 quadratics)
    output_init: float = 0.1  # the output layer's initial weights are scaled by this (small first steps)

    def __post_init__(self):
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(f"hidden_size and num_layers must be >= 1, got {self.hidden_size}, {self.num_layers}")
        if self.p <= 0:
            raise ValueError(f"p must be > 0, got {self.p}")
        if self.output_scale <= 0 or self.input_scale <= 0:
            raise ValueError("output_scale and input_scale must be > 0")


class LSTMState(NamedTuple):
    h: tuple[Tensor, ...]  # per layer, (N, hidden_size)
    c: tuple[Tensor, ...]


def flatten(tensors: Params) -> Tensor:
    """Concatenate every tensor of ``tensors`` into one vector of coordinates."""
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def unflatten(flat: Tensor, like: Params) -> Params:
    """Split a coordinate vector back into tensors shaped as ``like``."""
    out, start = {}, 0
    for k, t in like.items():
        n = t.numel()
        out[k] = flat[start : start + n].view_as(t)
        start += n
    return out


class _FusedStep(torch.autograd.Function):
    """The compiled LSTM step with a compiled backward pass: it saves only the old state (which the
    previous step produced anyway) and recomputes the gates in the backward pass. The gradient input is
    a constant (second derivatives dropped)."""

    @staticmethod
    def forward(ctx, kernel, settings, grad, h1, c1, h2, c2, W1, b1, W2, b2, wout, bout):
        update = torch.empty_like(grad)
        new = [torch.empty_like(t) for t in (h1, c1, h2, c2)]
        kernel.lstm_step(grad, h1, c1, h2, c2, W1, b1, W2, b2, wout, float(bout), *settings, update, *new)
        ctx.kernel, ctx.settings, ctx.bout = kernel, settings, float(bout)
        ctx.save_for_backward(grad, h1, c1, h2, c2, W1, b1, W2, b2, wout)
        return (update, *new)

    @staticmethod
    def backward(ctx, du, dh1n, dc1n, dh2n, dc2n):
        grad, h1, c1, h2, c2, W1, b1, W2, b2, wout = ctx.saved_tensors
        outs = [torch.zeros_like(h1) if d is None else d.contiguous() for d in (dh1n, dc1n, dh2n, dc2n)]
        du = torch.zeros_like(grad) if du is None else du.contiguous()
        dold = [torch.empty_like(h1) for _ in range(4)]
        dW1, db1, dW2, db2, dwout, dbout = ctx.kernel.lstm_step_backward(
            grad, h1, c1, h2, c2, W1, b1, W2, b2, wout, ctx.bout, *ctx.settings, du, *outs, *dold)
        return (None, None, None, *dold, dW1, db1, dW2, db2, dwout, dbout.view(()))


class LSTMRule(nn.Module):
    """The learned update rule; an ``nn.Module`` whose parameters are φ."""

    name = "lstm"

    def __init__(self, config: LSTMConfig | None = None, **overrides):
        super().__init__()
        self.cfg = config if config is not None else LSTMConfig(**overrides)
        H, L = self.cfg.hidden_size, self.cfg.num_layers
        in_size = 2 if self.cfg.preprocess else 1
        self.cells = nn.ModuleList(nn.LSTMCell(in_size if i == 0 else H, H) for i in range(L))
        self.out = nn.Linear(H, 1)
        self.use_kernel = True  # use the compiled fused step where it applies (l2o.kernels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default LSTM initialisation; a small output layer so the first updates are small."""
        for cell in self.cells:
            cell.reset_parameters()
        self.out.reset_parameters()
        with torch.no_grad():
            self.out.weight.mul_(self.cfg.output_init)
            self.out.bias.zero_()

    def config(self) -> dict:
        return {"name": self.name, **asdict(self.cfg)}

    def inputs(self, grad: Tensor) -> Tensor:
        if self.cfg.preprocess:
            return log_sign(grad, self.cfg.p)
        return (grad * self.cfg.input_scale).unsqueeze(-1)

    def init_flat(self, n: int, device=None, dtype=None) -> LSTMState:
        """State for ``n`` coordinates."""
        zeros = lambda: torch.zeros(n, self.cfg.hidden_size, device=device, dtype=dtype)  # noqa: E731
        L = self.cfg.num_layers
        return LSTMState(tuple(zeros() for _ in range(L)), tuple(zeros() for _ in range(L)))

    def init(self, params: Params) -> LSTMState:
        first = next(iter(params.values()))
        n = sum(p.numel() for p in params.values())
        return self.init_flat(n, device=first.device, dtype=first.dtype)

    def _fused_kernel(self, grad: Tensor):
        """The compiled kernel when it applies: float32 on the CPU, 2 × 20 units, gradient input constant."""
        if not self.use_kernel or self.cfg.hidden_size != 20 or self.cfg.num_layers != 2:
            return None
        if grad.device.type != "cpu" or grad.dtype != torch.float32 or self.out.weight.dtype != torch.float32:
            return None
        if torch.is_grad_enabled() and grad.requires_grad:  # second derivatives: PyTorch's autograd
            return None
        return kernels.lstm_step()

    def _packed(self) -> tuple[Tensor, ...]:
        (c1, c2), out = self.cells, self.out
        return (torch.cat([c1.weight_ih, c1.weight_hh], 1).t().contiguous(), (c1.bias_ih + c1.bias_hh).contiguous(),
                torch.cat([c2.weight_ih, c2.weight_hh], 1).t().contiguous(), (c2.bias_ih + c2.bias_hh).contiguous(),
                out.weight.reshape(-1).contiguous())

    def step_flat(self, grad: Tensor, state: LSTMState, out: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """One step on a flat gradient (N,): the update (N,) and the next state.

        ``out``: where to write the next state (may be ``state`` itself, for an in-place step); only the
        compiled kernel writes there, so callers must use the returned state.
        """
        kernel = self._fused_kernel(grad)
        if kernel is not None:
            settings = (self.cfg.preprocess, self.cfg.p, self.cfg.input_scale, self.cfg.output_scale)
            grad = grad.contiguous()
            h1, h2 = (h.contiguous() for h in state.h)
            c1, c2 = (c.contiguous() for c in state.c)
            if torch.is_grad_enabled() and (
                any(p.requires_grad for p in self.parameters()) or any(t.requires_grad for t in state.h + state.c)
            ):
                update, h1, c1, h2, c2 = _FusedStep.apply(kernel, settings, grad, h1, c1, h2, c2, *self._packed(),
                                                          self.out.bias.reshape(()))
                return update, LSTMState((h1, h2), (c1, c2))
            with torch.no_grad():
                nxt = out if out is not None else LSTMState(
                    (torch.empty_like(h1), torch.empty_like(h2)), (torch.empty_like(c1), torch.empty_like(c2)))
                update = torch.empty_like(grad)
                kernel.lstm_step(grad, h1, c1, h2, c2, *self._packed(), float(self.out.bias), *settings,
                                 update, nxt.h[0], nxt.c[0], nxt.h[1], nxt.c[1])
            return update, nxt
        x = self.inputs(grad)
        hs, cs = [], []
        for cell, h, c in zip(self.cells, state.h, state.c):
            h, c = cell(x, (h, c))
            hs.append(h)
            cs.append(c)
            x = h
        update = self.out(x).squeeze(-1) * self.cfg.output_scale
        return update, LSTMState(tuple(hs), tuple(cs))

    def update(self, grads: Params, state: LSTMState, *, inplace: bool = False) -> tuple[Params, LSTMState]:
        flat = flatten(grads)
        if flat.shape[0] != state.h[0].shape[0]:
            raise ValueError(
                f"the gradients have {flat.shape[0]} coordinates but the LSTM state has "
                f"{state.h[0].shape[0]} rows; was the state made by init() for these parameters?"
            )
        update, state = self.step_flat(flat, state, out=state if inplace else None)
        return unflatten(update, grads), state
