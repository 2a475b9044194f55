"""The neural-art experiment (paper §3.4, Figures 8 and 9), end to end.

One LSTM optimizer is meta-trained to style 64×64 content images with the training style (128 steps per problem,
truncations of 32, log/sign preprocessing, output scale 1: the paper's settings). The four baselines are tuned per
setting on validation content images, and everything is evaluated on the same held-out test content images:

    train_style   64×64, the training style ("stained-glass")      (Figure 8, left)
    new_style     128×128, a style never seen in training ("swirls") (Figure 8, right)

Content images are crops of photographs bundled with scikit-image and scikit-learn, split by photograph
(``l2o.data.art_images``); both styles are drawn by code (no painting ships in an installed package). The feature
network is the task's setting (default: random filters, no pretrained weights); every output names it.

    out/train/                          the meta-training run (best.safetensors is the optimizer)
    out/tasks/<task>/                   tuning.json, results.json, results.csv per setting
    out/figure8.png                     mean loss per step, both settings
    out/figure9_<task>.png              content | LSTM | best tuned baseline | style, at the last step
    out/results.md, summary.json

Every stage is saved as it finishes; the same command again reuses what is done and resumes meta-training.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.experiments import common
from l2o.meta.train import TrainConfig, meta_train
from l2o.meta.unroll import unroll
from l2o.plots import plot_history, plot_images, plot_panels
from l2o.rules.base import describe_implementation, implementation_of
from l2o.rules.lstm import LSTMConfig
from l2o.tasks.art import POOL, ArtConfig, content_layers, describe_network, style_layers
from l2o.tasks.registry import make_family
from l2o.tune import lr_grid, tuned_rules

LEARNED = "LSTM (learned)"
# The paper's neural-art optimizer: log/sign preprocessing, output scale 1.
RULE = LSTMConfig(preprocess=True, output_scale=1.0)
# 128 steps per problem in truncations of 32 (the paper); two problems per episode, the log meta-loss (losses
# span orders of magnitude over an episode), the meta learning rate decayed by a cosine.
TRAIN = TrainConfig(episodes=150, horizon=128, unroll=32, problems=2, meta_lr=3e-3, schedule="cosine",
                    log_loss=True, val_every=25, val_problems=4, val_metric="log_final", seed=0)
TEST_STYLE = "swirls"


@dataclass(frozen=True)
class ExperimentConfig:
    test_problems: int = 50  # held-out test content images per setting (distinct crops of the test photographs)
    tune_problems: int = 2  # validation content images for each setting's learning-rate search
    steps: int = 128  # optimisation steps (the paper: 128)
    test_size: int = 128  # the image side of the new-style setting (the paper: 128)
    lr_min: float = 1e-3  # the baselines' learning-rate grid: lr_min … lr_max (SGD and NAG need large rates here: the
    lr_max: float = 1e5  # loss is a mean over many activations, so its pixel gradients are small)
    per_decade: int = 2  # grid points per factor of ten
    figure_problems: int = 3  # content images shown in each Figure 9
    only: str = "all"  # "all", or a comma-separated list of settings (train_style, new_style)

    def __post_init__(self):
        if not 1 <= self.test_problems <= POOL["test"]:
            raise ValueError(f"test_problems must be between 1 and {POOL['test']} (the distinct test crops)")
        if not 1 <= self.figure_problems <= self.test_problems:
            raise ValueError("figure_problems must be between 1 and test_problems")


@dataclass
class Settings:
    task: ArtConfig = field(default_factory=ArtConfig)
    rule: LSTMConfig = RULE
    train: TrainConfig = TRAIN
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)


def eval_tasks(s: Settings) -> dict[str, ArtConfig]:
    """Every evaluation setting: name -> the task's settings."""
    tasks = {"train_style": s.task, "new_style": replace(s.task, size=s.experiment.test_size, style=TEST_STYLE)}
    return common.select(tasks, s.experiment.only, "settings")


def network_name(cfg: ArtConfig) -> str:
    layers = content_layers(cfg)
    content = "every layer" if layers == style_layers(cfg) else ", ".join(layers)
    return f"{describe_network(cfg)}, content at {content}"


def describe(cfg: ArtConfig, steps: int | None = None) -> str:
    return (f"{cfg.size}×{cfg.size}, style '{cfg.style}' (drawn)" + (f", {steps} steps" if steps else ""))


def figure9(path: Path, family, rules: dict, steps: int, n: int, title: str) -> dict[str, list[float]]:
    """Content | each rule's image after ``steps`` steps | style, for the first ``n`` test images (the same
    draw as the evaluation's); returns each rule's final losses on them."""
    task = family.sample("test", 0, n)
    images, finals = {}, {}
    for label, rule in rules.items():
        if isinstance(rule, torch.nn.Module):
            rule.eval()
        run = unroll(rule, task, steps)
        images[label], finals[label] = run.params["image"], [float(v) for v in run.losses[-1]]
    rows = []
    for b in range(n):
        row = [("content", task.content[b])]
        row += [(f"{label}\nloss {finals[label][b]:.3g}", images[label][b]) for label in rules]
        rows.append([*row, ("style", task.style)])
    plot_images(rows, path, title)
    return finals


def _timing(family, rule, problems: int = 2, repeats: int = 5) -> dict[str, float]:
    """Seconds per step of the feature network (loss and gradient) and of the optimizer's update."""
    task = family.sample("test", 0, problems)
    params = task.init_params()
    state = rule.init(params)
    net_s = opt_s = 0.0
    rule.eval()
    for _ in range(repeats):
        t = time.perf_counter()
        p = {k: v.detach().requires_grad_() for k, v in params.items()}
        grads = dict(zip(p, torch.autograd.grad(task.loss(p).sum(), list(p.values()))))
        net_s += time.perf_counter() - t
        t = time.perf_counter()
        with torch.no_grad():
            rule.update(grads, state)
        opt_s += time.perf_counter() - t
    return {"problems": problems, "feature_network_s": net_s / repeats, "optimizer_s": opt_s / repeats}


