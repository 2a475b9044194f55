"""Teach the factor-recipe LSTM the sign-agreement rule by behaviour cloning, then hand it to `l2o art --init-from`.

The teacher is Adam's step (lr 0.316, tuned) × f^0.7 (`l2o.rules.SignAgreement`; 0.7 the best power on the
validation images, dbd_path.txt). It runs on training problems (the train split, 64×64, the training style); along
its runs, the LSTM's inputs (the agreement cue, log₁₀ f and the moment features, as `--lstm-agreement
--lstm-agreement-factor 1.2 0.5` gives them) are recorded for a random subset of pixels, with the teacher's log factor
0.7 ln f as the target. The LSTM (the factor recipe: its factor is exp(2.3 tanh(W h + b))) is then fitted to those
sequences by Adam on the squared error of the log factors, back-propagating through the 128 steps: supervised
learning, with no optimizee in the loop, so thousands of fits cost what a few meta-training episodes do.

``--recipe paper`` teaches the same teacher to the paper's LSTM instead (the shipped `art`'s settings: the
log/sign-preprocessed gradient as its only input, its linear output × 1 as the step): the target is the teacher's
step itself, and the error of each step is divided by the mean square of the teacher's steps at that step, so the
late, small steps count as much as the first ones. ``--recipe paper-moments`` is the paper's LSTM with scale-free
inputs beside its log/sign-preprocessed gradient (∇/√v̂ and m̂/√v̂ at decays 0.5, 0.9, 0.99, 0.999, as `l2o art
--lstm-moments 0.5 0.9 0.99 0.999` gives them; still no Adam step inside it), taught the same way. ``--init art``
starts the fit from the shipped `art`'s weights (``--init PATH``: from a checkpoint of the same recipe, e.g. to fit
further); ``--cosine`` decays the fit's rate to 0 over the iterations. ``--dagger N`` then adds N rounds of DAgger
(Ross, Gordon and Bagnell 2011): the fitted LSTM runs on fresh training problems with the teacher stepping beside it
on the same gradients (its state follows the LSTM's trajectory), those inputs and the teacher's targets join the
data, and the fit goes on (4,096 random pixels of the data per iteration), so the LSTM learns the teacher's step
where its own errors take it.

Usage: python docs/art/trials/clone.py OUT.safetensors [--recipe factor|paper|paper-moments] [--init art|PATH]
[--problems 8] [--pixels 4096] [--iterations 300] [--lr 0.01] [--cosine] [--dagger N] [--dagger-iterations 300]
[--late 0] [--scale-spread 1]. Prints the fit's error as it goes; about 5 minutes on one core (each DAgger round of
300 iterations about 4 more)."""
import argparse
import math
import time
from dataclasses import asdict

import torch
from room import SETTINGS, TUNED

from l2o.checkpoint import load_rule, save_rule
from l2o.rules import Adam, LSTMConfig, LSTMRule, LSTMState, SignAgreement
from l2o.rules.lstm import flatten
from l2o.tasks.registry import make_family
from l2o.tasks.scaled import ScaledTask

torch.set_num_threads(1)
POWER = 0.7
CONFIG = LSTMConfig(moments=(0.5, 0.9, 0.99, 0.999), gradient_input=False, direct=True, output_scale=TUNED,
                    output_init=0.0, learn_direct=False, correction="scale", correction_scale=2.3, agreement=True,
                    agreement_factor=(1.2, 0.5))
PAPER = LSTMConfig(output_scale=1.0)  # the paper's recipe, as `l2o art` trains it (the shipped `art`)
# the paper's recipe with scale-free inputs beside its log/sign-preprocessed gradient: ∇/√v̂ and m̂/√v̂ at four decays
# (as `l2o art --lstm-moments 0.5 0.9 0.99 0.999 --lstm-output-scale 1`), no Adam step inside it
PAPER_MOMENTS = LSTMConfig(output_scale=1.0, moments=(0.5, 0.9, 0.99, 0.999))
RECIPES = {"factor": CONFIG, "paper": PAPER, "paper-moments": PAPER_MOMENTS}


def record(problems: int, pixels: int, seed: int, config: LSTMConfig = CONFIG, student: LSTMRule | None = None,
           spread: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (128, pixels, I), targets (128, pixels)) along the teacher's runs on training problems (``student``:
    along its runs, the teacher stepping beside it): for the factor recipe (``config`` CONFIG) the teacher's log
    factor, for the paper's (PAPER, PAPER_MOMENTS) its step. ``spread`` s: each problem's loss is multiplied by a
    factor c drawn log-uniformly from [1/s, s] (as `l2o art --scale-spread`), so its gradients are too; the
    teacher's step does not change with c."""
    task = make_family("art", **asdict(SETTINGS["train64"])).sample("train", seed, problems)
    if spread > 1:  # drawn in float32, not by l2o.tasks.scaled.log_uniform_scales (float64): clone-scaled's draws
        draw = torch.rand(problems, generator=torch.Generator().manual_seed(10_000 + seed))
        task = ScaledTask(task, torch.exp((2 * draw - 1) * math.log(spread)))
    rule = LSTMRule(config, implementation="torch")
    teacher = SignAgreement(Adam(TUNED), *CONFIG.agreement_factor, power=POWER)
    params = task.init_params()
    state, taught = rule.init(params), teacher.init(params)
    own = student.init(params) if student is not None else None
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
            ys.append((POWER * flatten(taught.f).log() if config.direct else flatten(updates))[pick])
            if student is not None:
                updates, own = student.update(grads, own)
            params = {k: params[k] + updates[k] for k in params}
    return torch.stack(xs), torch.stack(ys)


