"""The CIFAR-10 experiment (paper §3.3, Figure 7), end to end, on CIFAR-10 or a stand-in dataset.

Two optimizers, both the paper's two-LSTM rule (one LSTM for the convolution kernels, one for the rest):
    LSTM        meta-trained on the 10-class task
    LSTM-sub    meta-trained only on the classes not in ``five`` (``sub_labels``), disjoint from both subsets
Each is meta-trained in two stages: TRAIN (horizon 200), then a second stage at the evaluation's horizon (1,000
steps) started from the first stage's best weights, imitating NAG as an extra meta-loss term (Chen et al. 2020;
``ExperimentConfig.long_*``). An optimizer meta-trained only on 200-step episodes kept pace with Adam and NAG over
its horizon and fell behind them by step 1,000, its steps too small and far smaller than NAG's (docs/cifar.md).
An optional third stage (``ExperimentConfig.subsets_*``, off by default), from the second's best weights,
meta-trains on random subsets of the optimizer's classes (2, 5 and all of them; never ``five`` or TWO themselves:
l2o.tasks.label_subsets). It was tried because the two-stage optimizer, trained only on the 10-class task, led
NAG on the 5-class task to about step 500 and ended at twice its loss; its validation got worse (docs/cifar.md).
Evaluation tasks (baselines tuned per task on validation problems; everything on the same test problems):
    ten         the 10 classes (Figure 7, left)
    five        the classes ``ExperimentConfig.five`` (Figure 7, middle)
    two         the classes TWO (Figure 7, right)
    torch_layers  the 10 classes with PyTorch's default layers: nn.Conv2d/nn.Linear init, batch norm with a scale
    mnist_mlp   the paper's MNIST MLP (100 steps): how the conv optimizer does on a model it never saw
The paper does not say which labels form its subsets; these are ours: by default five = 0–4, TWO = 0–1 (CIFAR-10:
airplane, automobile, bird, cat, deer; airplane, automobile), LSTM-sub's classes the other five, 5–9. ``five`` is a
setting (``--five``; it must hold TWO): on Fashion-MNIST the halves 0–4 and 5–9 differ in difficulty (docs/cifar.md).

``dataset``: "cifar10" (the real experiment; `l2o data cifar10`), or "fashion-mnist" / "mnist", the same
network on 28×28×1 images: a stand-in, named as such in every figure, table and summary.

    out/train/lstm/, out/train/sub/     the first stage's meta-training runs
    out/train/lstm-long/, out/train/sub-long/   the second stage's
    out/train/lstm-subsets/, out/train/sub-subsets/   the optional third stage's
    (each optimizer is the best.safetensors of its last stage)
    out/tasks/<task>/                   tuning.json, results.json, results.csv per task
    out/figure7.png, users_models.png, results.md, summary.json

Every stage is saved as it finishes; the same command again reuses what is done and resumes meta-training.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from l2o import checkpoint
from l2o.experiments import common
from l2o.meta.run_folder import lock_holder
from l2o.meta.train import TrainConfig, TrainResult, meta_train
from l2o.plots import plot_history, plot_panels
from l2o.rules.base import describe_implementation, implementation_of
from l2o.rules.lstm import LSTMConfig
from l2o.rules.routed import conv_fc
from l2o.tasks.conv import ConvConfig, ConvFamily
from l2o.tasks.label_subsets import LabelSubsetsFamily
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
from l2o.tune import lr_grid

FIVE, TWO = (0, 1, 2, 3, 4), (0, 1)  # the default five-class subset, and the two-class one
NAMES = {"cifar10": "CIFAR-10", "fashion-mnist": "Fashion-MNIST (stand-in for CIFAR-10)",
         "mnist": "MNIST (stand-in for CIFAR-10)"}
LEARNED, SUB = "LSTM (learned)", "LSTM-sub (learned)"
FIRST = "LSTM, first stage only"  # on the 10-class task, with a second stage: what the second stage changed
SECOND, SUB_SECOND = "LSTM, first two stages", "LSTM-sub, first two stages"  # with a third: what it changed
ALL_LEARNED = (LEARNED, SUB, FIRST, SECOND, SUB_SECOND)
# The authors' code: both LSTMs 2 × 20, log/sign preprocessing with p = 5, output scale 0.01; and beside the
# gradient, momentum inputs at four decays (m̂/√v̂, and ∇/√v̂: Lv et al. 2017). Without them the optimizer, trained
# on 10 classes, fell behind NAG late on the 5-class subset (1.95× at step 1,000; docs/cifar.md, "The first rule").
RULE = LSTMConfig(preprocess=True, p=5.0, output_scale=0.01, moments=(0.5, 0.9, 0.99, 0.999))
# Meta-training horizon 200 steps in truncations of 20 (evaluation runs 1,000); one problem per episode; about
# 0.1–0.2 s per optimizee step of meta-training on this CPU, so 150 episodes take about 1–2 hours.
TRAIN = TrainConfig(episodes=150, horizon=200, unroll=20, problems=1, meta_lr=3e-3, schedule="cosine", log_loss=True,
                    val_every=25, val_problems=4, val_metric="log_final", seed=0)


@dataclass(frozen=True)
class ExperimentConfig:
    test_problems: int = 16  # held-out test problems per task
    tune_problems: int = 2  # validation problems for each task's learning-rate search
    steps: int = 1000  # optimisation steps at evaluation (the paper: 1,000)
    tune_steps: int = 1000  # steps of each tuning run
    lr_min: float = 1e-4  # the baselines' learning-rate grid: lr_min … lr_max
    lr_max: float = 10.0
    per_decade: int = 2  # grid points per factor of ten
    mlp_steps: int = 100  # steps of the paper's MNIST MLP task (its own horizon)
    only: str = "all"  # "all", or a comma-separated list of tasks (ten, five, two, torch_layers, mnist_mlp)
    long_episodes: int = 40  # a second meta-training stage, from the first's best weights; 0 = none
    long_horizon: int = 1000  # its horizon (a multiple of long_unroll)
    long_unroll: int = 1000  # its truncation length: the whole episode (the first stage's: 20). Truncations of 100
    # never beat the stage's start; whole episodes halved the 10-class loss at step 1,000 (docs/cifar.md)
    long_remat: int = 50  # back-propagate its truncations in segments of this many steps (TrainConfig.remat: about a
    # third of the memory of one piece, the same gradient); 0 = in one piece
    long_meta_lr: float = 1e-3  # its meta learning rate (cosine schedule, as the first stage's)
    long_val_every: int = 10  # episodes between its validations (at its horizon; the first stage's best counts)
    long_problems: int = 0  # problems per episode of its meta-training; 0: the first stage's (--problems)
    long_val_problems: int = 0  # its validation problems; 0: the first stage's (--val-problems)
    long_imitate: str = "nag:0.1"  # its imitation of a hand-designed optimizer ("NAME:LR"; "": none; Chen et al. 2020)
    long_imitate_weight: float = 1e4  # the imitation term's weight (its meta-gradient is ~1e-4 of the log meta-loss's)
    subsets_episodes: int = 0  # a third stage, from the second's best weights, on random label subsets; 0 = none (tried: docs/cifar.md)
    subsets_sizes: tuple[int, ...] = (2, 5)  # the subsets' sizes (besides all of the optimizer's classes)
    subsets_val_problems: int = 2  # validation problems per size (the stage validates every long_val_every episodes)
    five: tuple[int, ...] = FIVE  # the five-class task's classes, holding 0 and 1; LSTM-sub trains on the other five
    optimizers: str = "all"  # "lstm" or "sub": this process only meta-trains that optimizer, then stops (so that two
    # processes, or machines sharing the folder, train both at once; the command without it then evaluates)

    def __post_init__(self):
        if self.long_episodes < 0 or min(self.long_horizon, self.long_unroll, self.long_val_every) < 1 \
                or not self.long_meta_lr > 0 or min(self.long_problems, self.long_val_problems) < 0:
            raise ValueError(f"long_episodes, long_problems and long_val_problems must be >= 0, long_horizon, "
                             f"long_unroll and long_val_every >= 1 and long_meta_lr > 0; got {self.long_episodes}, "
                             f"{self.long_problems}, {self.long_val_problems}, {self.long_horizon}, "
                             f"{self.long_unroll}, {self.long_val_every}, {self.long_meta_lr}")
        object.__setattr__(self, "subsets_sizes", tuple(int(k) for k in self.subsets_sizes))  # a list from JSON
        if self.subsets_episodes < 0 or (self.subsets_episodes and not self.long_episodes) \
                or self.subsets_val_problems < 1 or any(k < 2 or k > 5 for k in self.subsets_sizes):
            raise ValueError(f"subsets_episodes must be >= 0 (and needs long_episodes), subsets_val_problems >= 1 and "
                             f"subsets_sizes between 2 and 5 classes; got {self.subsets_episodes}, "
                             f"{self.subsets_val_problems}, {list(self.subsets_sizes)}")
        object.__setattr__(self, "five", tuple(int(k) for k in self.five))
        if len(self.five) != 5 or len(set(self.five)) != 5 or not set(TWO) <= set(self.five) <= set(range(10)):
            raise ValueError(f"five must be five distinct classes of 0-9 holding {list(TWO)} (LSTM-sub trains on the "
                             f"other five, disjoint from both subsets); got {list(self.five)}")
        if self.optimizers not in ("all", "lstm", "sub"):
            raise ValueError(f"optimizers must be all, lstm or sub, got {self.optimizers!r}")
        if self.long_episodes:  # the stage's settings checked now, not hours later when the first stage is done
            TrainConfig(horizon=self.long_horizon, unroll=self.long_unroll, remat=self.long_remat,
                        imitate=self.long_imitate, imitate_weight=self.long_imitate_weight)

    @property
    def sub_labels(self) -> tuple[int, ...]:
        """LSTM-sub's classes: the five not in ``five`` (so none of TWO either)."""
        return tuple(k for k in range(10) if k not in self.five)


