"""The one place that decides whether a meta-step is taken: not when the meta-loss or the meta-gradient is
non-finite, or when no weight got a gradient. Under ``torch.distributed`` every process takes the same
decision (any process's non-finite step skips it for all), so their weights never drift apart."""

from __future__ import annotations

import torch
from torch import Tensor


def take_step(loss: Tensor, grad_norm: Tensor, has_grads: bool) -> bool:
    ok = has_grads and bool(torch.isfinite(loss)) and bool(torch.isfinite(grad_norm))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        flag = torch.tensor([1.0 if ok else 0.0], device=grad_norm.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        ok = bool(flag.item() > 0)
    return ok
