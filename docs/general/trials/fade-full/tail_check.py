"""`fade-full`'s best weights with another tail: its rule's settings overridden at evaluation (the weights unchanged),
10,000 steps on the long suite's 8 held-out test problems of the MNIST MLP (sigmoid or ReLU). Late in a run the rule
is Adam (lr = output_scale, ε = moment_eps, β2 = second_moment), whose spikes decide the sigmoid MLP's headline;
this asks which tail keeps the learned start's lead on both MLPs. Prints the mean loss over the last 1,000 steps
(the headline of docs/long), the median over problems of that window and its largest 10-step window (a spike).
Usage: python docs/general/trials/fade-full/tail_check.py sigmoid|relu [KEY=VALUE,KEY=VALUE ...]
(e.g. moment_eps=1e-4; none: as trained). About 7 minutes a run on one core; output in tail_check.txt."""
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig

sys.path.insert(0, str(Path(__file__).parents[1]))
from tail import tail  # noqa: E402

torch.set_num_threads(1)
act = sys.argv[1]
task = ImageMLPFamily(MLPConfig(activation=act)).sample("test", 0, 8)
for spec in sys.argv[2:] or [""]:
    rule = checkpoint.load_rule("docs/general/trials/fade-full/train/general").eval()
    changes = {k: float(v) for k, v in (kv.split("=") for kv in spec.split(",") if kv)}
    rule.cfg = replace(rule.cfg, **changes)
    t0 = time.time()
    with torch.no_grad():
        losses = unroll(rule, task, 10000).losses
    print(f"{act:8s} {spec or 'as trained':28s} {tail(losses)}  ({time.time() - t0:.0f} s)", flush=True)