@dataclass
class Settings:
    task: ConvConfig = field(default_factory=lambda: ConvConfig(dataset="cifar10"))
    rule: LSTMConfig = RULE
    train: TrainConfig = TRAIN
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)


def eval_tasks(s: Settings) -> dict[str, tuple[ConvConfig | MLPConfig, int]]:
    """Every evaluation task: name -> (the optimizee's settings, steps)."""
    steps = s.experiment.steps
    tasks = {"ten": (replace(s.task, labels=()), steps), "five": (replace(s.task, labels=s.experiment.five), steps),
             "two": (replace(s.task, labels=TWO), steps),
             "torch_layers": (replace(s.task, labels=(), init="torch", bn_scale=True), steps),
             "mnist_mlp": (MLPConfig(), s.experiment.mlp_steps)}
    return common.select(tasks, s.experiment.only, "tasks")


def describe(cfg: ConvConfig | MLPConfig, steps: int | None = None) -> str:
    if isinstance(cfg, MLPConfig):
        return f"the paper's MNIST MLP (784-{'-'.join(map(str, cfg.hidden))}-10 {cfg.activation}), {steps} steps"
    classes = f"{len(cfg.labels)} classes {list(cfg.labels)}" if cfg.labels else "10 classes"
    layers = ", PyTorch's default layers (init, batch-norm scale)" if cfg.init == "torch" and cfg.bn_scale else ""
    return f"{NAMES[cfg.dataset]}, {classes}{layers}" + (f", {steps} steps" if steps else "")


