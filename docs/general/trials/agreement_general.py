"""Sign agreement (`l2o.rules.SignAgreement`, delta-bar-delta's per-coordinate factor) as a late-run rate finder
for `general`, over 10,000 steps on **validation** problems of the mixture's members and of the conv net.

The question: `general`'s late step is Adam's at lr 0.01, three times the conv net's best rate and ten times the
unseen tanh MLP's. Each coordinate's factor f grows (× up) while its gradient keeps its sign and shrinks (× down)
where it turns, within [0.1, 10]; it settles where the signs agree a fraction log(1/down) / log(up/down) of the
steps (0.79 for 1.2 / 0.5). Where a rate is too large the gradients turn back and forth and f comes down; where
the gradient keeps its direction f goes up. Does a rule times f^power find each task's late rate?

Usage: python docs/general/trials/agreement_general.py MEMBER [NAME ...] (MEMBER: one of the mixture's members,
e.g. mlp_relu, mlp_sigmoid, fashion_relu, mlp_deep_tanh, conv_fashion; NAME: the candidates below, all by
default); 4 validation problems (2 for the conv net); output appended to agreement_general.txt beside this file
by the caller (the lines are printed)."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import compare, lstm_alone  # noqa: E402

from l2o.rules import Adam, SignAgreement  # noqa: E402

torch.set_num_threads(1)


def agreement(rule, power, up=1.2, down=0.5, decay=0.5):
    return lambda: SignAgreement(rule(), up=up, down=down, power=power, decay=decay)


CANDIDATES = {
    "adam_.01": lambda: Adam(0.01),
    "adam_.003": lambda: Adam(0.003),
    "adam_.001": lambda: Adam(0.001),
    "general": lambda: lstm_alone(),
    "adam_.01_agr1": agreement(lambda: Adam(0.01), 1.0),
    "adam_.01_agr.5": agreement(lambda: Adam(0.01), 0.5),
    "adam_.01_agr1_d.9": agreement(lambda: Adam(0.01), 1.0, decay=0.9),
    "adam_.01_agr1_slow": agreement(lambda: Adam(0.01), 1.0, up=1.02, down=0.95),
    "adam_.003_agr1": agreement(lambda: Adam(0.003), 1.0),
    "general_agr1": agreement(lambda: lstm_alone(), 1.0),
    "general_agr.5": agreement(lambda: lstm_alone(), 0.5),
}


def factors(rule, run) -> str:
    """The factors at the end: their geometric mean over all coordinates, and its 10th and 90th percentiles."""
    if not isinstance(rule, SignAgreement):
        return ""
    logs = torch.cat([f.log10().flatten() for f in run.state.f.values()])
    return f"  final log10 f mean {logs.mean():.2f} (10%-90%: {logs.quantile(0.1):.2f} {logs.quantile(0.9):.2f})"


if __name__ == "__main__":
    member, names = sys.argv[1], sys.argv[2:] or list(CANDIDATES)
    compare(member, names, CANDIDATES, factors, width=19)