def run(out: str | Path, settings: Settings | None = None, *, progress: bool = True, device: str = "cpu",
        command: str | None = None, log=print, implementation: str = "auto") -> dict:
    """Run the suite into ``out``; returns the summary."""
    from l2o.rules.lstm import LSTMRule

    s = settings or Settings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tasks, e = eval_tasks(s), s.experiment
    net = network_name(s.task)
    log(f"1/2 meta-training on {describe(s.task, s.train.horizon)}; feature network: {net}")
    folder = out / "train"
    result = meta_train(make_family("art", **asdict(s.task)), LSTMRule(s.rule, implementation=implementation), s.train, folder,
                        resume="auto", progress=progress, device=device,
                        info={"task": "art", "description": f"neural art, {describe(s.task)}; features: {net}"})
    plot_history(folder / "history.csv", folder / "history.png")
    log(f"    {result.state.seconds:.0f} s of meta-training; best validation at episode {result.state.best_episode}")
    if not common.only_main_continues():  # torchrun: the other processes' part is done
        return {}

    log(f"2/2 tuning the baselines per setting ({e.tune_problems} validation images) and evaluating on "
        f"{e.test_problems} test images for {e.steps} steps")
    results, finals, timing = {}, {}, {}
    for name, cfg in tasks.items():
        family = make_family("art", **asdict(cfg))
        tuning, results[name] = common.tune_and_evaluate(
            out / "tasks" / name, family, e.steps, {LEARNED: result.rule},
            grid=lr_grid(e.lr_min, e.lr_max, e.per_decade), tune_problems=e.tune_problems,
            test_problems=e.test_problems, progress=progress, device=device)
        h = common.headline(results[name], LEARNED)
        log(f"    {name}: learned {h['learned_final_mean']:.4g}   best baseline {h['best_baseline']} "
            f"(lr {h['best_baseline_lr']:.3g}) {h['best_baseline_final_mean']:.4g}   "
            f"ratio {h['ratio_final_vs_best_baseline']:.3f}")
        best = {h["best_baseline"]: tuned_rules(tuning)[h["best_baseline"]]}
        finals[name] = figure9(out / f"figure9_{name}.png", family, {LEARNED: result.rule, **best}, e.steps,
                               e.figure_problems, f"{describe(cfg, e.steps)}; features: {net}")
        timing[name] = _timing(family, result.rule)

    plot_panels([(results[k], describe(tasks[k], e.steps)) for k in results], out / "figure8.png",
                suptitle=f"Figure 8: neural art, {e.test_problems} test images per setting; features: {net}")
    summary = {
        "command": command,
        "feature_network": net,
        "styles": {"train": s.task.style, "test": TEST_STYLE, "note": "both drawn by code (l2o.data.art_images)"},
        "meta_train_seconds": round(result.state.seconds, 1),  # wall-clock
        "meta_train_cpu": common.meta_cpu(result.state),
        "best_episode": result.state.best_episode,
        "tasks": {k: {"description": describe(tasks[k], e.steps), **common.headline(v, LEARNED),
                      "figure9_final_losses": finals[k], "seconds_per_step": timing[k]}
                  for k, v in results.items()},
        "total_seconds": round(time.perf_counter() - started, 1),  # this invocation's wall-clock
        "compute_seconds": common.compute_seconds(result.state.seconds, [out / "tasks" / k for k in results]),
        "implementation": implementation_of(result.rule),
        "settings": {k: asdict(getattr(s, k)) for k in ("task", "rule", "train", "experiment")},
        "machine": common.machine(device),
    }
    checkpoint.write_json(out / "summary.json", summary)
    checkpoint.write_json(folder / "summary.json", {  # the optimizer's own results, for `l2o export`
        "command": command, "experiment": "art", "label": LEARNED, "feature_network": net,
        "meta_train_seconds": summary["meta_train_seconds"], "best_episode": summary["best_episode"],
        "tasks": {k: {kk: vv for kk, vv in t.items() if kk != "figure9_final_losses"}
                  for k, t in summary["tasks"].items()},
        "settings": summary["settings"]})
    md = [f"Neural art, meta-trained on {describe(s.task, s.train.horizon)} "
          f"({common.describe_meta_time(result.state.seconds, summary['meta_train_cpu'])}); "
          f"feature network: {net}; {e.test_problems} test content images per setting. "
          f"{describe_implementation(result.rule)} {common.describe_compute(summary['compute_seconds'])}\n",
          "| setting | learned: final loss | best tuned baseline | its final loss | learned / best | beats all | "
          "s/step: features / optimizer |",
          "|---|---|---|---|---|---|---|"]
    for k, t in summary["tasks"].items():
        md.append(f"| {k}: {t['description']} | {t['learned_final_mean']:.4g} ± {t['learned_final_sem']:.2g} | "
                  f"{t['best_baseline']} (lr {t['best_baseline_lr']:.3g}) | {t['best_baseline_final_mean']:.4g} | "
                  f"{t['ratio_final_vs_best_baseline']:.3f}× | "
                  f"{'yes' if t['learned_beats_every_baseline'] else '**no**'} | "
                  f"{t['seconds_per_step']['feature_network_s']:.3f} / {t['seconds_per_step']['optimizer_s']:.4f} |")
    common.write_markdown(out, md, {k: (describe(tasks[k], e.steps), v) for k, v in results.items()}, log)
    return summary