def fit(rule: LSTMRule, xs: torch.Tensor, ys: torch.Tensor, iterations: int, lr: float = 0.01,
        cosine: bool = False, late: float = 0.0) -> float:
    """Fit the rule's log factor κ tanh(W h + b) (the factor recipe) or its step output_scale · (W h + b) (the
    paper's) to ``ys`` along ``xs``; the final root-mean-squared error (for the paper's, relative to the teacher's
    steps' root mean square at each step). ``late`` > 0 weights step t's error by (t + 1)^late, normalised to a mean
    weight of 1, so that the late steps, which set the final loss, count more."""
    opt = torch.optim.Adam(rule.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations) if cosine else None
    kappa, paper = rule.cfg.correction_scale, not rule.cfg.direct  # paper: the step is the LSTM's output
    all_xs, all_ys = xs, ys
    weight = torch.arange(1, xs.shape[0] + 1, dtype=torch.float32).pow(late)
    weight = weight / weight.mean()
    for i in range(iterations):
        if all_xs.shape[1] > 4096:  # a random batch of the recorded pixels
            cols = torch.randperm(all_xs.shape[1])[:4096]
            xs, ys = all_xs[:, cols], all_ys[:, cols]
        scale = ys.pow(2).mean(1) if paper else torch.ones(ys.shape[0])
        h = [torch.zeros(xs.shape[1], rule.cfg.hidden_size) for _ in rule.cells]
        c = [torch.zeros_like(h[0]) for _ in rule.cells]
        error = 0.0
        for t in range(xs.shape[0]):
            inp = xs[t]
            for k, cell in enumerate(rule.cells):
                h[k], c[k] = cell(inp, (h[k], c[k]))
                inp = h[k]
            out = rule.out(inp).squeeze(-1)
            predicted = rule.cfg.output_scale * out if paper else kappa * torch.tanh(out)
            error = error + weight[t] * (predicted - ys[t]).pow(2).mean() / scale[t]
        error = error / xs.shape[0]
        opt.zero_grad()
        error.backward()
        opt.step()
        if decay is not None:
            decay.step()
        if i % 25 == 0 or i == iterations - 1:
            what = "relative rms error of the step" if paper else "rms error of the log factor"
            print(f"iteration {i:4d}  {what} {math.sqrt(float(error.detach())):.4f}", flush=True)
    return math.sqrt(float(error.detach()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=4096)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", choices=tuple(RECIPES), default="factor")
    parser.add_argument("--init", default=None, help="art (the shipped one, --recipe paper) or a checkpoint's path")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--cosine", action="store_true")
    parser.add_argument("--dagger", type=int, default=0, help="rounds of DAgger after the first fit")
    parser.add_argument("--dagger-iterations", type=int, default=300)
    parser.add_argument("--late", type=float, default=0.0, help="weight step t's error by (t + 1)^late (0: uniform)")
    parser.add_argument("--scale-spread", type=float, default=1.0,
                        help="multiply each problem's loss by c ~ log-uniform[1/s, s] (1: off)")
    args = parser.parse_args()
    if args.init == "art" and args.recipe != "paper":
        parser.error("--init art needs --recipe paper (the shipped art is the paper's recipe)")
    if not args.scale_spread >= 1:
        parser.error(f"--scale-spread {args.scale_spread}: needs a number >= 1 (1: off)")
    config = RECIPES[args.recipe]
    t0 = time.time()
    torch.manual_seed(args.seed)
    xs, ys = record(args.problems, args.pixels, args.seed, config, spread=args.scale_spread)
    print(f"recorded {xs.shape[1]} pixels x {xs.shape[0]} steps ({time.time() - t0:.0f} s); target: mean "
          f"{ys.mean():.3g}, sd {ys.std():.3g}", flush=True)
    if args.init:
        rule = load_rule(args.init, implementation="torch")
        if rule.cfg != config:
            parser.error(f"--init {args.init}: its settings are not the {args.recipe} recipe's ({rule.cfg})")
    else:
        rule = LSTMRule(config, implementation="torch")
    if args.recipe == "factor" and not args.init:
        with torch.no_grad():  # start the output layer at the other rules' scale (output_init 0 leaves it at zero)
            rule.out.weight.normal_(0, 0.1)
    if args.iterations:
        fit(rule, xs, ys, args.iterations, args.lr, args.cosine, args.late)
    for r in range(args.dagger):
        more = record(args.problems, args.pixels, args.seed + 1 + r, config, student=rule, spread=args.scale_spread)
        xs, ys = torch.cat([xs, more[0]], 1), torch.cat([ys, more[1]], 1)
        print(f"DAgger round {r + 1}: {xs.shape[1]} pixels ({time.time() - t0:.0f} s)", flush=True)
        fit(rule, xs, ys, args.dagger_iterations, args.lr, args.cosine, args.late)
    save_rule(args.out, rule)
    print(f"saved {args.out} ({time.time() - t0:.0f} s)")
