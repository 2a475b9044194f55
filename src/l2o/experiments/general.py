"""`general`: a learned optimizer meant to be left running, meta-trained on a mixture of tasks with the methods that
later work found to make learned optimizers stable over long horizons, and the ablation that says which mattered.

The mixture (``members``): MLPs on MNIST of several widths, depths and activations (sigmoid, ReLU, tanh), a ReLU
MLP on Fashion-MNIST and the paper's conv net on Fashion-MNIST; every problem's parameters rescaled per coordinate
(``param_scale_spread``); ``members`` meta-trains on some of them (by default the MLPs: the conv net's episodes are
the slowest by far; "all" adds it, and the shipped `general`'s LSTM was meta-trained so, with ``remat=50``). The
methods, each an option of meta-training or of the rule:

    moments      scale-free inputs: ∇/√v̂ and momenta m̂_β/√v̂ at several decays in place of the
                 gradient (RNNprop, Lv et al. 2017; Metz et al. 2022)                          rule.moments
    direct       Adam's step (lr 0.01) as the base of the update, so that the untrained rule is
                 Adam and the LSTM learns a correction to it (Metz et al. 2022): in the recipe
                 a per-coordinate factor exp(2.3 tanh(LSTM) · 100/(100 + t)) on it, fading
                 towards 1 (late in a run the rule is Adam, ε 1e-5)                            rule.direct
    curriculum   episodes lengthened by stage up to 1,000 steps (Chen et al. 2020), each
                 horizon rounded up to a multiple of the truncation                            train.curriculum
    imitation    the distance to Adam's updates as an extra meta-loss term (Chen et al. 2020)   train.imitate
    scaling      problems rescaled per coordinate                                              train.param_scale_spread
    warm_start   each episode's problems started where K ~ U{0…8000} steps of Adam (lr 0.01)
                 got to, so short truncations see the late regime of long runs (l2o.tasks.warm) train.warm_start
    pes          the meta-gradient by PES (Vicol et al. 2021; 8 antithetic pairs, σ 0.01) over
                 truncations of 25 steps, unbiased for the whole episode, in place of
                 back-propagating each whole episode                                         train.estimator

The recipe (the shipped `general`) uses moments, direct and scaling, meta-trained on whole 200-step episodes (one
truncation each: cutting them into truncations of 25 made every trial drift, docs/general.md); imitation is left
off, since the rule already starts as Adam, and so is the curriculum (the ablation's with_<method> measure them).
Switching moments off gives the 2016 rule's inputs (the preprocessed gradient) and no direct term.

``variants``: "general" (the recipe) and one per method with that method switched: "no_<method>" where the recipe
uses it, "with_<method>" where it does not; each meta-trained into
OUT/train/<variant> (resumable), then each run for ``check_steps`` steps on held-out problems of the paper's MNIST
MLP with sigmoid and with ReLU, beside Adam at the long suite's learning rates: OUT/ablation.md, summary.json.
The full 10,000-step comparison is `l2o long --learned general` once shipped (or `--learned OUT/train/general`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from l2o import checkpoint
from l2o.experiments import common
from l2o.experiments.long import LongConfig, cached_run, describe, own_result, slug
from l2o.meta.train import TrainConfig, meta_train
from l2o.plots import plot_history
from l2o.rules.baselines import Adam
from l2o.rules.lstm import LSTMConfig, LSTMRule
from l2o.tasks.conv import ConvConfig, ConvFamily
from l2o.tasks.mixture import MixtureFamily
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig

MOMENTS = (0.5, 0.9, 0.99, 0.999)  # the decays of the momentum inputs, where they are on
RULE = LSTMConfig(moments=MOMENTS, gradient_input=False, direct=True, output_scale=0.01, output_init=0.0,
                  learn_direct=False, correction="scale", correction_scale=2.3, correction_decay=100.0,
                  moment_eps=1e-5)
TRAIN = TrainConfig(episodes=150, horizon=200, unroll=200, problems=2, meta_lr=1e-3, schedule="cosine",
                    log_loss=True, clip=1.0, val_every=25, val_problems=2, val_steps=200, val_metric="log_final",
                    param_scale_spread=3.0, seed=0)
CURRICULUM = (100, 200, 500, 1000)  # where the curriculum is switched on: these horizons, each rounded up to a
# multiple of the truncation
IMITATE = "adam:0.01"  # where imitation is switched on: Adam at the direct term's starting learning rate
WARM = "adam:0.01:8000"  # where warm starts are switched on: up to 8,000 steps of the same Adam first
PES_UNROLL = 25  # where PES is switched on: the episode cut into truncations of this many steps (unbiased over the
# whole episode all the same); switched off, one truncation per episode
PLAIN = dict(moments=(), gradient_input=True, output_init=0.1, second_moment=0.999, moment_eps=1e-8)  # the 2016 rule's inputs and output


# the settings that only mean something with the direct term, at their values without it
NO_DIRECT = dict(direct=False, learn_direct=True, correction="add", correction_scale=1.0, correction_decay=0.0)


def _moments(r: LSTMConfig) -> LSTMConfig:
    return replace(r, **PLAIN, **NO_DIRECT) if r.moments else replace(r, moments=MOMENTS, gradient_input=False)


def _direct(r: LSTMConfig) -> LSTMConfig:
    if r.direct:  # the LSTM's output alone, its layer started small (a fixed d or a factor on it: gone with d)
        return replace(r, **NO_DIRECT, output_init=0.1)
    return replace(r, direct=True, output_init=0.0, moments=r.moments or MOMENTS, gradient_input=False)


# each method: (whether the recipe uses it, the settings with it switched)
METHODS = {
    "moments": (lambda r, t: bool(r.moments), lambda r, t: (_moments(r), t)),
    "direct": (lambda r, t: r.direct, lambda r, t: (_direct(r), t)),
    "curriculum": (lambda r, t: bool(t.curriculum),
                   lambda r, t: (r, replace(t, curriculum=() if t.curriculum else tuple(sorted(
                       {-(-h // t.unroll) * t.unroll for h in CURRICULUM}))))),
    "imitation": (lambda r, t: bool(t.imitate),
                  lambda r, t: (r, replace(t, imitate="" if t.imitate else IMITATE, imitate_weight=0.1))),
    "scaling": (lambda r, t: t.param_scale_spread > 1,
                lambda r, t: (r, replace(t, param_scale_spread=1.0 if t.param_scale_spread > 1 else 3.0))),
    "warm_start": (lambda r, t: bool(t.warm_start), lambda r, t: (r, replace(t, warm_start="" if t.warm_start else WARM))),
    "pes": (lambda r, t: t.estimator == "pes",
            lambda r, t: (r, replace(t, estimator="tbptt", unroll=t.horizon) if t.estimator == "pes"
                          else replace(t, estimator="pes", unroll=PES_UNROLL, remat=0))),
}


def variant_names(rule: LSTMConfig = RULE, train: TrainConfig = TRAIN) -> tuple[str, ...]:
    return ("general", *(f"{'no' if uses(rule, train) else 'with'}_{m}" for m, (uses, _) in METHODS.items()))


VARIANTS = variant_names()


@dataclass(frozen=True)
class GeneralConfig:
    variants: tuple[str, ...] = ("general",)  # which to meta-train: general, no_moments, no_direct, no_curriculum, …
    check_steps: int = 2000  # the ablation's runs on the MNIST MLPs
    check_problems: int = 4
    members: str = "mlps"  # the mixture's members: "mlps" (all but the conv net), "all", or a comma-separated list

    def __post_init__(self):
        names = {"general", *(f"{p}_{m}" for m in METHODS for p in ("no", "with"))}
        unknown = sorted(set(self.variants) - names)
        if unknown or not self.variants:
            raise ValueError(f"unknown variants {unknown}; available (with the default recipe): {', '.join(VARIANTS)}")
        _chosen(self.members)  # an unknown member: an error now, not at meta-training


@dataclass
class Settings:
    rule: LSTMConfig = RULE
    train: TrainConfig = TRAIN
    experiment: GeneralConfig = field(default_factory=GeneralConfig)


# the tasks `general` is meta-trained on: name -> (its family's maker, its weight, in words); the conv net is the
# slowest and weighted less
MEMBERS = {
    "mlp_sigmoid": (lambda d: ImageMLPFamily(MLPConfig(), data_dir=d), 1, "a sigmoid MLP on MNIST"),
    "mlp_relu": (lambda d: ImageMLPFamily(MLPConfig(activation="relu"), data_dir=d), 2, "a ReLU MLP on MNIST"),
    "mlp_wide_relu": (lambda d: ImageMLPFamily(MLPConfig(hidden=(64,), activation="relu"), data_dir=d), 1,
                      "a 64-unit ReLU MLP on MNIST"),
    "mlp_deep_tanh": (lambda d: ImageMLPFamily(MLPConfig(hidden=(32, 32), activation="tanh"), data_dir=d), 1,
                      "a 2-layer tanh MLP on MNIST"),
    "fashion_relu": (lambda d: ImageMLPFamily(MLPConfig(activation="relu"), dataset="fashion-mnist", data_dir=d), 2,
                     "a ReLU MLP on Fashion-MNIST"),
    "conv_fashion": (lambda d: ConvFamily(ConvConfig(dataset="fashion-mnist"), data_dir=d), 1,
                     "the conv net on Fashion-MNIST"),
}


MLPS = ",".join(k for k in MEMBERS if k != "conv_fashion")  # "mlps": the default members, all but the conv net


def _chosen(only: str) -> dict:
    return common.select(MEMBERS, MLPS if only == "mlps" else only, "members")


def members(data_dir=None, only: str = "mlps") -> MixtureFamily:
    """The mixture `general` is meta-trained on: the MLPs ("mlps"), all members ("all") or those named in ``only``
    (comma-separated)."""
    chosen = _chosen(only)
    return MixtureFamily({k: make(data_dir) for k, (make, _, _) in chosen.items()},
                         weights=[w for _, w, _ in chosen.values()])


def describe_members(only: str = "mlps") -> str:
    if only == "all":
        return ("a mixture of MLPs on MNIST (sigmoid, ReLU, tanh; 1–2 layers, 20–64 units), a ReLU MLP and the conv net "
                "on Fashion-MNIST")
    return "a mixture of " + ", ".join(words for _, _, words in _chosen(only).values())


def variant(s: Settings, name: str) -> tuple[LSTMConfig, TrainConfig]:
    rule, train = s.rule, s.train
    if name != "general":
        if name not in variant_names(rule, train):
            raise ValueError(f"unknown variant {name!r} for these settings; available: "
                             f"{', '.join(variant_names(rule, train))}")
        rule, train = METHODS[name.split("_", 1)[1]][1](rule, train)
    return rule, train


def describe_training(rule: LSTMConfig, train: TrainConfig, only: str = "mlps") -> str:
    on = [m for m, (uses, _) in METHODS.items() if uses(rule, train)]
    horizon = f"horizons up to {max(train.curriculum or (train.horizon,))} steps"
    if train.warm_start:
        from l2o.tasks.warm import SELF, parse

        name, lr, most = parse(train.warm_start)
        horizon += (f", each after up to {most:,} steps of " +
                    ("the rule itself (no meta-gradient)" if name == SELF else f"{name} (lr {lr:g})"))
    return f"{describe_members(only)}; {horizon}; methods: {', '.join(on) or 'none'}"


def run(out: str | Path, settings: Settings | None = None, *, data_dir=None, progress: bool = True,
        device: str = "cpu", command: str | None = None, log=print, implementation: str = "auto") -> dict:
    s = settings or Settings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    family = members(data_dir, s.experiment.members)
    # every variant made first: one these settings cannot make is an error now, not hours later
    plans = {name: variant(s, name) for name in s.experiment.variants}
    trained = {}
    for name, (rule_cfg, train) in plans.items():
        folder = out / "train" / name
        log(f"meta-training {name} into {folder}: {describe_training(rule_cfg, train, s.experiment.members)}")
        result = meta_train(family, LSTMRule(rule_cfg, implementation=implementation), train, folder, resume="auto",
                            progress=progress, device=device,
                            info={"task": "general",
                                  "description": describe_training(rule_cfg, train, s.experiment.members)})
        plot_history(folder / "history.csv", folder / "history.png")
        trained[name] = result
        log(f"    {name}: {result.state.seconds:.0f} s; best validation at episode {result.state.best_episode}")
    if not common.only_main_continues():
        return {}

    e = LongConfig(steps=s.experiment.check_steps, test_problems=s.experiment.check_problems,
                   window=min(1000, s.experiment.check_steps))
    checks = {"mnist_sigmoid": ImageMLPFamily(MLPConfig(), data_dir=data_dir),
              "mnist_relu": ImageMLPFamily(MLPConfig(activation="relu"), data_dir=data_dir)}
    table = {}
    for task_name, task_family in checks.items():
        task = task_family.sample("test", 0, e.test_problems).to(device)
        rules = {name: r.rule for name, r in trained.items()}
        rules.update({f"adam (lr {lr:g})": Adam(lr=lr) for lr in e.adam_lrs})
        table[task_name] = {}
        for label, rule in rules.items():
            table[task_name][label] = cached_run(out / "ablation" / task_name / f"{slug(label)}.json", task_family,
                                                 rule, task, e, log, f"{task_name}: {label}, {e.steps} steps")
    summary = {"command": command, "variants": {
                   name: {"meta_train_seconds": round(r.state.seconds, 1), "meta_train_cpu": common.meta_cpu(r.state),
                          "best_episode": r.state.best_episode,
                          "description": describe_training(*plans[name], s.experiment.members)}
                   for name, r in trained.items()},
               "ablation": {t: {k: {"last_window_mean": v["last_window_mean"], "diverged": v["diverged"]}
                                for k, v in rows.items()} for t, rows in table.items()},
               "check": asdict(e), "settings": {"rule": asdict(s.rule), "train": asdict(s.train)},
               "total_seconds": round(time.perf_counter() - started, 1), "machine": common.machine(device)}
    checkpoint.write_json(out / "summary.json", summary)
    for name in trained:  # each variant's own results, in its run folder: what `l2o export` stores with it
        checkpoint.write_json(out / "train" / name / "summary.json", {
            "command": command, **summary["variants"][name],
            "tasks": {t: own_result(describe(checks[t]), e, rows, name) for t, rows in table.items()}})
    lines = [f"Each variant for {e.steps:,} steps on {e.test_problems} held-out problems; the mean loss over the last "
             f"{e.window:,} steps (diverged: non-finite, or no better than the start).", "",
             "| optimizer | " + " | ".join(table) + " | meta-training |", "|---|" + "---|" * (len(table) + 1)]
    for label in next(iter(table.values())):
        cells = [f"{table[t][label]['last_window_mean']:.4g}" + (" (diverged)" if table[t][label]["diverged"] else "")
                 for t in table]
        seconds = f"{trained[label].state.seconds / 3600:.2f} h" if label in trained else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {seconds} |")
    text = "\n".join(lines) + "\n"
    checkpoint.atomic_write_text(out / "ablation.md", text)
    log(text)
    return summary
