"""The coordinatewise LSTM optimizer m(∇, h; φ) of Andrychowicz et al. (2016).

One small recurrent network is applied to every coordinate of θ independently: its weights φ are
shared by all coordinates, and each coordinate has its own hidden and cell state. All tensors of a
model are flattened and concatenated into one vector of N coordinates, so the state is one row per
coordinate, ``(N, hidden_size)`` per layer, and no two coordinates ever share a row.

    x_t = preprocess(∇_t)                         (N, 2)  log/sign, or (N, 1) the scaled raw gradient
    h¹_t, c¹_t = LSTMCell¹(x_t, h¹_{t−1}, c¹_{t−1})
    h²_t, c²_t = LSTMCell²(h¹_t, h²_{t−1}, c²_{t−1})
    g_t = output_scale · (W h²_t + b)             (N,)    the update: θ_{t+1} = θ_t + g_t

With ``moments`` (decays β, e.g. (0.5, 0.9, 0.99)), the LSTM also sees scale-free features of the gradient's
history (RNNprop, Lv et al. 2017; several decays as Metz et al. 2022): ∇_t / √v̂_t and m̂_β,t / √v̂_t for each β,
with m_β and v the bias-corrected moving averages of ∇ and ∇² (v at 0.999), kept per coordinate in the state.
``gradient_input=False`` drops the gradient itself, leaving inputs that do not change when the loss is scaled.
``agreement`` adds one more: sign(∇_t · m_β,t−1) at the shortest decay, +1 where the gradient keeps its sign and −1
where it turns, the cue by which delta-bar-delta (Jacobs 1988) and Rprop grow and shrink each coordinate's step.
``agreement_factor`` (up, down) adds that cue accumulated: log₁₀ f_t, with each coordinate's f multiplied by up where
the signs agree and by down where they turn, kept within [0.1, 10] (the factor delta-bar-delta scales the step by;
kept in the state).
``direct`` (with moments) adds a learned linear term of those features to the output,

    g_t = output_scale · (κ (W h²_t + b) + d · f_t)     f_t = (∇_t/√v̂_t, m̂_β,t/√v̂_t …)

with d started at −1 on the momentum at the decay nearest 0.9 and 0 elsewhere: with ``output_init=0`` the
untrained rule is Adam (β₁ ≈ 0.9, β₂ 0.999) at learning rate ``output_scale``, and meta-training learns the
LSTM's correction to it (the learned optimizer as a residual on a hand-designed one, as in Metz et al. 2022).
κ (``correction_scale``, default 1) sizes that correction: the meta-optimizer (Adam) moves every weight of W by
about its learning rate per meta-step whatever the meta-gradient's size, so with κ = 1 and noisy meta-gradients
the LSTM's part soon grows as large as the direct term; a small κ (as the small output multipliers of Metz et
al. 2022) keeps it a correction. ``learn_direct=False`` keeps d at Adam's step, so that only the LSTM learns.
``correction="scale"`` makes the LSTM a per-coordinate, per-step learning-rate factor instead of a term of its own,

    g_t = output_scale · exp(κ tanh(W h²_t + b)) · d · f_t,

bounded between e^−κ and e^κ times the direct term's step: the learned rule keeps Adam's direction and its way of
shrinking its steps as the momentum fades, and learns when to take larger or smaller ones.

The cells live in an ``nn.ModuleList`` so the meta-optimizer sees every weight (a plain Python list
hides them: a bug of a popular port of the paper).

Implementation: ``"torch"`` (PyTorch's ``nn.LSTMCell``, any device and dtype, second derivatives), ``"fused"``
(the compiled kernel of ``l2o.kernels``: float32 on the CPU, 2 layers of 20 units, 5-20x faster) or
``"auto"`` (fused where it applies and can be had, else torch, said once). It is resolved when the rule is
built and again when it is moved (``.to(...)``), never per step; ``rule.implementation`` is the answer and
``implementation_info()`` what every run and result records. Steps whose gradient itself requires grad
(second-order meta-training) always go through PyTorch's autograd.

References:
    Andrychowicz et al., "Learning to learn by gradient descent by gradient descent", NIPS 2016, §2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor, nn

from l2o import kernels
from l2o.kernels import fused_lstm
from l2o.rules.agreement import agreement_factor
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
    gac: int = 0  # global averaging cells per layer (paper App. D): their h is averaged over each optimizee
    moments: tuple[float, ...] = ()  # decays of momentum inputs m̂/√v̂ (with ∇/√v̂): RNNprop-style, scale-free inputs
    gradient_input: bool = True  # the (preprocessed) gradient is an input; off (with moments): only scale-free ones
    direct: bool = False  # with moments: a learned linear term of the moment features in the output, started at Adam
    correction_scale: float = 1.0  # with direct: the LSTM's output W h + b is further multiplied by this
    correction: str = "add"  # with direct: "add" the LSTM's output to d · f, or "scale" d · f by exp(κ tanh(W h + b))
    learn_direct: bool = True  # with direct: d is meta-trained; off: d stays at Adam's step (a fixed buffer)
    second_moment: float = 0.999  # with moments: the decay of v in √v̂ (Adam's β2)
    moment_eps: float = 1e-8  # with moments: the features divide by √v̂ + this (Adam's ε)
    correction_decay: float = 0.0  # with correction "scale": τ > 0 fades the LSTM's factor as exp(κ tanh(·) τ/(τ+t))
    agreement: bool = False  # with moments: an input sign(∇_t · m_t−1) at the shortest decay (delta-bar-delta's cue)
    agreement_factor: tuple[float, ...] = ()  # with moments, (up, down): an input log₁₀ f, f × up / × down by that cue

    def __post_init__(self):
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(f"hidden_size and num_layers must be >= 1, got {self.hidden_size}, {self.num_layers}")
        if not 0 <= self.gac <= self.hidden_size:
            raise ValueError(f"gac must be between 0 and hidden_size ({self.hidden_size}), got {self.gac}")
        if self.p <= 0:
            raise ValueError(f"p must be > 0, got {self.p}")
        if self.output_scale <= 0 or self.input_scale <= 0:
            raise ValueError("output_scale and input_scale must be > 0")
        object.__setattr__(self, "moments", tuple(float(b) for b in self.moments))  # from JSON: a list
        if any(not 0 <= b < 1 for b in self.moments):
            raise ValueError(f"moments are decays in [0, 1), got {list(self.moments)}")
        if not (self.gradient_input or self.moments):
            raise ValueError("gradient_input=False needs moments (the LSTM needs some input)")
        if self.direct and not self.moments:
            raise ValueError("direct needs moments (it is a linear term of the moment features)")
        if not self.learn_direct and not self.direct:
            raise ValueError("learn_direct=False needs direct (it fixes the direct term)")
        if self.correction not in ("add", "scale") or (self.correction == "scale" and not self.direct):
            raise ValueError(f"correction must be 'add' or 'scale' ('scale' with direct), got {self.correction!r}")
        if not 0 < self.second_moment < 1 or (self.second_moment != 0.999 and not self.moments):
            raise ValueError(f"second_moment must be in (0, 1), and differ from 0.999 only with moments; got "
                             f"{self.second_moment}")
        if self.moment_eps <= 0 or (self.moment_eps != 1e-8 and not self.moments):
            raise ValueError(f"moment_eps must be > 0, and differ from 1e-8 only with moments; got {self.moment_eps}")
        if self.correction_decay < 0 or (self.correction_decay and self.correction != "scale"):
            raise ValueError(f"correction_decay must be >= 0, and > 0 only with correction 'scale'; got "
                             f"{self.correction_decay}")
        object.__setattr__(self, "agreement_factor", tuple(float(x) for x in self.agreement_factor))
        if self.agreement_factor and (len(self.agreement_factor) != 2 or not self.moments
                                      or not self.agreement_factor[0] > 1 > self.agreement_factor[1] > 0):
            raise ValueError(f"agreement_factor is (up, down) with up > 1 > down > 0, and needs moments; got "
                             f"{list(self.agreement_factor)}")
        if self.agreement and not self.moments:
            raise ValueError("agreement needs moments (it compares the gradient with the momentum at the shortest "
                             "decay)")
        if self.correction_scale <= 0 or (self.correction_scale != 1 and not self.direct):
            raise ValueError(f"correction_scale must be > 0, and differ from 1 only with direct (without it, "
                             f"output_scale is the LSTM output's only scale); got {self.correction_scale}")

    @property
    def gradient_inputs(self) -> int:
        """Inputs made from the gradient itself: 2 (log/sign), 1 (scaled) or 0 (none)."""
        return (2 if self.preprocess else 1) if self.gradient_input else 0

    @property
    def input_size(self) -> int:
        return (self.gradient_inputs + int(self.agreement) + int(bool(self.agreement_factor))
                + (1 + len(self.moments) if self.moments else 0))


class LSTMState(NamedTuple):
    h: tuple[Tensor, ...]  # per layer, (N, hidden_size)
    c: tuple[Tensor, ...]
    m: tuple[Tensor, ...] = ()  # with moments: per decay, (N,) the moving average of ∇
    v: tuple[Tensor, ...] = ()  # with moments: ((N,) the moving average of ∇²,)
    t: tuple[Tensor, ...] = ()  # with moments: ((N,) steps taken,), for the bias correction
    f: tuple[Tensor, ...] = ()  # with agreement_factor: ((N,) the accumulated factor,)

    def rows(self, start: int, end: int) -> "LSTMState":
        """Rows ``start`` … ``end − 1`` of every tensor (views)."""
        return LSTMState(*(tuple(x[start:end] for x in part) for part in self))

    @staticmethod
    def cat(parts: list["LSTMState"]) -> "LSTMState":
        """The states of consecutive rows, concatenated (one copy)."""
        return LSTMState(*(tuple(torch.cat(xs) for xs in zip(*fields)) for fields in zip(*parts)))


# settings added after the first checkpoints: left out of a rule's config while at their defaults
OMITTED_AT_DEFAULT = ("gac", "moments", "direct", "correction_scale", "correction", "learn_direct", "gradient_input",
                      "second_moment", "moment_eps", "correction_decay", "agreement",
                      "agreement_factor")
DEFAULTS = {f.name: f.default for f in fields(LSTMConfig)}

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


IMPLEMENTATIONS = ("auto", "torch", "fused")
KERNEL_MAX_INPUTS = 10  # the fused kernel's limit on first-layer inputs besides h (IMAX in lstm_step.cpp)


CHUNK_ROWS = 16384  # rows per piece for a single-threaded PyTorch cell without autograd (docs/benchmarks.md)


def run_cell(cell: nn.LSTMCell, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """``cell(x, (h, c))``; single-threaded, without autograd and on many rows, piece by piece so that each
    piece's gates stay in the cache (2.0–2.2× faster at 10⁶ rows; with 2 threads the pieces were measured
    slower, so there it is one call). Rows are independent: the result is bitwise the same (tests/test_lstm.py)."""
    n = x.shape[0]
    if torch.is_grad_enabled() or n <= 2 * CHUNK_ROWS or torch.get_num_threads() > 1:
        return cell(x, (h, c))
    parts = [cell(x[i:i + CHUNK_ROWS], (h[i:i + CHUNK_ROWS], c[i:i + CHUNK_ROWS])) for i in range(0, n, CHUNK_ROWS)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def reset_stack(cells: nn.ModuleList, out: nn.Linear, output_init: float) -> None:
    """PyTorch's default LSTM initialisation; the output layer's weights scaled by ``output_init`` and its bias
    zero, so that the first updates are small."""
    for cell in cells:
        cell.reset_parameters()
    out.reset_parameters()
    with torch.no_grad():
        out.weight.mul_(output_init)
        out.bias.zero_()


class LSTMRule(nn.Module):
    """The learned update rule; an ``nn.Module`` whose parameters are φ.

    ``implementation``: "auto" (default), "torch" or "fused"; see the module's docstring.
    """

    name = "lstm"

    def __init__(self, config: LSTMConfig | None = None, *, implementation: str = "auto", **overrides):
        super().__init__()
        self.cfg = config if config is not None else LSTMConfig(**overrides)
        H, L = self.cfg.hidden_size, self.cfg.num_layers
        in_size = self.cfg.input_size
        self.cells = nn.ModuleList(nn.LSTMCell(in_size if i == 0 else H, H) for i in range(L))
        self.out = nn.Linear(H, 1)
        if self.cfg.direct and self.cfg.learn_direct:
            self.direct = nn.Parameter(torch.zeros(1 + len(self.cfg.moments)))
        elif self.cfg.direct:  # fixed at Adam's step, saved with the weights
            self.register_buffer("direct", torch.zeros(1 + len(self.cfg.moments)))
        self.reset_parameters()
        self.set_implementation(implementation)

    def set_implementation(self, implementation: str) -> "LSTMRule":
        """Ask for an implementation ("auto", "torch", "fused") and resolve it for the rule's device and dtype."""
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        self.requested_implementation = implementation
        self._resolve()
        return self

    def _fused_unsupported(self) -> str | None:
        """Why the fused kernel cannot compute this rule as it stands (None: it can)."""
        if self.cfg.hidden_size != 20 or self.cfg.num_layers != 2:
            return (f"the kernel is specialised for 2 layers of 20 units, this rule has {self.cfg.num_layers} "
                    f"of {self.cfg.hidden_size}")
        if self.cfg.gac:
            return "the kernel has no global averaging cells"
        if self.cfg.input_size > KERNEL_MAX_INPUTS:
            return (f"the kernel takes at most {KERNEL_MAX_INPUTS} inputs per coordinate, this rule has "
                    f"{self.cfg.input_size}")
        w = self.out.weight
        if w.device.type != "cpu" or w.dtype != torch.float32:
            return f"the kernel runs float32 on the CPU, this rule's weights are {w.dtype} on {w.device}"
        return None

    def _resolve(self) -> None:
        requested, why = self.requested_implementation, self._fused_unsupported()
        kernel = None
        if requested != "torch" and why is None:
            kernel = kernels.lstm_step()
            if kernel is None:
                why = f"the kernel is not available ({kernels.unavailable_reason()})"
                if requested == "auto":
                    kernels.warn_unavailable()
        if requested == "fused" and kernel is None:
            raise RuntimeError(f"implementation='fused' was asked for, but {why}; use 'auto' or 'torch'")
        self.implementation = "fused" if kernel is not None else "torch"

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .double(), ...: resolve for the new device and dtype
        out = super()._apply(fn, *args, **kwargs)
        if hasattr(self, "requested_implementation"):
            self._resolve()
        return out

    def implementation_info(self) -> dict:
        """What computes this rule's steps, as recorded with every run, checkpoint and result."""
        return {"implementation": self.implementation,
                "kernel": kernels.build_name() if self.implementation == "fused" else None}

    def reset_parameters(self) -> None:
        reset_stack(self.cells, self.out, self.cfg.output_init)
        if self.cfg.direct:  # Adam's step: −m̂/√v̂ at the decay nearest 0.9 (feature 0 is ∇/√v̂)
            nearest = min(range(len(self.cfg.moments)), key=lambda i: abs(self.cfg.moments[i] - 0.9))
            with torch.no_grad():
                self.direct.zero_()
                self.direct[1 + nearest] = -1.0

    def config(self) -> dict:
        settings = asdict(self.cfg)
        for name in OMITTED_AT_DEFAULT:  # the plain LSTM's settings read as they always did
            if settings[name] == DEFAULTS[name]:
                del settings[name]
        return {"name": self.name, **settings}

    def inputs(self, grad: Tensor) -> Tensor:
        if self.cfg.preprocess:
            return log_sign(grad, self.cfg.p)
        return (grad * self.cfg.input_scale).unsqueeze(-1)

    def init_flat(self, n: int, device=None, dtype=None) -> LSTMState:
        """State for ``n`` coordinates."""
        zeros = lambda: torch.zeros(n, self.cfg.hidden_size, device=device, dtype=dtype)  # noqa: E731
        L = self.cfg.num_layers
        if not self.cfg.moments:
            return LSTMState(tuple(zeros() for _ in range(L)), tuple(zeros() for _ in range(L)))
        flat = lambda: torch.zeros(n, device=device, dtype=dtype)  # noqa: E731
        return LSTMState(tuple(zeros() for _ in range(L)), tuple(zeros() for _ in range(L)),
                         tuple(flat() for _ in self.cfg.moments), (flat(),), (flat(),),
                         (torch.ones(n, device=device, dtype=dtype),) if self.cfg.agreement_factor else ())

    def init(self, params: Params) -> LSTMState:
        first = next(iter(params.values()))
        n = sum(p.numel() for p in params.values())
        return self.init_flat(n, device=first.device, dtype=first.dtype)

    def step_flat(self, grad: Tensor, state: LSTMState, out: LSTMState | None = None,
                  problems: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, LSTMState]:
        """One step on a flat gradient (N,): the update (N,) and the next state.

        ``out``: where to write the next state (may be ``state`` itself, for an in-place step); only the
        compiled kernel writes there, so callers must use the returned state. ``problems``: each coordinate's
        problem index (N,) and each problem's number of coordinates (B,), for the global averaging cells
        (default: all coordinates are one optimizee).
        """
        if self.implementation == "fused":
            if grad.device.type != "cpu" or grad.dtype != torch.float32:
                raise ValueError(f"this rule runs the fused kernel (float32 on the CPU) but got a {grad.dtype} "
                                 f"gradient on {grad.device}; move the rule with .to(...) first")
            if not (torch.is_grad_enabled() and grad.requires_grad):  # else second derivatives: PyTorch
                settings = (self.cfg.gradient_inputs, self.cfg.p, self.cfg.input_scale, self._lstm_multiplier())
                feats, moments = self._moment_features(grad, state) if self.cfg.moments else (None, ())
                cues, moments = self._agreement_inputs(grad, state, moments)
                extra = torch.cat([*cues, feats], dim=1) if cues else feats
                old = (state.h[0], state.c[0], state.h[1], state.c[1])
                into = None if out is None else (out.h[0], out.c[0], out.h[1], out.c[1])
                update, (h1, c1, h2, c2) = fused_lstm.step(kernels.lstm_step(), settings, self.cells, self.out, grad, old,
                                                           into, extra)
                update = self._combine(update, feats, moments[2][0] if moments else None)
                if out is not None and not any(t.requires_grad for t in (h1, c1, h2, c2)):
                    for dst, src in zip(out.m + out.v + out.t + out.f, sum(moments, ())):  # the moments' new state
                        dst.copy_(src)
                    return update, out
                return update, LSTMState((h1, h2), (c1, c2), *moments)
        x, extra = self._features(grad, state)
        features = x
        hs, cs = [], []
        for cell, h, c in zip(self.cells, state.h, state.c):
            h, c = run_cell(cell, x, h, c)
            if self.cfg.gac:
                h = self._average(h, problems)
            hs.append(h)
            cs.append(c)
            x = h
        lstm = self.out(x).squeeze(-1) * self._lstm_multiplier()
        update = self._combine(lstm, features[:, -self.direct.shape[0]:] if self.cfg.direct else None,
                               extra[2][0] if extra else None)
        return update, LSTMState(tuple(hs), tuple(cs), *extra)

    def _lstm_multiplier(self) -> float:
        """What the LSTM's output W h + b is multiplied by (the kernel's output scale): output_scale · κ for "add",
        1 for "scale" (κ then bounds the factor, in ``_combine``)."""
        return self.cfg.correction_scale * self.cfg.output_scale if self.cfg.correction == "add" else 1.0

    def _combine(self, lstm: Tensor, features: Tensor | None, steps: Tensor | None = None) -> Tensor:
        """The update from the LSTM's scaled output and, with ``direct``, the moment features (``steps``: each
        coordinate's step count t, for ``correction_decay``)."""
        if not self.cfg.direct:
            return lstm
        base = self.cfg.output_scale * (features @ self.direct)
        if self.cfg.correction == "add":
            return lstm + base
        exponent = self.cfg.correction_scale * torch.tanh(lstm)
        if self.cfg.correction_decay:  # the factor fades to 1: late in a run the rule is its direct term
            exponent = exponent * (self.cfg.correction_decay / (self.cfg.correction_decay + steps))
        return base * torch.exp(exponent)

    def _features(self, grad: Tensor, state: LSTMState) -> tuple[Tensor, tuple]:
        """The LSTM's input (N, input_size) and the moments' next state ((m…), (v,), (t,)), empty without."""
        x = self.inputs(grad) if self.cfg.gradient_input else grad.new_zeros(grad.shape[0], 0)
        if not self.cfg.moments:
            return x, ()
        feats, moments = self._moment_features(grad, state)
        cues, moments = self._agreement_inputs(grad, state, moments)
        return torch.cat([x, *cues, feats], dim=1), moments

    def _agreement_inputs(self, grad: Tensor, state: LSTMState, moments: tuple) -> tuple[list[Tensor], tuple]:
        """The agreement inputs, each (N, 1) (none, one or both of ``agreement`` and ``agreement_factor``), and
        ``moments`` (the moments' next state) with the accumulated factor's next state appended (empty without)."""
        if not (self.cfg.agreement or self.cfg.agreement_factor):
            return [], moments
        sign = self._agreement(grad, state)
        cues = [sign] if self.cfg.agreement else []
        if not self.cfg.agreement_factor:
            return cues, moments
        f = agreement_factor(state.f[0], sign[:, 0], *self.cfg.agreement_factor)
        return [*cues, f.log10().unsqueeze(1)], (*moments, (f,))

    def _agreement(self, grad: Tensor, state: LSTMState) -> Tensor:
        """(N, 1): sign(∇_t · m_t−1) with m at the shortest decay: +1 where this gradient agrees in sign with the
        recent ones, −1 where it turns, 0 at the first step; the cue by which delta-bar-delta (Jacobs 1988) and
        Rprop grow and shrink each coordinate's step. A constant of the meta-gradient (the sign's derivative is 0)."""
        shortest = min(range(len(self.cfg.moments)), key=lambda i: self.cfg.moments[i])
        return torch.sign(grad.detach() * state.m[shortest].detach()).unsqueeze(1)

    def _moment_features(self, grad: Tensor, state: LSTMState) -> tuple[Tensor, tuple]:
        """The moment inputs (N, 1 + len(moments)): ∇/√v̂ and m̂_β/√v̂ per decay, and the moments' next state."""
        g = grad.detach() if not torch.is_grad_enabled() else grad
        t = state.t[0] + 1
        b2 = self.cfg.second_moment
        v = b2 * state.v[0] + (1 - b2) * g * g
        # clamped at float's tiniest so that √ is never differentiated at 0 (second-order meta-gradients: 0 · ∞ is
        # NaN); √tiny is far below moment_eps, so the features are unchanged
        root = (v / (1 - b2 ** t)).clamp_min(torch.finfo(v.dtype).tiny).sqrt() + self.cfg.moment_eps
        ms = tuple(b * m + (1 - b) * g for b, m in zip(self.cfg.moments, state.m))
        feats = [g / root] + [m / (1 - b ** t) / root for b, m in zip(self.cfg.moments, ms)]
        return torch.stack(feats, dim=1), (ms, (v,), (t,))

    def split_state(self, state: LSTMState, params: Params) -> dict[str, LSTMState]:
        """Each parameter's share of ``state`` (views of its rows), for keeping per-parameter state."""
        out, start = {}, 0
        for name, t in params.items():
            n = t.numel()
            out[name] = state.rows(start, start + n)
            start += n
        return out

    def join_state(self, parts: dict[str, LSTMState], params: Params) -> LSTMState:
        """The state of ``params`` from each parameter's share (the inverse of ``split_state``; one copy)."""
        return LSTMState.cat([parts[name] for name in params])

    def _average(self, h: Tensor, problems: tuple[Tensor, Tensor] | None) -> Tensor:
        """The first ``gac`` units of h replaced by their mean over the coordinates of each optimizee."""
        k = self.cfg.gac
        if problems is None:
            mean = h[:, :k].mean(0, keepdim=True).expand(h.shape[0], k)
        else:
            index, counts = problems
            sums = h.new_zeros(counts.shape[0], k).index_add(0, index, h[:, :k])
            mean = (sums / counts.unsqueeze(1).to(h.dtype))[index]
        return torch.cat([mean, h[:, k:]], dim=1)

    def problem_index(self, grads: Params) -> tuple[Tensor, Tensor]:
        """For the flat layout of ``grads`` (tensor after tensor; the first axis of each is the problem axis):
        each coordinate's problem (N,) and each problem's number of coordinates (B,). Cached per shapes."""
        key = tuple((tuple(t.shape), t.device) for t in grads.values())
        cache = self.__dict__.setdefault("_problem_index", {})
        if key not in cache:
            first = next(iter(grads.values()))
            B = first.shape[0]
            device = first.device
            index = torch.cat([torch.arange(B, device=device).repeat_interleave(t[0].numel()) for t in grads.values()])
            counts = torch.bincount(index, minlength=B)
            cache.clear()  # one layout at a time: meta-training, validation and deployment each keep theirs
            cache[key] = (index, counts)
        return cache[key]

    def update(self, grads: Params, state: LSTMState, *, inplace: bool = False) -> tuple[Params, LSTMState]:
        flat = flatten(grads)
        if flat.shape[0] != state.h[0].shape[0]:
            raise ValueError(
                f"the gradients have {flat.shape[0]} coordinates but the LSTM state has "
                f"{state.h[0].shape[0]} rows; was the state made by init() for these parameters?"
            )
        problems = self.problem_index(grads) if self.cfg.gac else None
        update, state = self.step_flat(flat, state, out=state if inplace else None, problems=problems)
        return unflatten(update, grads), state
