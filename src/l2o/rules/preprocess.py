"""Gradient preprocessing for the coordinatewise LSTM (Andrychowicz et al. 2016, Appendix A).

Gradients span many orders of magnitude; the LSTM sees each coordinate's gradient ∇ as two numbers
(magnitude on a log scale, and sign), with p > 0:

    ∇ → ( log|∇| / p,  sgn(∇) )    if |∇| ≥ e^{−p}
    ∇ → ( −1,          e^{p} ∇ )    otherwise

The paper uses p = 10; the authors' code p = 5. Both branches meet continuously at |∇| = e^{−p}, and the
first input is written as log(max(|∇|, e^{−p}))/p, which is −1 below the threshold and never takes the
log of zero (so it stays differentiable when second derivatives are kept). The authors' code also
clips the second input to [−1, 1]; it already lies there by construction.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def log_sign(grad: Tensor, p: float = 10.0) -> Tensor:
    """Preprocess a flat gradient of shape (N,) into LSTM inputs of shape (N, 2)."""
    if p <= 0:
        raise ValueError(f"p must be > 0, got {p}")
    threshold = math.exp(-p)
    magnitude = grad.abs()
    log_part = torch.log(magnitude.clamp_min(threshold)) / p
    sign_part = torch.where(magnitude >= threshold, torch.sign(grad), grad * math.exp(p))
    return torch.stack((log_part, sign_part), dim=-1)