def family(cfg: ConvConfig | MLPConfig, data_dir=None):
    return ImageMLPFamily(cfg, data_dir=data_dir) if isinstance(cfg, MLPConfig) else ConvFamily(cfg, data_dir=data_dir)


def _stage(folder: Path, fam, what: str, train: TrainConfig, s: Settings, *, progress, device, implementation, log):
    """One stage of meta-training on the task family ``fam`` (described by ``what``) into ``folder``."""
    log(f"    {folder.name}: {what}; {train.episodes} episodes × {train.problems} problems, horizon "
        f"{train.horizon}" + (f", from {train.init_from}" if train.init_from else "") + f" → {folder}")
    result = meta_train(fam, conv_fc(s.rule, implementation=implementation), train, folder, resume="auto",
                        progress=progress, device=device,
                        info={"task": "conv", "description": f"two LSTMs (conv kernels / the rest) on {what}"})
    plot_history(folder / "history.csv", folder / "history.png")
    log(f"    {folder.name}: {result.state.seconds:.0f} s of meta-training; best validation at episode "
        f"{result.state.best_episode}")
    return result


class Trained(NamedTuple):
    runs: tuple[TrainResult, ...]  # every stage's, first to last: the last one's rule is the optimizer

    @property
    def folder(self) -> Path:
        """The optimizer's run (the last stage's)."""
        return self.runs[-1].run_dir

    @property
    def result(self) -> TrainResult:
        return self.runs[-1]

    @property
    def first(self) -> TrainResult:
        return self.runs[0]

    @property
    def second(self) -> TrainResult | None:
        return self.runs[1] if len(self.runs) > 1 else None

    @property
    def seconds(self) -> float:
        """Meta-training wall-clock of all stages."""
        return sum(r.state.seconds for r in self.runs)


