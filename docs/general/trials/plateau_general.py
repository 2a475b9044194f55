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
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import compare, lstm_alone  # noqa: E402

from l2o.rules import Adam, Plateau  # noqa: E402

torch.set_num_threads(1)

CANDIDATES = {
    "general": lambda: lstm_alone(),
    "plateau_least": lambda: Plateau(lstm_alone()),  # the defaults (the long suite's check: 1.18x on ReLU)
    "plateau_last": lambda: Plateau(lstm_alone(), reference="last"),
    "adam_.01": lambda: Adam(0.01),
    "adam_.003": lambda: Adam(0.003),
    "adam_.001": lambda: Adam(0.001),
}


def cuts(rule, run) -> str:
    """Cuts per problem, one number per tensor (log2 of its rate's inverse)."""
    if not isinstance(rule, Plateau):
        return ""
    rates = rule.rates(run.state)
    cut = torch.stack([-torch.log2(r) for r in rates.values()], 1).round().int()
    return "  cuts per tensor " + "; ".join(" ".join(str(c) for c in row) for row in cut.tolist())


if __name__ == "__main__":
    member, names = sys.argv[1], sys.argv[2:] or list(CANDIDATES)
    compare(member, names, CANDIDATES, cuts)
