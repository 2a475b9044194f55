"""Neural art: where an optimisation step's time goes. One step of the art task is the feature network's forward
and backward (the loss and its pixel gradient); the optimizer's step comes after. Timed in the same run, at 64×64
(training) and 128×128 (the new-style test), for one and for two images side by side:

    feature net   the loss and gradient of the art task (multi-scale random network, or --network random|vgg19)
    LSTM          the learned optimizer's step on the gradient (no autograd: as at evaluation)
    LSTM, meta    the same step inside meta-training (autograd on: it keeps what the meta-gradient needs)
    adam          torch's Adam update on the same tensor

Generated images (the costs do not depend on the pixels).

    .venv/bin/python benchmarks/art_step.py [--sizes 64 128] [--problems 1 2] [--reps 5] [--threads 1]
        [--checkpoint NAME]

``--checkpoint`` times a shipped learned optimizer's step (e.g. art-agreement, whose LSTM also computes moment and
sign-agreement inputs) instead of the paper's rule (log/sign preprocessing, output scale 1: the shipped art's settings).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimizer_step import timed  # noqa: E402

from l2o.checkpoint import load_rule  # noqa: E402
from l2o.rules.lstm import LSTMConfig, LSTMRule  # noqa: E402
from l2o.tasks.art import NETWORKS, ArtConfig, ArtTask, network  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--problems", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--network", default="multiscale", choices=list(NETWORKS))
    parser.add_argument("--checkpoint", default="", help="a shipped optimizer or checkpoint to time (default: the "
                                                           "paper's rule, untrained)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rule = load_rule(args.checkpoint) if args.checkpoint else LSTMRule(LSTMConfig(preprocess=True, output_scale=1.0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.network} feature network; "
          f"{args.checkpoint or 'the paper rule'}'s LSTM computed by {rule.implementation}")
    print(f"{'size':>5} {'B':>2} {'pixels':>8} {'feature net ms':>15} {'LSTM ms':>8} {'LSTM, meta ms':>14} "
          f"{'adam ms':>8} {'net / LSTM':>11} {'net / LSTM, meta':>17}")
    for size in args.sizes:
        cfg = ArtConfig(size=size, network=args.network)
        net = network(cfg)
        for B in args.problems:
            content = torch.rand(B, 3, size, size, generator=gen)
            style = torch.rand(3, size, size, generator=gen)
            task = ArtTask(cfg, net, content, style, torch.rand(B, 3, size, size, generator=gen))
            image = task.init_params()["image"]
            grad = torch.randn_like(image)
            state = rule.init({"image": image})
            adam_param = image.clone().requires_grad_()
            adam_param.grad = grad.clone()
            adam = torch.optim.Adam([adam_param], lr=0.1)

            def feature_net():
                x = image.clone().requires_grad_()
                torch.autograd.grad(task.loss({"image": x}).sum(), x)

            def lstm():
                with torch.no_grad():
                    rule.update({"image": grad}, state)

            def lstm_meta():
                rule.update({"image": grad}, state)

            times = {"net": timed(feature_net, args.reps), "lstm": timed(lstm, args.reps),
                     "meta": timed(lstm_meta, args.reps), "adam": timed(adam.step, args.reps)}
            print(f"{size:>5} {B:>2} {image.numel():>8,} {times['net'] * 1e3:>15.1f} {times['lstm'] * 1e3:>8.2f} "
                  f"{times['meta'] * 1e3:>14.2f} {times['adam'] * 1e3:>8.2f} {times['net'] / times['lstm']:>10.0f}× "
                  f"{times['net'] / times['meta']:>16.0f}×")


if __name__ == "__main__":
    main()