def subsets_family(cfg: ConvConfig, e: ExperimentConfig, data_dir=None) -> LabelSubsetsFamily:
    """The third stage's tasks: random subsets (sizes ``e.subsets_sizes``, and all of them) of the optimizer's
    classes (``cfg.labels``, or all ten), never the evaluation subsets ``e.five`` and TWO themselves."""
    pool = cfg.labels or tuple(range(10))
    sizes = tuple(sorted({*(k for k in e.subsets_sizes if k < len(pool)), len(pool)}))
    return LabelSubsetsFamily(replace(cfg, labels=()), pool=pool, sizes=sizes, exclude=(e.five, TWO), data_dir=data_dir)


def _train(key: str, cfg: ConvConfig, s: Settings, out: Path, *, data_dir, **kw) -> Trained:
    """Meta-train one optimizer in its stages."""
    first, conv = out / "train" / key, ConvFamily(cfg, data_dir=data_dir)  # the data read once for both stages
    runs = [_stage(first, conv, describe(cfg), s.train, s, **kw)]
    e = s.experiment
    if not e.long_episodes:
        return Trained(tuple(runs))
    second = out / "train" / f"{key}-long"
    long = replace(s.train, episodes=e.long_episodes, horizon=e.long_horizon, unroll=e.long_unroll, remat=e.long_remat,
                   meta_lr=e.long_meta_lr, val_every=e.long_val_every, curriculum=(),
                   imitate=e.long_imitate, imitate_weight=e.long_imitate_weight,
                   checkpoint_every=2,  # its episodes are long (1,000 steps: minutes each)
                   problems=e.long_problems or s.train.problems, val_problems=e.long_val_problems or s.train.val_problems,
                   init_from=str(first))
    runs.append(_stage(second, conv, describe(cfg), long, s, **kw))
    if not e.subsets_episodes:
        return Trained(tuple(runs))
    third = out / "train" / f"{key}-subsets"
    fam = subsets_family(cfg, e, data_dir)
    what = (f"{NAMES[cfg.dataset]}, random subsets of {', '.join(map(str, fam.sizes))} of the classes "
            f"{list(fam.pool)} (never {list(e.five)} or {list(TWO)})")
    runs.append(_stage(third, fam, what, replace(long, episodes=e.subsets_episodes,
                                                 val_problems=e.subsets_val_problems, init_from=str(second)), s, **kw))
    return Trained(tuple(runs))


