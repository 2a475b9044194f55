"""A meta-training process for tests/test_distributed.py, started by torchrun: a small quadratic run into OUT,
resumed if OUT has a checkpoint (as --resume auto). With KILL_MARKER, the process of rank 1 kills itself
(SIGKILL) once, after the validation of episode KILL_AT, before that episode's checkpoint."""

import os
import signal
import sys
from pathlib import Path

from l2o.meta import distributed
from l2o.meta.train import TrainConfig, meta_train
from l2o.rules.lstm import LSTMRule
from l2o.tasks.quadratic import QuadraticFamily

CONFIG = TrainConfig(episodes=8, horizon=20, unroll=5, problems=6, val_every=2, val_problems=6, checkpoint_every=4,
                     param_scale_spread=2.0, meta_lr=3e-3, seed=3)


def main(out: str, marker: str | None = None, kill_at: int = 6) -> None:
    world, device = distributed.setup("cpu", threads=1)

    def on_validate(state):
        if marker and world.rank == 1 and state.episode == kill_at and not Path(marker).exists():
            Path(marker).write_text(f"killed rank 1 (pid {os.getpid()}) after episode {state.episode}\n")
            os.kill(os.getpid(), signal.SIGKILL)

    meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=0.1), CONFIG, out, resume="auto",
               progress=False, on_validate=on_validate, device=device)
    distributed.teardown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
