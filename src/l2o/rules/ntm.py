"""NTM-BFGS and NTM-L-BFGS (Andrychowicz et al. 2016, Appendix D): a coordinatewise LSTM+GAC controller with
an external memory shared by the coordinates of one optimizee, as an inverse-Hessian analogue.

Per optimizee of n coordinates (``per_problem``: all its coordinates together, contiguous), at step t:

    i_t = M_t r_t                                           (one read per read head; i_t, r_t ∈ Rⁿ)
    (g_t, r_{t+1}, a_t, b_t) = controller(∇_t, i_t, h_t)     (per coordinate; 2 LSTM layers with GACs)
    θ_{t+1} = θ_t + g_t
    M_{t+1} = M_t + Σ_heads a_t b_tᵀ                         (one outer product per write head)

``memory="full"`` keeps M (n × n per optimizee, M_0 = 0; for small n such as the 10-d quadratics).
``memory="window"`` is **NTM-L-BFGS**: it keeps only the last ``window`` pairs (a, b) instead of M, so a
read is Σ_k a_k (b_k · r) at O(n · window) cost and memory; while fewer pairs than the window have been
written it equals the full memory exactly. With 1 read head, 3 write heads and 2 GACs (the defaults) the
paper argues it can simulate BFGS.

The state (controller, read keys, memory) is per problem when problems are vectorised, is detached at
truncation boundaries like any state, and through ``LearnedOptimizer`` is kept per parameter: the
windowed memory splits along its coordinates; the full memory, which does not, lives with the group's
first parameter and needs the group's parameters to keep their gradients (else: use the window).

References:
    Andrychowicz et al., "Learning to learn by gradient descent by gradient descent", NIPS 2016, App. D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from l2o.rules.base import from_per_problem, per_problem
from l2o.rules.lstm import reset_stack, run_cell
from l2o.rules.preprocess import log_sign
from l2o.tasks.base import Params

MEMORIES = ("full", "window")


@dataclass(frozen=True)
class NTMConfig:
    hidden_size: int = 20  # units per controller layer
    num_layers: int = 2  # controller layers
    gac: int = 2  # global averaging cells per layer (the paper's BFGS construction: 2)
    read_heads: int = 1  # reads i = M r per step (paper: 1)
    write_heads: int = 3  # outer products a bᵀ written per step (paper: 3)
    memory: str = "full"  # "full": M is n × n per optimizee; "window": the last `window` pairs (NTM-L-BFGS)
    window: int = 30  # pairs (a, b) kept by the windowed memory
    max_full: int = 4096  # the largest n the full memory accepts (n² floats per optimizee)
    preprocess: bool = True  # log/sign gradient preprocessing (paper App. A); off: raw gradient input
    p: float = 10.0  # preprocessing constant
    input_scale: float = 1.0  # multiplies the raw gradient when preprocess is off
    output_scale: float = 0.1  # multiplies the update g
    output_init: float = 0.1  # the output layer's initial weights are scaled by this
    head_init: float = 0.0  # initial scale of the read and write heads' weights; 0: output_init, as the step's
    squash: bool = False  # tanh on the read keys and write vectors, so the memory grows at most linearly
    read_scale: float = 1.0  # multiplies what is read (M r) before the controller sees it

    def __post_init__(self):
        if self.hidden_size < 1 or self.num_layers < 1 or self.read_heads < 1 or self.write_heads < 1:
            raise ValueError("hidden_size, num_layers, read_heads and write_heads must be >= 1")
        if not 0 <= self.gac <= self.hidden_size:
            raise ValueError(f"gac must be between 0 and hidden_size ({self.hidden_size}), got {self.gac}")
        if self.memory not in MEMORIES:
            raise ValueError(f"memory must be one of {MEMORIES}, got {self.memory!r}")
        if self.window < self.write_heads:
            raise ValueError(f"window ({self.window}) must hold at least one step's {self.write_heads} pairs")
        if self.p <= 0 or self.output_scale <= 0 or self.input_scale <= 0 or self.read_scale <= 0:
            raise ValueError("p, output_scale, input_scale and read_scale must be > 0")
        if self.head_init < 0:
            raise ValueError(f"head_init must be >= 0 (0: output_init), got {self.head_init}")


EXTENSIONS = {"head_init": 0.0, "squash": False, "read_scale": 1.0}  # beyond the paper's construction


class NTMState(NamedTuple):
    h: tuple[Tensor, ...]  # per layer (B·n, H), problem-major rows
    c: tuple[Tensor, ...]
    read: Tensor  # (B, n, R) the read keys r emitted at the last step
    a: Tensor  # full: M (B, n, n); window: (B, K, n) the last K written a's (oldest first)
    b: Tensor  # full: an empty (B, 0, n); window: (B, K, n) the matching b's


class NTMRule(nn.Module):
    """NTM-BFGS (``memory="full"``) or NTM-L-BFGS (``memory="window"``); an ``nn.Module`` whose parameters are φ."""

    name = "ntm"

    def __init__(self, config: NTMConfig | None = None, *, implementation: str = "auto", **overrides):
        super().__init__()
        self.cfg = config if config is not None else NTMConfig(**overrides)
        if implementation not in ("auto", "torch"):
            raise ValueError(f"NTM rules run on PyTorch only; implementation {implementation!r} is not available")
        H, L, R, W = self.cfg.hidden_size, self.cfg.num_layers, self.cfg.read_heads, self.cfg.write_heads
        inputs = (2 if self.cfg.preprocess else 1) + R
        self.cells = nn.ModuleList(nn.LSTMCell(inputs if i == 0 else H, H) for i in range(L))
        self.out = nn.Linear(H, 1 + R + 2 * W)  # g, the next read keys, the write vectors a and b
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_stack(self.cells, self.out, self.cfg.output_init)
        if self.cfg.head_init:  # the heads' rows (all but the step's) at their own scale
            with torch.no_grad():
                self.out.weight[1:].mul_(self.cfg.head_init / self.cfg.output_init)

    def load_controller(self, lstm: nn.Module) -> None:
        """Start from a trained LSTM (with as many averaging cells): its weights become the controller's, the
        read's input weights zero, so until the memory is used the steps are the LSTM's exactly."""
        theirs = getattr(lstm, "cfg", None)
        same = ("hidden_size", "num_layers", "gac", "preprocess", "p", "input_scale")
        if getattr(lstm, "name", None) != "lstm" or any(getattr(theirs, k, 0) != getattr(self.cfg, k) for k in same):
            raise ValueError(f"an NTM controller starts only from an LSTM with the same {', '.join(same)} "
                             f"({', '.join(f'{k}={getattr(self.cfg, k)}' for k in same)}); got "
                             f"{lstm.config() if hasattr(lstm, 'config') else type(lstm).__name__}")
        inputs = 2 if self.cfg.preprocess else 1
        with torch.no_grad():
            for mine, src in zip(self.cells, lstm.cells):
                mine.weight_ih.zero_()
                mine.weight_ih[:, :src.weight_ih.shape[1]] = src.weight_ih
                for name in ("weight_hh", "bias_ih", "bias_hh"):
                    getattr(mine, name).copy_(getattr(src, name))
            assert self.cells[0].weight_ih.shape[1] == inputs + self.cfg.read_heads
            ratio = theirs.output_scale / self.cfg.output_scale
            self.out.weight[0] = lstm.out.weight[0] * ratio
            self.out.bias[0] = lstm.out.bias[0] * ratio

    def without_reads(self) -> "NTMRule":
        """A copy that ignores what it reads (the read's input weights zero): an ablation that says how much
        of this rule's performance comes through its memory."""
        copy = NTMRule(self.cfg)
        copy.load_state_dict(self.state_dict())
        with torch.no_grad():
            copy.cells[0].weight_ih[:, (2 if self.cfg.preprocess else 1):] = 0
        return copy.to(next(self.parameters()).device)

    def config(self) -> dict:
        settings = asdict(self.cfg)
        for name, default in EXTENSIONS.items():  # settings added later read as before while at their default
            if settings[name] == default:
                del settings[name]
        return {"name": self.name, **settings}

    def implementation_info(self) -> dict:
        return {"implementation": "torch", "kernel": None}

    def init(self, params: Params) -> NTMState:
        flat = per_problem(params)
        B, n = flat.shape
        if self.cfg.memory == "full" and n > self.cfg.max_full:
            raise ValueError(f"the full memory of NTM-BFGS is n × n = {n} × {n} per optimizee (more than max_full = "
                             f"{self.cfg.max_full} coordinates); use NTM-L-BFGS, memory='window' (the same weights: "
                             f"LearnedOptimizer(..., settings={{'memory': 'window'}}))")
        zeros = flat.new_zeros
        H, L, R = self.cfg.hidden_size, self.cfg.num_layers, self.cfg.read_heads
        if self.cfg.memory == "full":
            a, b = zeros(B, n, n), zeros(B, 0, n)
        else:
            a, b = zeros(B, self.cfg.window, n), zeros(B, self.cfg.window, n)
        return NTMState(tuple(zeros(B * n, H) for _ in range(L)), tuple(zeros(B * n, H) for _ in range(L)),
                        zeros(B, n, R), a, b)

    def read(self, state: NTMState) -> Tensor:
        """i = M r for every read head: (B, n, R)."""
        if self.cfg.memory == "full":
            return torch.einsum("bnm,bmr->bnr", state.a, state.read)
        return torch.einsum("bkn,bkr->bnr", state.a, torch.einsum("bkm,bmr->bkr", state.b, state.read))

    def write(self, state: NTMState, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """The memory after writing the pairs a, b (B, n, W)."""
        if self.cfg.memory == "full":
            return state.a + torch.einsum("bnw,bmw->bnm", a, b), state.b
        W = self.cfg.write_heads
        return (torch.cat([state.a[:, W:], a.transpose(1, 2)], dim=1),
                torch.cat([state.b[:, W:], b.transpose(1, 2)], dim=1))

    def update(self, grads: Params, state: NTMState, *, inplace: bool = False) -> tuple[Params, NTMState]:
        g = per_problem(grads)
        B, n = g.shape
        if state.read.shape[:2] != (B, n):
            raise ValueError(f"the gradients are {B} problems of {n} coordinates but the state is for "
                             f"{tuple(state.read.shape[:2])}; was it made by init() for these parameters?")
        R, W, k = self.cfg.read_heads, self.cfg.write_heads, self.cfg.gac
        grad = g.reshape(-1)
        x = log_sign(grad, self.cfg.p) if self.cfg.preprocess else (grad * self.cfg.input_scale).unsqueeze(-1)
        read = self.read(state).reshape(B * n, R)
        x = torch.cat([x, read * self.cfg.read_scale if self.cfg.read_scale != 1 else read], dim=1)
        hs, cs = [], []
        for cell, h, c in zip(self.cells, state.h, state.c):
            h, c = run_cell(cell, x, h, c)
            if k:  # global averaging cells: the mean over each optimizee's coordinates
                per = h.view(B, n, -1)
                h = torch.cat([per[..., :k].mean(1, keepdim=True).expand(B, n, k), per[..., k:]], -1).reshape(B * n, -1)
            hs.append(h)
            cs.append(c)
            x = h
        out = self.out(x).view(B, n, 1 + R + 2 * W)
        step = out[..., 0] * self.cfg.output_scale
        heads = torch.tanh(out[..., 1:]) if self.cfg.squash else out[..., 1:]
        read, a, b = heads[..., :R], heads[..., R:R + W], heads[..., R + W:]
        mem_a, mem_b = self.write(state, a, b)
        return from_per_problem(step, grads), NTMState(tuple(hs), tuple(cs), read, mem_a, mem_b)

    def split_state(self, state: NTMState, params: Params) -> dict[str, NTMState]:
        """Each parameter's share (views): its coordinates' rows, read keys and window columns; the full
        memory goes whole with the first parameter (the others hold an empty one)."""
        out, start = {}, 0
        names = list(params)
        for name, t in params.items():
            m = t[0].numel()
            rows = slice(start, start + m)  # B = 1 through LearnedOptimizer: problem-major rows are coordinates
            if self.cfg.memory == "full":
                a = state.a if name == names[0] else state.a[:, :0, :0]
                b = state.b
            else:
                a, b = state.a[:, :, rows], state.b[:, :, rows]
            out[name] = NTMState(tuple(h[rows] for h in state.h), tuple(c[rows] for c in state.c),
                                 state.read[:, rows], a, b)
            start += m
        return out

    def join_state(self, parts: dict[str, NTMState], params: Params) -> NTMState:
        ordered = [parts[name] for name in params]
        L = self.cfg.num_layers
        h = tuple(torch.cat([s.h[i] for s in ordered]) for i in range(L))
        c = tuple(torch.cat([s.c[i] for s in ordered]) for i in range(L))
        read = torch.cat([s.read for s in ordered], dim=1)
        if self.cfg.memory == "window":
            return NTMState(h, c, read, torch.cat([s.a for s in ordered], 2), torch.cat([s.b for s in ordered], 2))
        n = read.shape[1]
        memory = ordered[0].a
        if memory.shape[1:] != (n, n) and all(not bool(s.a.any()) for s in ordered):  # fresh: M_0 = 0
            memory = read.new_zeros(read.shape[0], n, n)
        if memory.shape[1:] != (n, n):
            raise ValueError("the full memory of NTM-BFGS is one n × n matrix for a fixed set of coordinates; "
                             "its parameters gained or lost a gradient (or the state is another group's): use "
                             "NTM-L-BFGS, memory='window', which keeps per-coordinate memory")
        return NTMState(h, c, read, memory, ordered[0].b)
