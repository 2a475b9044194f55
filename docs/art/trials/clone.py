"""Teach the factor-recipe LSTM the sign-agreement rule by behaviour cloning, then hand it to `l2o art --init-from`.

The teacher is Adam's step (lr 0.316, tuned) × f^0.7 (`l2o.rules.SignAgreement`; 0.7 the best power on the
validation images, dbd_path.txt). It runs on training problems (the train split, 64×64, the training style); along
its runs, the LSTM's inputs (the agreement cue, log₁₀ f and the moment features, as `--lstm-agreement
--lstm-agreement-factor 1.2 0.5` gives them) are recorded for a random subset of pixels, with the teacher's log factor
0.7 ln f as the target. The LSTM (the factor recipe: its factor is exp(2.3 tanh(W h + b))) is then fitted to those
sequences by Adam on the squared error of the log factors, back-propagating through the 128 steps: supervised
learning, with no optimizee in the loop, so thousands of fits cost what a few meta-training episodes do.

Usage: python docs/art/trials/clone.py OUT.safetensors [--problems 8] [--pixels 4096] [--iterations 300]. Prints the
fit's error as it goes; about 5 minutes on one core."""
import argparse
import math
import time
from dataclasses import asdict

import torch
from room import SETTINGS, TUNED

from l2o.checkpoint import save_rule
from l2o.rules import Adam, LSTMConfig, LSTMRule, LSTMState, SignAgreement
from l2o.rules.lstm import flatten
from l2o.tasks.registry import make_family

torch.set_num_threads(1)
POWER = 0.7
CONFIG = LSTMConfig(moments=(0.5, 0.9, 0.99, 0.999), gradient_input=False, direct=True, output_scale=TUNED,
                    output_init=0.0, learn_direct=False, correction="scale", correction_scale=2.3, agreement=True,
                    agreement_factor=(1.2, 0.5))


def record(problems: int, pixels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (128, pixels, I), targets (128, pixels)) along the teacher's runs on training problems."""
    task = make_family("art", **asdict(SETTINGS["train64"])).sample("train", seed, problems)
    rule = LSTMRule(CONFIG, implementation="torch")
    teacher = SignAgreement(Adam(TUNED), *CONFIG.agreement_factor, power=POWER)
    params = task.init_params()
    state, taught = rule.init(params), teacher.init(params)
    pick = torch.randperm(sum(p.numel() for p in params.values()), generator=torch.Generator().manual_seed(seed))
    pick = pick[:pixels]
    xs, ys = [], []
    for t in range(128):
        live = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = task.loss(live, t).sum()
        grads = dict(zip(live, torch.autograd.grad(loss, list(live.values()))))
        with torch.no_grad():
            x, history = rule._features(flatten(grads), state)
            state = LSTMState(state.h, state.c, *history)
            updates, taught = teacher.update(grads, taught)
            xs.append(x[pick])
            ys.append(POWER * flatten(taught.f).log()[pick])
            params = {k: params[k] + updates[k] for k in params}
    return torch.stack(xs), torch.stack(ys)


def fit(rule: LSTMRule, xs: torch.Tensor, ys: torch.Tensor, iterations: int, lr: float = 0.01) -> float:
    """Fit the rule's log factor κ tanh(W h + b) to ``ys`` along ``xs``; the final root-mean-squared error."""
    opt = torch.optim.Adam(rule.parameters(), lr=lr)
    kappa = rule.cfg.correction_scale
    for i in range(iterations):
        h = [torch.zeros(xs.shape[1], rule.cfg.hidden_size) for _ in rule.cells]
        c = [torch.zeros_like(h[0]) for _ in rule.cells]
        error = 0.0
        for t in range(xs.shape[0]):
            inp = xs[t]
            for k, cell in enumerate(rule.cells):
                h[k], c[k] = cell(inp, (h[k], c[k]))
                inp = h[k]
            predicted = kappa * torch.tanh(rule.out(inp).squeeze(-1))
            error = error + (predicted - ys[t]).pow(2).mean()
        error = error / xs.shape[0]
        opt.zero_grad()
        error.backward()
        opt.step()
        if i % 25 == 0 or i == iterations - 1:
            print(f"iteration {i:4d}  rms error of the log factor {math.sqrt(float(error.detach())):.4f}", flush=True)
    return math.sqrt(float(error.detach()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=4096)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.time()
    torch.manual_seed(args.seed)
    xs, ys = record(args.problems, args.pixels, args.seed)
    print(f"recorded {xs.shape[1]} pixels x {xs.shape[0]} steps ({time.time() - t0:.0f} s); target log factor: mean "
          f"{ys.mean():.3f}, sd {ys.std():.3f}", flush=True)
    rule = LSTMRule(CONFIG, implementation="torch")
    with torch.no_grad():  # start the output layer at the scale of the other rules' (output_init 0 leaves it at zero)
        rule.out.weight.normal_(0, 0.1)
    fit(rule, xs, ys, args.iterations)
    save_rule(args.out, rule)
    print(f"saved {args.out} ({time.time() - t0:.0f} s)")
