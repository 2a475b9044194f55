"""Which part of a meta-trained direct-term art rule breaks it: the rule of a run folder's last state
(``state.safetensors``) run as trained, with its LSTM part removed (d alone), and with d put back at Adam's step
(the LSTM's correction alone), on 2 validation images for 128 steps; the mean loss at chosen steps.

    python docs/art/trials/diagnose.py docs/art/trials/direct-correction-0.1
    python docs/art/trials/diagnose.py docs/art/direct/train
"""

import json
import sys

import torch
from safetensors.torch import load_file

from l2o.meta.unroll import unroll
from l2o.rules.lstm import LSTMConfig, LSTMRule
from l2o.tasks.registry import make_family

STEPS = (0, 1, 2, 4, 8, 16, 32, 64, 96, 128)


def main(folder: str) -> None:
    torch.set_num_threads(1)
    cfg = json.load(open(f"{folder}/config.json"))
    family = make_family("art", **{k: v for k, v in cfg["task"].items() if k != "name"})
    task = family.sample("validation", 0, 2)
    weights = {k[5:]: v for k, v in load_file(f"{folder}/state.safetensors").items() if k.startswith("rule.")}
    adam = torch.zeros_like(weights["direct"])
    adam[2] = -1.0  # the momentum at 0.9 (decays 0.5, 0.9, 0.99, 0.999)

    def no_lstm(r):
        r.out.weight.zero_()
        r.out.bias.zero_()

    variants = {"Adam (the untrained rule)": lambda r: (no_lstm(r), r.direct.copy_(adam)),
                "as trained": lambda r: None,
                "d alone (LSTM part removed)": no_lstm,
                "LSTM part with Adam's d": lambda r: r.direct.copy_(adam)}
    print("mean loss at steps", STEPS)
    with torch.no_grad():
        for name, change in variants.items():
            rule = LSTMRule(LSTMConfig(**{k: v for k, v in cfg["rule"].items() if k != "name"}))
            rule.load_state_dict(weights)
            change(rule)
            losses = unroll(rule.eval(), task, 128).losses.mean(1)
            print(f"{name:30s}", " ".join(f"{float(losses[s]):.4f}" for s in STEPS), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
