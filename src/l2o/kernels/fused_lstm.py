"""The fused LSTM step's binding: the kernel's weight layout, a call without autograd, and an autograd
Function whose backward pass is the kernel's own.

The kernel computes, for every coordinate, the preprocessing, two LSTM cells of 20 units and the output
layer (see lstm_step.cpp). The first cell's inputs are the gradient's (``base`` of them: 2 preprocessed, 1 raw,
0 none) followed by ``extra`` (N, E) further inputs computed by the caller (the moment features). Its weights
are the two cells' input and hidden matrices side by side and transposed, ``W (I + H, 4H)`` with I = base + E,
their summed biases, and the output layer's weight vector and bias. The inputs are constants (second
derivatives dropped): its backward pass saves only the old state and recomputes the gates.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor, Tensor, Tensor]  # h1, c1, h2, c2, each (N, 20)


def packed(cells: nn.ModuleList, out: nn.Linear) -> tuple[Tensor, ...]:
    """The kernel's weights W1, b1, W2, b2, wout from two ``nn.LSTMCell`` and an ``nn.Linear(20, 1)``."""
    c1, c2 = cells
    return (torch.cat([c1.weight_ih, c1.weight_hh], 1).t().contiguous(), (c1.bias_ih + c1.bias_hh).contiguous(),
            torch.cat([c2.weight_ih, c2.weight_hh], 1).t().contiguous(), (c2.bias_ih + c2.bias_hh).contiguous(),
            out.weight.reshape(-1).contiguous())


class FusedStep(torch.autograd.Function):
    """The compiled LSTM step with the compiled backward pass."""

    @staticmethod
    def forward(ctx, kernel, settings, grad, extra, h1, c1, h2, c2, W1, b1, W2, b2, wout, bout):
        update = torch.empty_like(grad)
        new = [torch.empty_like(t) for t in (h1, c1, h2, c2)]
        kernel.lstm_step(grad, extra, h1, c1, h2, c2, W1, b1, W2, b2, wout, float(bout), *settings, update, *new)
        ctx.kernel, ctx.settings, ctx.bout = kernel, settings, float(bout)
        ctx.save_for_backward(grad, extra, h1, c1, h2, c2, W1, b1, W2, b2, wout)
        return (update, *new)

    @staticmethod
    def backward(ctx, du, dh1n, dc1n, dh2n, dc2n):
        grad, extra, h1, c1, h2, c2, W1, b1, W2, b2, wout = ctx.saved_tensors
        outs = [torch.zeros_like(h1) if d is None else d.contiguous() for d in (dh1n, dc1n, dh2n, dc2n)]
        du = torch.zeros_like(grad) if du is None else du.contiguous()
        dold = [torch.empty_like(h1) for _ in range(4)]
        dW1, db1, dW2, db2, dwout, dbout = ctx.kernel.lstm_step_backward(
            grad, extra, h1, c1, h2, c2, W1, b1, W2, b2, wout, ctx.bout, *ctx.settings, du, *outs, *dold)
        return (None, None, None, None, *dold, dW1, db1, dW2, db2, dwout, dbout.view(()))


def step(kernel, settings: tuple, cells: nn.ModuleList, out: nn.Linear, grad: Tensor, state: State,
         into: State | None = None, extra: Tensor | None = None) -> tuple[Tensor, State]:
    """One fused step on a flat float32 CPU gradient (N,): the update (N,) and the next state.

    ``settings``: (base, p, input_scale, output_scale), base the number of inputs made from the gradient (2:
    log/sign preprocessing with p, 1: the gradient times input_scale, 0: none); ``extra`` (N, E): the further
    inputs, after those (default: none). Differentiable with respect to the weights and the old state when
    autograd needs it; otherwise the next state is written into ``into`` if given
    (which may be ``state`` itself, for an in-place step).
    """
    grad = grad.contiguous()
    extra = grad.new_empty(grad.shape[0], 0) if extra is None else extra.detach().contiguous()
    h1, c1, h2, c2 = (t.contiguous() for t in state)
    needs_grad = torch.is_grad_enabled() and (
        any(p.requires_grad for p in cells.parameters()) or any(p.requires_grad for p in out.parameters())
        or any(t.requires_grad for t in (h1, c1, h2, c2)))
    if needs_grad:
        update, *new = FusedStep.apply(kernel, settings, grad, extra, h1, c1, h2, c2, *packed(cells, out),
                                       out.bias.reshape(()))
        return update, tuple(new)
    with torch.no_grad():
        new = into if into is not None else tuple(torch.empty_like(t) for t in (h1, c1, h2, c2))
        update = torch.empty_like(grad)
        kernel.lstm_step(grad, extra, h1, c1, h2, c2, *packed(cells, out), float(out.bias), *settings, update, *new)
    return update, tuple(new)
