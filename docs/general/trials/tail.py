"""The readings of a 10,000-step tail that spikes.py and fade-full/tail_check.py print: the mean loss over the last
1,000 steps (the headline of docs/long), the median over problems of that window, and the largest mean loss of a
10-step window in it (a spike); ``lstm_alone``, the LSTM of `general` that the trials compare; and ``compare``, the 10,000-step comparison on validation problems that
plateau_general.py, agreement_general.py and spike_cut.py run."""
import time
from pathlib import Path

import torch

from l2o.checkpoint import load_rule
from l2o.experiments.general import MEMBERS
from l2o.meta.unroll import unroll


def lstm_alone():
    """`general`'s meta-trained LSTM without the SpikeCut it is shipped in: the run it was exported from
    (docs/general/train/general), what these trials ran as `general` before it was wrapped."""
    return load_rule(Path(__file__).parents[1] / "train" / "general")


def tail(losses) -> str:
    """``losses``: (steps + 1, problems), a run of at least 1,000 steps."""
    last = torch.as_tensor(losses)[-1000:]
    windows = last.mean(1).reshape(100, 10).mean(1)
    return (f"mean last 1000 {last.mean():.3g}  median over problems {last.mean(0).median():.3g}  "
            f"largest 10-step window {windows.max():.3g}")


def compare(member: str, names: list[str], candidates: dict, extra=lambda rule, run: "", width: int = 16) -> None:
    """Run each named candidate rule (``candidates[name]()``) for 10,000 steps on validation problems of the general
    mixture's ``member`` (4; 2 for the conv net) and print its tail and its windows of 1,000 steps, plus
    ``extra(rule, run)``."""
    problems = 2 if member.startswith("conv") else 4
    task = MEMBERS[member][0](None).sample("validation", 0, problems)
    for name in names:
        t0 = time.time()
        rule = candidates[name]()
        with torch.no_grad():
            run = unroll(rule, task, 10_000)
        L = torch.as_tensor(run.losses)
        windows = " ".join(f"{L[a:a + 1000].mean():.3g}" for a in range(1, 10_000, 1000))
        print(f"{member:13s} {name:{width}s} {tail(L)}  windows of 1000: {windows}{extra(rule, run)}  "
              f"({time.time() - t0:.0f} s)", flush=True)
