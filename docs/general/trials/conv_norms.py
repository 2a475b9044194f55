"""Where `general` and Adam (lr 0.003, the conv net's best fixed rate) part on the conv net: each problem's loss (the
mean over windows of 250 steps) and the norms of its weight tensors, on 4 **validation** problems of the conv net.

conv{0,1,2}.weight and fc0.weight each feed a batch normalisation without a scale, so their norm sets their angular
step (Adam's per-coordinate step of about lr turns such a tensor by about lr·√n/|w|); out.weight does not.

Usage: python docs/general/trials/conv_norms.py general|adam.003|adam.01 STEPS [WINDOW] (WINDOW 250 by default); the
lines are printed, the caller writes them to conv_norms.txt beside this file. About 2 minutes per 1,000 steps on
one core."""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tail import lstm_alone  # noqa: E402

from l2o.experiments.general import MEMBERS  # noqa: E402
from l2o.meta.unroll import unroll  # noqa: E402
from l2o.rules import Adam  # noqa: E402

torch.set_num_threads(1)
RULES = {"general": lambda: lstm_alone().eval(), "adam.003": lambda: Adam(0.003), "adam.01": lambda: Adam(0.01)}

if __name__ == "__main__":
    name, steps = sys.argv[1], int(sys.argv[2])
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 250
    rule, task = RULES[name](), MEMBERS["conv_fashion"][0](None).sample("validation", 0, 4)
    params, state = task.init_params(), None
    weights = [k for k in params if k.endswith("weight")]
    print(name, {k: tuple(v.shape) for k, v in params.items()}, flush=True)
    t0 = time.time()
    for start in range(0, steps, window):
        with torch.no_grad():
            run = unroll(rule, task, window, params=params, state=state, start=start)
        params, state = run.params, run.state
        loss = torch.as_tensor(run.losses)[1:].mean(0)
        norms = " ".join(f"{k.split('.')[0]}:" + ",".join(f"{x:.3g}" for x in params[k].flatten(1).norm(dim=1).tolist())
                         for k in weights)
        print(f"{name} steps {start + 1}-{start + window} loss " + ",".join(f"{x:.3g}" for x in loss.tolist())
              + f"  norms {norms} ({time.time() - t0:.0f}s)", flush=True)
