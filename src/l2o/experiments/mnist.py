"""The MNIST experiments (paper §3.2, Figures 4 and 5), end to end.

One LSTM optimizer is meta-trained on the base task only (an MLP with one hidden layer of 20 sigmoid
units, minibatches of 128, 100 steps). Then, for every evaluation task, the baselines' learning rates
are tuned on validation problems (images from a part of the training set that meta-training never
sees) and every optimizer runs on the same held-out test problems (test-set images):

    base        Figure 4: the base task, 100 steps
    steps200    Figure 5: 200 steps instead of 100
    units40     Figure 5: 40 hidden units
    layers2     Figure 5: two hidden layers of 20
    relu        Figure 5: ReLU instead of sigmoid (the paper: the learned optimizer fails here)
    torch_init  PyTorch's default nn.Linear initialisation instead of the paper's N(0, 0.01²)
    h{H}_l{L}   the sweep: H hidden units in each of L hidden layers

    out/train/                     the meta-training run (best.safetensors is the optimizer)
    out/tasks/<task>/              tuning.json, tuning.png, results.json, results.csv per task
    out/figure4.png, figure5.png, sweep.png, torch_init.png
    out/results.md, summary.json   the tables and the headline numbers with the settings

Every stage is saved as it finishes; running the command again reuses what is done (the meta-training
resumes from its last checkpoint), so an interrupted run loses at most one task's work.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from l2o import checkpoint
from l2o.experiments import common
from l2o.experiments.common import TUNED, tune_and_evaluate, weights_sha  # noqa: F401 - weights_sha re-exported
from l2o.meta.train import TrainConfig, meta_train
from l2o.plots import plot_curves, plot_history, plot_panels, plot_sweep
from l2o.rules.base import describe_implementation, implementation_of
from l2o.rules.lstm import LSTMConfig, LSTMRule
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
from l2o.tune import lr_grid

# The paper's MNIST optimizer: log/sign preprocessing, output scale 0.1.
RULE = LSTMConfig(preprocess=True, output_scale=0.1)
# Chosen in short trials on validation problems (docs/mnist.md): many small meta-batches (2 problems) at a
# meta learning rate of 3e-3, decayed by a cosine; the log meta-loss weighs late progress as much as early;
# each training problem's parameters rescaled per coordinate by c ~ log-uniform[1/3, 3] (f(c ⊙ θ')).
TRAIN = TrainConfig(episodes=1200, problems=2, meta_lr=3e-3, schedule="cosine", log_loss=True, val_every=50,
                    val_problems=64, param_scale_spread=3.0, seed=0)
LEARNED = "LSTM (learned)"
FIGURE5 = ("steps200", "units40", "layers2", "relu")


@dataclass(frozen=True)
class ExperimentConfig:
    test_problems: int = 128  # held-out test problems per task (test-set images, the "test" stream)
    tune_problems: int = 32  # validation problems for each task's learning-rate search
    steps: int = 100  # optimisation steps (the paper: 100)
    long_steps: int = 200  # steps of the long-horizon generalisation test (the paper: 200)
    lr_min: float = 1e-4  # the baselines' learning-rate grid: lr_min … lr_max
    lr_max: float = 10.0
    per_decade: int = 3  # grid points per factor of ten
    sweep_hidden: tuple[int, ...] = (10, 20, 40, 80)  # hidden units per layer in the sweep
    sweep_layers: tuple[int, ...] = (1, 2)  # hidden layers in the sweep
    only: str = "all"  # "all", or a comma-separated list of tasks (base, steps200, …, sweep)


@dataclass
class Settings:
    task: MLPConfig = field(default_factory=MLPConfig)
    rule: LSTMConfig = RULE
    train: TrainConfig = TRAIN
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)


def eval_tasks(s: Settings) -> dict[str, tuple[MLPConfig, int]]:
    """Every evaluation task: name -> (optimizee settings, steps)."""
    base, e = s.task, s.experiment
    tasks = {
        "base": (base, e.steps),
        "steps200": (base, e.long_steps),
        "units40": (replace(base, hidden=(40,) * len(base.hidden)), e.steps),
        "layers2": (replace(base, hidden=base.hidden * 2), e.steps),
        "relu": (replace(base, activation="relu"), e.steps),
        "torch_init": (replace(base, init="torch"), e.steps),
    }
    for layers in e.sweep_layers:
        for h in e.sweep_hidden:
            tasks[f"h{h}_l{layers}"] = (replace(base, hidden=(h,) * layers), e.steps)
    if e.only != "all":
        wanted = {w.strip() for w in e.only.split(",")}
        unknown = wanted - set(tasks) - {"sweep"}
        if unknown:
            raise ValueError(f"unknown tasks {sorted(unknown)}; available: {', '.join(tasks)}, sweep")
        tasks = {k: v for k, v in tasks.items() if k in wanted or ("sweep" in wanted and k.startswith("h"))}
    return tasks


def run_task(name: str, cfg: MLPConfig, steps: int, rule, s: Settings, out: Path, *, data_dir=None,
             progress: bool = True, device: str = "cpu", log=print, baselines: tuple[str, ...] = TUNED) -> dict:
    """Tune the baselines on validation problems, then evaluate everything on test problems (cached).
    ``rule``: the learned rule, or several as {label: rule}."""
    learned = rule if isinstance(rule, dict) else {LEARNED: rule}
    e = s.experiment
    tuning, results = tune_and_evaluate(out / "tasks" / name, ImageMLPFamily(cfg, data_dir=data_dir), steps, learned,
                                        grid=lr_grid(e.lr_min, e.lr_max, e.per_decade), tune_problems=e.tune_problems,
                                        test_problems=e.test_problems, baselines=baselines, progress=progress,
                                        device=device)
    edges = [k for k, b in tuning["baselines"].items() if b["at_grid_edge"]]
    for label in learned:
        h = headline(results, label)
        log(f"    {name:10s} {'LSTM' if label == LEARNED else label} {h['learned_final_mean']:.4g}   best baseline "
            f"{h['best_baseline']} (lr {h['best_baseline_lr']:.3g}) {h['best_baseline_final_mean']:.4g}   "
            f"ratio {h['ratio_final_vs_best_baseline']:.3f}" + (f"   (best lr at the grid's edge: {', '.join(edges)})" if edges else ""))
    return results


def headline(results: dict, learned: str = LEARNED) -> dict:
    """The learned rule ``learned`` against the best tuned baseline of a task's results."""
    return common.headline(results, learned)


