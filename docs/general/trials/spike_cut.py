"""A rule's steps halved, per problem, each time its gradient spikes: does that give `general` a late rate that
suits the conv net without costing the MLPs? On **validation** problems of the mixture's members and of the conv
net, 10,000 steps.

Why: the conv net's and the 2-layer tanh MLP's tails at Adam's lr 0.01 (`general`'s late step) are spikes, a few
hundred steps in which one problem's loss jumps by orders of magnitude (docs/general.md), while Adam's best rate on
the ReLU MLP, lr 0.01, has none. A spike shows in the gradient: per problem, the squared gradient norm averaged over
about 10 steps jumps far above its average over about 1,000. So: when that ratio passes ``threshold`` (after the
first ``warmup`` steps, and at most once per ``cooldown`` steps), multiply that problem's steps by ``factor`` from
then on. A rule that never spikes is never cut.

Usage: python docs/general/trials/spike_cut.py MEMBER [NAME ...] (MEMBER: one of the mixture's members, e.g.
mlp_relu, mlp_sigmoid, mlp_deep_tanh, fashion_relu, conv_fashion; NAME: the candidates below, all by default); 4
validation problems (2 for the conv net); output appended to spike_cut.txt beside this file by the caller."""
import math
import sys
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from tail import compare, lstm_alone  # noqa: E402

from l2o.rules import Adam, SpikeCut  # noqa: E402

torch.set_num_threads(1)


class CutState(NamedTuple):
    inner: Any
    count: Any  # (B,) steps seen
    fast: Any  # (B,) the squared gradient norm's moving average at decay 0.9 (not bias-corrected)
    slow: Any  # (B,) the same at 0.999
    since: Any  # (B,) steps since the last cut
    log_rate: Any  # (B,) the log of the factor on the rule's steps


class ProblemCut(nn.Module):
    """One reading (the whole gradient's squared norm) and one factor per problem. The per-tensor variant (each
    tensor its own reading and factor, what LearnedOptimizer's per-parameter state allows) is the library's
    ``l2o.rules.SpikeCut``, which this trial's first version matched step for step."""

    def __init__(self, rule, threshold=10.0, factor=0.5, warmup=1000, cooldown=500):
        super().__init__()
        self.rule, self.threshold, self.factor, self.warmup, self.cooldown = rule, threshold, factor, warmup, cooldown
        self.log_factor = math.log(factor)

    def init(self, params):
        zero = torch.zeros(next(iter(params.values())).shape[0])
        return CutState(self.rule.init(params), zero, zero, zero, zero + self.cooldown, zero)

    def update(self, grads, state, *, inplace=False):
        updates, inner = self.rule.update(grads, state.inner)
        g2 = sum(g.detach().reshape(g.shape[0], -1).float().pow(2).sum(1) for g in grads.values())
        count = state.count + 1
        fast = 0.9 * state.fast + 0.1 * g2
        slow = 0.999 * state.slow + 0.001 * g2
        ratio = (fast / (1 - 0.9 ** count)) / (slow / (1 - 0.999 ** count))
        cut = (count > self.warmup) & (ratio > self.threshold) & (state.since >= self.cooldown)
        since = torch.where(cut, torch.zeros_like(count), state.since + 1)
        log_rate = state.log_rate + cut.float() * self.log_factor
        out = {k: u * log_rate.exp().to(u.dtype).view(-1, *[1] * (u.dim() - 1)) for k, u in updates.items()}
        return out, CutState(inner, count, fast, slow, since, log_rate)


def cut(rule, threshold=10.0, per="problem"):
    return lambda: (ProblemCut if per == "problem" else SpikeCut)(rule(), threshold)


CANDIDATES = {
    "adam_.01": lambda: Adam(0.01),
    "adam_.003": lambda: Adam(0.003),
    "general": lambda: lstm_alone(),
    "adam_.01_cut10": cut(lambda: Adam(0.01), 10.0),
    "adam_.01_cut30": cut(lambda: Adam(0.01), 30.0),
    "general_cut10": cut(lambda: lstm_alone(), 10.0),
    "general_cut30": cut(lambda: lstm_alone(), 30.0),
    "general_cut10_t": cut(lambda: lstm_alone(), 10.0, per="tensor"),
}


def cuts(rule, run) -> str:
    """How many cuts each problem (or each problem's tensors) took."""
    if isinstance(rule, SpikeCut):
        counts = torch.stack(list(rule.cuts(run.state).values()), 1)  # (B, tensors)
        return "  cuts per tensor " + "; ".join(" ".join(str(c) for c in row) for row in counts.tolist())
    if not isinstance(rule, ProblemCut):
        return ""
    counts = (run.state.log_rate / rule.log_factor).round().int()
    return "  cuts per problem " + " ".join(str(c) for c in counts.tolist())


if __name__ == "__main__":
    member, names = sys.argv[1], sys.argv[2:] or list(CANDIDATES)
    compare(member, names, CANDIDATES, cuts, width=16)
