"""The shipped `general` inside `l2o.rules.Plateau` variants, over 10,000 steps on **validation** problems of the
mixture's members and of the conv net (the long suite's test problems are not used to choose among them).

The question: which controller keeps `general`'s steps where the gradient keeps shrinking (the ReLU MLP, where any
cut costs) and cuts them where a task wants a smaller late rate (the conv net, the unseen tanh MLP)? On the long
suite's test problems the defaults (per tensor, against the least value, patience 2) cost the ReLU MLP 1.18×; a
spike (a few hundred steps of a larger loss) leaves the gradient above its pre-spike least value for two checks and
so counts as a plateau. ``reference="last"`` compares with the last check instead.

Usage: python docs/general/trials/plateau_general.py MEMBER [NAME ...] (MEMBER: one of the mixture's members,
e.g. mlp_relu, mlp_sigmoid, fashion_relu, mlp_deep_tanh, conv_fashion; NAME: the candidates below, all by
default); 4 validation problems (2 for the conv net, whose steps cost about ten times an MLP's); output appended
to plateau_general.txt beside this file by the caller (the lines are printed)."""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import tail  # noqa: E402

from l2o.checkpoint import load_rule  # noqa: E402
from l2o.experiments.general import MEMBERS  # noqa: E402
from l2o.meta.unroll import unroll  # noqa: E402
from l2o.rules import Adam, Plateau  # noqa: E402

torch.set_num_threads(1)

CANDIDATES = {
    "general": lambda: load_rule("general"),
    "plateau_least": lambda: Plateau(load_rule("general")),  # the defaults (the long suite's check: 1.18x on ReLU)
    "plateau_last": lambda: Plateau(load_rule("general"), reference="last"),
    "adam_.01": lambda: Adam(0.01),
    "adam_.003": lambda: Adam(0.003),
    "adam_.001": lambda: Adam(0.001),
}

if __name__ == "__main__":
    member, names = sys.argv[1], sys.argv[2:] or list(CANDIDATES)
    problems = 2 if member.startswith("conv") else 4
    task = MEMBERS[member][0](None).sample("validation", 0, problems)
    for name in names:
        t0 = time.time()
        rule = CANDIDATES[name]()
        with torch.no_grad():
            run = unroll(rule, task, 10_000)
        L = torch.as_tensor(run.losses)
        extra = ""
        if isinstance(rule, Plateau):  # cuts per problem, one number per tensor (log2 of its rate's inverse)
            rates = rule.rates(run.state)
            cuts = torch.stack([-torch.log2(r) for r in rates.values()], 1).round().int()
            extra = "  cuts per tensor " + "; ".join(" ".join(str(c) for c in row) for row in cuts.tolist())
        windows = " ".join(f"{L[a:a + 1000].mean():.3g}" for a in range(1, 10_000, 1000))
        print(f"{member:13s} {name:16s} {tail(L)}  windows of 1000: {windows}{extra}  ({time.time() - t0:.0f} s)",
              flush=True)
