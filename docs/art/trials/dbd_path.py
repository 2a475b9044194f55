"""Why meta-training does not find the sign-agreement gain: the loss along the straight path from tuned Adam to
Adam's step × the delta-bar-delta factor. The rule is Adam's step (lr 0.316, tuned) × f^α (`l2o.rules.SignAgreement`),
with each pixel's f multiplied by 1.2 where ∇_t and the momentum at decay 0.5 agree in sign and by 0.5 where they
turn, within [0.1, 10] (what `--lstm-agreement-factor 1.2 0.5` gives the LSTM as log₁₀ f). α = 0 is tuned Adam,
the meta-trained rules' start; α = 1 is the hand-made rule of room.py (with the momentum in place of the last
gradient).

Usage: python docs/art/trials/dbd_path.py train64|new128 [ALPHA ...]; the validation problems meta-training's
validation uses (4), the mean of the log loss at step 128 (its measure) and the mean loss. The lines are printed,
the caller writes them to dbd_path.txt beside this file. About 10 s per α at 64×64 on one core."""
import sys
import time
from dataclasses import asdict

import torch
from room import SETTINGS, TUNED

from l2o.meta.unroll import unroll
from l2o.rules import Adam, SignAgreement
from l2o.tasks.registry import make_family

torch.set_num_threads(1)

if __name__ == "__main__":
    setting, alphas = sys.argv[1], [float(a) for a in sys.argv[2:]] or [0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0]
    task = make_family("art", **asdict(SETTINGS[setting])).sample("validation", 0, 4)
    for alpha in alphas:
        t0 = time.time()
        with torch.no_grad():
            final = torch.as_tensor(unroll(SignAgreement(Adam(TUNED), 1.2, 0.5, alpha), task, 128).losses)[-1]
        print(f"{setting:8s} alpha {alpha:<5} step 128: mean log loss {final.log().mean():.5f}  mean loss "
              f"{final.mean():.5f}  ({time.time() - t0:.0f} s)", flush=True)
