"""Adam, or the shipped `general`, with one rate for the tensors that batch normalisation makes scale-invariant and
another for the rest, on the conv net over 10,000 steps: chosen on **validation** problems of the conv net, then
(``--test``) checked on the long suite's test problems.

The question: the conv net's best fixed Adam rate over 10,000 steps is 0.003 (docs/long), three times the 0.01 that
`general` becomes late in a run. Each of conv{0,1,2}.weight and fc0.weight feeds a batch normalisation, so the loss
does not change when it is scaled: its gradient is orthogonal to it, its norm grows under any step, and its angular
step under Adam shrinks like lr/|w|. Which tensors want the smaller rate? If it is one kind, a rule that tells the
kinds apart (the cosine between a tensor and its gradient is about 0 for the invariant ones) could give each its own.

Usage: python docs/general/trials/scale_invariant.py [--problems N | --test] [NAME ...] (the candidates below, all
by default); N validation problems of the conv net (default 2, the problems of plateau_general.py's Adam runs);
--test: the long suite's 8 test problems of the conv net (its Adam runs are in docs/long/tasks/conv). The lines are
printed; the caller appends them to scale_invariant.txt beside this file."""
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import lstm_alone, tail  # noqa: E402

from l2o.experiments.general import MEMBERS  # noqa: E402
from l2o.meta.unroll import unroll  # noqa: E402
from l2o.rules import Adam, Routed  # noqa: E402
from l2o.rules.scaled import ScaledRule  # noqa: E402

torch.set_num_threads(1)
INVARIANT = r"^(conv\d+|fc\d+)\.weight$"  # each feeds a batch normalisation without a scale


def split(si: float, rest: float, eps: float = 1e-8) -> Routed:
    return Routed({"si": Adam(si, eps=eps), "rest": Adam(rest, eps=eps)}, routes=[{"label": "si", "name": INVARIANT}],
                  default="rest")


def general(eps: float | None = None):
    """The shipped `general`; with ``eps``, its moments' ε changed (trained with 1e-5)."""
    rule = lstm_alone().eval()
    if eps is not None:
        rule.cfg = replace(rule.cfg, moment_eps=eps)
    return rule


def general_si(factor: float, eps: float | None = None, rest: float = 1.0) -> Routed:
    """`general`, its updates on the invariant tensors times ``factor`` and on the rest times ``rest`` (late in a
    run: Adam at 0.01 × factor and 0.01 × rest)."""
    rule = general(eps)  # one copy of the weights; each label keeps its own state
    return Routed({"si": ScaledRule(rule, factor) if factor != 1 else rule,
                   "rest": ScaledRule(rule, rest) if rest != 1 else rule},
                  routes=[{"label": "si", "name": INVARIANT}], default="rest")


CANDIDATES = {
    "si_.01_rest_.003": lambda: split(0.01, 0.003),
    "si_.003_rest_.01": lambda: split(0.003, 0.01),
    "si_.03_rest_.003": lambda: split(0.03, 0.003),
    "si_.01_rest_.001": lambda: split(0.01, 0.001),
    "si_.003_rest_.01_eps1e-5": lambda: split(0.003, 0.01, eps=1e-5),
    "general": general,
    "general_si_0.3": lambda: general_si(0.3),
    "general_si_0.3_eps1e-8": lambda: general_si(0.3, eps=1e-8),
    "general_rest_0.3": lambda: general_si(1.0, rest=0.3),
    "adam_.003": lambda: Adam(0.003),
    "adam_.01": lambda: Adam(0.01),
}

if __name__ == "__main__":
    args, problems, split_name = sys.argv[1:], 2, "validation"
    if args[:1] == ["--problems"]:
        problems, args = int(args[1]), args[2:]
    if args[:1] == ["--test"]:  # the long suite's 8 test problems of the conv net (docs/long/tasks/conv), once chosen
        problems, split_name, args = 8, "test", args[1:]
    names = args or list(CANDIDATES)
    task = MEMBERS["conv_fashion"][0](None).sample(split_name, 0, problems)
    for name in names:
        t0 = time.time()
        with torch.no_grad():
            run = unroll(CANDIDATES[name](), task, 10_000)
        L = torch.as_tensor(run.losses)
        per_problem = " ".join(f"{x:.3g}" for x in L[-1000:].mean(0).tolist())
        windows = " ".join(f"{L[a:a + 1000].mean():.3g}" for a in range(1, 10_000, 1000))
        print(f"conv_fashion  {problems} {split_name} problems  {name:18s} {tail(L)}  per problem {per_problem}  "
              f"windows of 1000: {windows}  ({time.time() - t0:.0f} s)", flush=True)