def describe(cfg: MLPConfig, steps: int) -> str:
    return f"{'-'.join(map(str, cfg.hidden))} {cfg.activation}, {cfg.init} init, {steps} steps"


def run(out: str | Path, settings: Settings | None = None, *, resume: bool = True, data_dir=None,
        progress: bool = True, device: str = "cpu", command: str | None = None, log=print,
        implementation: str = "auto") -> dict:
    """Run the MNIST suite into folder ``out``; returns the summary. ``implementation``: the LSTM's ("auto",
    "torch", "fused"), recorded in every file the suite writes."""
    s = settings or Settings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tasks = eval_tasks(s)

    log(f"1/2 meta-training the LSTM optimizer on the base task ({s.train.episodes} episodes × "
        f"{s.train.problems} problems)")
    family = ImageMLPFamily(s.task, data_dir=data_dir)
    result = meta_train(family, LSTMRule(s.rule, implementation=implementation), s.train, out / "train",
                        resume="auto" if resume else False, progress=progress,
                        device=device, info={"task": "mnist", "description": describe(s.task, s.experiment.steps)})
    plot_history(out / "train" / "history.csv", out / "train" / "history.png")
    log(f"    meta-training took {result.state.seconds:.0f} s; best validation at episode "
        f"{result.state.best_episode}; {result.state.nan_skips} non-finite meta-steps skipped")
    if not common.only_main_continues():  # torchrun: the other processes' part is done
        return {}

    log(f"2/2 tuning the baselines per task and evaluating on {s.experiment.test_problems} test problems")
    results, done = {}, {}
    for name, (cfg, steps) in tasks.items():
        if (cfg, steps) in done:  # the sweep repeats some tasks (h20_l1 is the base task): the same results
            results[name] = results[done[cfg, steps]]
            continue
        results[name] = run_task(name, cfg, steps, result.rule, s, out, data_dir=data_dir, progress=progress,
                                 device=device, log=log)
        done[cfg, steps] = name

    if "base" in results:
        plot_curves(results["base"], out / "figure4.png", title="MNIST, base task (Figure 4): 128 test problems")
    panels = [(results[k], describe(*tasks[k])) for k in FIGURE5 if k in results]
    if panels:
        plot_panels(panels, out / "figure5.png", suptitle="MNIST generalisation (Figure 5), trained on the base task only")
    if "torch_init" in results:
        plot_curves(results["torch_init"], out / "torch_init.png", title="MNIST, PyTorch's default initialisation")
    sweep = {k: results[k] for k in results if k.startswith("h")}
    if sweep:
        plot_sweep(sweep, out / "sweep.png")

    summary = {
        "command": command,
        "meta_train_seconds": round(result.state.seconds, 1),
        "best_episode": result.state.best_episode,
        "tasks": {k: {"description": describe(*tasks[k]), **headline(v)} for k, v in results.items()},
        "total_seconds": round(time.perf_counter() - started, 1),
        "implementation": implementation_of(result.rule),
        "settings": {k: asdict(getattr(s, k)) for k in ("task", "rule", "train", "experiment")},
        "machine": common.machine(device),
    }
    checkpoint.write_json(out / "summary.json", summary)
    md = [f"MNIST suite: one LSTM optimizer meta-trained on the base task ({result.state.seconds / 60:.1f} min), "
          f"evaluated on {s.experiment.test_problems} held-out test problems per task; baselines tuned per task on "
          f"{s.experiment.tune_problems} validation problems. {describe_implementation(result.rule)}\n",
          "| task | optimizee | LSTM final loss | best tuned baseline | its final loss | LSTM / best | LSTM beats all |",
          "|---|---|---|---|---|---|---|"]
    for k, h in summary["tasks"].items():
        md.append(f"| {k} | {h['description']} | {h['learned_final_mean']:.4g} ± {h['learned_final_sem']:.2g} | "
                  f"{h['best_baseline']} (lr {h['best_baseline_lr']:.3g}) | {h['best_baseline_final_mean']:.4g} | "
                  f"{h['ratio_final_vs_best_baseline']:.3f}× | {'yes' if h['learned_beats_every_baseline'] else '**no**'} |")
    common.write_markdown(out, md, {k: (describe(*tasks[k]), v) for k, v in results.items()}, log)
    return summary
