"""The readings of a 10,000-step tail that spikes.py and fade-full/tail_check.py print: the mean loss over the last
1,000 steps (the headline of docs/long), the median over problems of that window, and the largest mean loss of a
10-step window in it (a spike)."""
import torch


def tail(losses) -> str:
    """``losses``: (steps + 1, problems), a run of at least 1,000 steps."""
    last = torch.as_tensor(losses)[-1000:]
    windows = last.mean(1).reshape(100, 10).mean(1)
    return (f"mean last 1000 {last.mean():.3g}  median over problems {last.mean(0).median():.3g}  "
            f"largest 10-step window {windows.max():.3g}")