def _busy(out: Path, key: str) -> str:
    """What another process is doing to optimizer ``key``'s runs ("" if nothing): a process holding the lock of
    one of its stages' folders."""
    for folder in sorted((out / "train").glob(f"{key}*")):
        holder = lock_holder(folder)
        if holder is not None and holder != os.getpid():
            return f"being meta-trained in {folder} by another process (pid {holder})"
    return ""


def run(out: str | Path, settings: Settings | None = None, *, data_dir=None, progress: bool = True,
        device: str = "cpu", command: str | None = None, log=print, implementation: str = "auto") -> dict:
    """Run the suite into ``out``; returns the summary."""
    s = settings or Settings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tasks = eval_tasks(s)
    e = s.experiment
    needs_sub = any(getattr(cfg, "labels", ()) for cfg, _ in tasks.values())  # only the subsets evaluate LSTM-sub
    lstm = f"the two-LSTM optimizer on {describe(replace(s.task, labels=()))}"
    which = {"all": lstm + (f", and LSTM-sub on classes {list(e.sub_labels)}" if needs_sub else ""), "lstm": lstm,
             "sub": f"LSTM-sub alone, on classes {list(e.sub_labels)}"}[e.optimizers]
    log(f"1/2 meta-training {which}")
    kw = dict(data_dir=data_dir, progress=progress, device=device, implementation=implementation, log=log)
    if e.optimizers != "all":  # one optimizer alone; the other, and the evaluation, are another process's
        cfg = replace(s.task, labels=e.sub_labels if e.optimizers == "sub" else ())
        alone = _train(e.optimizers, cfg, s, out, **kw)
        log(f"    meta-trained {e.optimizers} alone ({alone.seconds:.0f} s over its stages) into {alone.folder}; the "
            f"same command without --optimizers evaluates")
        return {"runs": {e.optimizers: str(alone.folder)}}
    trained = {"lstm": _train("lstm", replace(s.task, labels=()), s, out, **kw)}
    pending = {}
    if needs_sub:
        busy = _busy(out, "sub")
        if busy:  # another process meta-trains LSTM-sub (``--optimizers sub``): evaluate everything else now
            pending["sub"] = busy
            log(f"    LSTM-sub: {busy}; evaluating without it now (the baselines and the 10-class optimizer); "
                f"run the same command again when it is done, and its curves are added to these")
        else:
            trained["sub"] = _train("sub", replace(s.task, labels=e.sub_labels), s, out, **kw)
    full = trained["lstm"].result
    sub = trained["sub"].result if "sub" in trained else None
    if not common.only_main_continues():  # torchrun: the other processes' part is done
        return {}

    log(f"2/2 tuning the baselines per task ({e.tune_problems} validation problems, {e.tune_steps} steps) and "
        f"evaluating on {e.test_problems} test problems for {e.steps} steps")
    results = {}
    for name, (cfg, steps) in tasks.items():
        subset = getattr(cfg, "labels", ())
        learned = {LEARNED: full.rule, **({SUB: sub.rule} if subset and sub is not None else {})}
        if name == "ten" and e.long_episodes:
            learned[FIRST] = trained["lstm"].first.rule
        if e.subsets_episodes:  # what the third stage changed (runs reused from before it existed: evaluate's cache)
            learned[SECOND] = trained["lstm"].second.rule
            if SUB in learned:
                learned[SUB_SECOND] = trained["sub"].second.rule
        _, results[name] = common.tune_and_evaluate(
            out / "tasks" / name, family(cfg, data_dir), steps, learned,
            grid=lr_grid(e.lr_min, e.lr_max, e.per_decade), tune_problems=e.tune_problems,
            test_problems=e.test_problems, tune_steps=min(e.tune_steps, steps), progress=progress, device=device)
        for label in learned:
            h = common.headline(results[name], label)
            log(f"    {name:5s} {label} {h['learned_final_mean']:.4g}   best baseline {h['best_baseline']} "
                f"(lr {h['best_baseline_lr']:.3g}) {h['best_baseline_final_mean']:.4g}   "
                f"ratio {h['ratio_final_vs_best_baseline']:.3f}")

    figure7 = [k for k in ("ten", "five", "two") if k in results]
    if figure7:
        plot_panels([(results[k], describe(*tasks[k])) for k in figure7], out / "figure7.png",
                    suptitle=f"Figure 7 on {NAMES[s.task.dataset]}: {e.test_problems} test problems per task")
    others = [k for k in ("torch_layers", "mnist_mlp") if k in results]
    if others:
        plot_panels([(results[k], describe(*tasks[k])) for k in others], out / "users_models.png",
                    suptitle="The conv optimizer on models it was not trained on")
    summary = {
        "command": command,
        "dataset": s.task.dataset,
        "dataset_name": NAMES[s.task.dataset],
        "labels": {"five": list(e.five), "two": list(TWO), "sub": list(e.sub_labels)},
        "meta_train_seconds": {k: round(t.seconds, 1) for k, t in trained.items()},  # all stages, wall-clock
        "meta_train_cpu": {k: common.meta_cpu(*(r.state for r in t.runs)) for k, t in trained.items()},
        "best_episode": {k: t.result.state.best_episode for k, t in trained.items()},  # of the last stage
        "runs": {k: str(t.folder) for k, t in trained.items()},
        "tasks": {k: {"description": describe(*tasks[k]),
                      **{label: common.headline(v, label) for label in v["rules"] if label in ALL_LEARNED}}
                  for k, v in results.items()},
        "pending": pending,  # optimizers left out because another process was meta-training them
        "total_seconds": round(time.perf_counter() - started, 1),  # this invocation's wall-clock
        "compute_seconds": common.compute_seconds(sum(t.seconds for t in trained.values()),
                                                  [out / "tasks" / k for k in results]),  # every invocation's
        "implementation": implementation_of(full.rule),
        "settings": {k: asdict(getattr(s, k)) for k in ("task", "rule", "train", "experiment")},
        "machine": common.machine(device),
    }
    checkpoint.write_json(out / "summary.json", summary)
    for key, stages in trained.items():  # each optimizer's own results, for `l2o export`
        label = LEARNED if key == "lstm" else SUB
        checkpoint.write_json(stages.folder / "summary.json", {
            "command": command, "experiment": "cifar", "label": label, "dataset": NAMES[s.task.dataset],
            "meta_train_seconds": summary["meta_train_seconds"][key], "best_episode": summary["best_episode"][key],
            "tasks": {k: {"description": t["description"], **t[label]} for k, t in summary["tasks"].items() if label in t},
            "settings": summary["settings"]})
    md = [f"The paper's CIFAR-10 experiment on **{NAMES[s.task.dataset]}**: the two-LSTM optimizer meta-trained on the "
          f"10-class task ({trained['lstm'].seconds / 60:.1f} min)" + (f", LSTM-sub on classes {list(e.sub_labels)} "
          f"({trained['sub'].seconds / 60:.1f} min)" if sub else "") + f"; {e.test_problems} test problems per task, "
          f"{e.steps} steps. {describe_implementation(full.rule)} "
          f"{common.describe_compute(summary['compute_seconds'])}"
          + (f" **Incomplete: LSTM-sub was {pending['sub']} and is not in these results.**" if pending else "") + "\n",
          "| task | learned | its final loss | best tuned baseline | its final loss | learned / best | beats all |",
          "|---|---|---|---|---|---|---|"]
    for k, t in summary["tasks"].items():
        for label in ALL_LEARNED:
            if label in t:
                h = t[label]
                md.append(f"| {k}: {t['description']} | {label} | {h['learned_final_mean']:.4g} ± "
                          f"{h['learned_final_sem']:.2g} | {h['best_baseline']} (lr {h['best_baseline_lr']:.3g}) | "
                          f"{h['best_baseline_final_mean']:.4g} | {h['ratio_final_vs_best_baseline']:.3f}× | "
                          f"{'yes' if h['learned_beats_every_baseline'] else '**no**'} |")
    common.write_markdown(out, md, {k: (describe(*tasks[k]), v) for k, v in results.items()}, log)
    return summary
