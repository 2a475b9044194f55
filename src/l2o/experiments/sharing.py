"""Coordinates that share information (paper Appendix D), measured: the coordinatewise LSTM against LSTM+GAC
and NTM-BFGS (quadratics) or NTM-L-BFGS (MNIST), each meta-trained with the task's shipped recipe and
budget, against the tuned baselines on the same held-out problems.

    l2o sharing --task quadratic --out OUT     LSTM, LSTM+GAC, NTM-BFGS; SGD, NAG, RMSprop, Adam, L-BFGS
    l2o sharing --task mnist --out OUT         LSTM, LSTM+GAC, NTM-L-BFGS; SGD, NAG, RMSprop, Adam; the base
                                               task and the paper's generalisation tests (200 steps, 40 units,
                                               2 layers)

    OUT/train/<variant>/           one meta-training run per learned rule (lstm, gac, ntm; resumable)
    OUT/tasks/<task>/              tuning.json, results.json, results.csv per evaluation task
    OUT/sharing.png                the loss curves, one panel per task
    OUT/results.md, summary.json   the table and the numbers, with the settings that produced them

Every stage is saved as it finishes and running the command again reuses what is done, as ``l2o mnist``.
With several cores, the rules can be meta-trained in parallel, one process each (``--only gac --train-only``,
``--only ntm --train-only``, …), and evaluated together afterwards by the command without those flags; the
evaluation tasks can be shared out the same way (``--tasks base,units40`` in one process, ``--tasks
steps200,layers2`` in another), and the command without ``--tasks`` then gathers them into one summary.
The learned rules differ only in their architecture: same meta-training settings, seed, problems.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.experiments import common, mnist, quadratic
from l2o.meta.train import TrainConfig, meta_train
from l2o.plots import plot_history, plot_panels
from l2o.rules.base import implementation_of
from l2o.rules.lstm import LSTMRule
from l2o.rules.ntm import NTMConfig, NTMRule
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
from l2o.tasks.quadratic import QuadraticConfig, QuadraticFamily

TASKS = ("quadratic", "mnist")
GAC = 2  # averaging cells per layer: 2 did best of 1, 2 and 4 on the quadratic recipe (docs/sharing.md)
COORDINATES = {"quadratic": 10, "mnist": 15_910}  # n of each task's training optimizees
BLIND = " (reads zeroed)"  # the ablation of an NTM: its controller alone


def variants(task: str) -> dict[str, tuple[str, object]]:
    """The learned rules compared on ``task``: folder name -> (label, settings).

    The NTM's heads start at full scale (the step's output at the paper's 0.1) and are bounded by a tanh, and
    what it reads is scaled by 1/n: with the paper's initialisation its memory went unused on quadratics
    (zeroing its reads changed its mean final loss by 0.4 %; docs/sharing.md)."""
    base = quadratic.RULE if task == "quadratic" else mnist.RULE
    ntm = NTMConfig(preprocess=base.preprocess, output_scale=base.output_scale,
                    memory="full" if task == "quadratic" else "window", head_init=1.0, squash=True,
                    read_scale=1 / COORDINATES[task])
    return {"lstm": ("LSTM", base), "gac": (f"LSTM+GAC ({GAC})", replace(base, gac=GAC)),
            "ntm": ("NTM-BFGS" if ntm.memory == "full" else "NTM-L-BFGS", ntm)}


def make_rule(settings, implementation: str = "auto"):
    if isinstance(settings, NTMConfig):
        return NTMRule(settings)
    return LSTMRule(settings, implementation=implementation if not settings.gac else "auto")


@dataclass(frozen=True)
class ExperimentConfig:
    only: str = "all"  # "all", or a comma-separated list of the learned rules to train and evaluate (lstm, gac, ntm)
    test_problems: int = 0  # held-out test problems per task; 0: the task's experiment's (quadratic 1,000, MNIST 128)
    tune_problems: int = 0  # validation problems for each task's learning-rate search; 0: quadratic 512, MNIST 32
    train_only: bool = False  # meta-train the chosen rules and stop (e.g. one process per rule, then one to evaluate)
    tasks: str = "all"  # "all", or a comma-separated list of the evaluation tasks (quadratic: base; mnist: base, steps200, units40, layers2)


@dataclass
class Settings:
    task: str = "quadratic"
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    train: TrainConfig | None = None  # meta-training settings; None: the task's shipped recipe
    evaluation: dict = field(default_factory=dict)  # MNIST: overrides of mnist.ExperimentConfig (steps, grid, ...)


def _chosen(s: Settings) -> dict[str, tuple[str, object]]:
    return common.select(variants(s.task), s.experiment.only, "learned rules")


def _train(key: str, label: str, settings, family, train: TrainConfig, out: Path, info: dict, *, progress: bool,
           device: str, implementation: str, log) -> tuple[torch.nn.Module, dict]:
    folder = out / "train" / key
    log(f"    {label}: meta-training into {folder} ({train.episodes} episodes × {train.problems} problems)")
    result = meta_train(family, make_rule(settings, implementation), train, folder,
                        resume="auto", progress=progress, device=device,
                        info={**info, "description": f"{label}; {info['description']}"})
    plot_history(folder / "history.csv", folder / "history.png")
    log(f"    {label}: {result.state.seconds:.0f} s; best validation at episode {result.state.best_episode}; "
        f"{implementation_of(result.rule)['implementation']} implementation")
    return result.rule, {"meta_train_seconds": round(result.state.seconds, 1), "best_episode": result.state.best_episode,
                         "implementation": implementation_of(result.rule), "rule": result.rule.config(),
                         "run": str(folder)}


def run(out: str | Path, settings: Settings | None = None, *, data_dir=None, progress: bool = True,
        device: str = "cpu", command: str | None = None, log=print, implementation: str = "auto") -> dict:
    """Train, tune, evaluate and plot into ``out``; returns the summary."""
    s = settings or Settings()
    if s.task not in TASKS:
        raise ValueError(f"the sharing experiment runs on {', '.join(TASKS)}, not {s.task!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    chosen = _chosen(s)
    if s.task == "quadratic":
        family, train = QuadraticFamily(QuadraticConfig()), s.train or quadratic.TRAIN
        info = {"task": "quadratic", "description": "10-d quadratics ||Wθ − y||², 100 steps"}
        e = replace(mnist.ExperimentConfig(), test_problems=s.experiment.test_problems or 1000,
                    tune_problems=s.experiment.tune_problems or 512, per_decade=4, only="base")
        tasks = {"base": (QuadraticConfig(), 100)}
        baselines = ("sgd", "nag", "rmsprop", "adam", "lbfgs")
    else:
        family, train = ImageMLPFamily(MLPConfig(), data_dir=data_dir), s.train or mnist.TRAIN
        info = {"task": "mnist", "description": mnist.describe(MLPConfig(), 100)}
        e = replace(mnist.ExperimentConfig(), test_problems=s.experiment.test_problems or 128,
                    tune_problems=s.experiment.tune_problems or 32, only="base,steps200,units40,layers2",
                    **s.evaluation)
        tasks = mnist.eval_tasks(mnist.Settings(experiment=e))
        baselines = mnist.TUNED
    tasks = common.select(tasks, s.experiment.tasks, "evaluation tasks")

    log(f"1/2 meta-training {len(chosen)} learned optimizers on {s.task} with its shipped recipe")
    learned, runs = {}, {}
    for key, (label, rule_settings) in chosen.items():
        learned[label], runs[key] = _train(key, label, rule_settings, family, train, out, info, progress=progress,
                                           device=device, implementation=implementation, log=log)
    if not common.only_main_continues():  # torchrun: the other processes' part is done
        return {}
    if s.experiment.train_only:
        log("meta-training done (--train-only); run the command without it to evaluate")
        return {"task": s.task, "learned": {label: runs[key] for key, (label, _) in chosen.items()}}
    for label in [k for k in learned if isinstance(learned[k], NTMRule)]:  # how much comes through the memory
        learned[label + BLIND] = learned[label].without_reads()

    log(f"2/2 tuning {', '.join(baselines)} per task and evaluating everything on {e.test_problems} test problems")
    results = {}
    for name, (cfg, steps) in tasks.items():
        # the reads-zeroed ablation asks how much comes through the memory: on the task meta-trained on only
        rules = learned if name == "base" else {k: r for k, r in learned.items() if not k.endswith(BLIND)}
        if s.task == "quadratic":
            results[name] = _quadratic_task(rules, baselines, e, out, progress=progress, device=device, log=log)
        else:
            results[name] = mnist.run_task(name, cfg, steps, rules, mnist.Settings(experiment=e), out,
                                           data_dir=data_dir, progress=progress, device=device, log=log,
                                           baselines=baselines)

    describe = (lambda k: "10-d quadratics, 100 steps") if s.task == "quadratic" else (lambda k: mnist.describe(*tasks[k]))
    plot_panels([(results[k], describe(k)) for k in results], out / "sharing.png",
                suptitle=f"Coordinates that share information: {s.task}, {e.test_problems} held-out problems")
    reference = chosen.get("lstm", (None,))[0]
    summary = {
        "command": command,
        "task": s.task,
        "learned": {label: runs[key] for key, (label, _) in chosen.items()},
        "labels": list(learned),  # the learned rules evaluated: those trained, and each NTM with its reads zeroed (base task)
        "tasks": {k: _task_summary(v, [x for x in learned if x in v["rules"]], reference, describe(k))
                  for k, v in results.items()},
        "total_seconds": round(time.perf_counter() - started, 1),
        "settings": {"train": asdict(train), "experiment": asdict(s.experiment), "evaluation": asdict(e),
                     "baselines": list(baselines)},
        "machine": common.machine(device),
    }
    checkpoint.write_json(out / "summary.json", summary)
    for key, (label, _) in chosen.items():  # each run's own results, which `l2o export` stores with its weights
        run = summary["learned"][label]
        checkpoint.write_json(out / "train" / key / "summary.json", {
            "command": command, "experiment": "sharing", "label": label,
            "meta_train_seconds": run["meta_train_seconds"], "best_episode": run["best_episode"],
            "implementation": run["implementation"],
            "tasks": {k: {"description": t["description"], **t[label]} for k, t in summary["tasks"].items()},
            "settings": summary["settings"], "machine": summary["machine"]})
    common.write_markdown(out, _summary_lines(summary, reference),
                          {k: (summary["tasks"][k]["description"], v) for k, v in results.items()}, log)
    return summary


def _quadratic_task(learned: dict, baselines, e, out: Path, *, progress: bool, device: str, log) -> dict:
    """The quadratic experiment's tuning and test problems (cached like an MNIST task)."""
    from l2o.tune import lr_grid

    _, results = common.tune_and_evaluate(out / "tasks" / "base", QuadraticFamily(QuadraticConfig()), 100, learned,
                                          grid=lr_grid(per_decade=e.per_decade), tune_problems=e.tune_problems,
                                          test_problems=e.test_problems, baselines=baselines, progress=progress,
                                          device=device)
    for label in learned:
        log(f"    {label}: mean loss at step 100 {results['rules'][label]['final_mean']:.4g}")
    return results


def _task_summary(results: dict, learned: list[str], reference: str | None, description: str) -> dict:
    r = results["rules"]
    out = {"description": description, "steps": results["steps"], "num_problems": results["num_problems"],
           "baselines": {k: {"lr": v["rule"]["lr"], "final_mean": v["final_mean"], "final_sem": v["final_sem"]}
                         for k, v in r.items() if k not in learned}}
    for label in learned:
        h = common.headline(results, label)
        if reference is not None:
            h["ratio_final_vs_lstm"] = r[label]["final_mean"] / r[reference]["final_mean"]
        if "lbfgs" in out["baselines"]:  # beside a quasi-Newton method, the best of the coordinatewise ones too
            first = min((k for k in out["baselines"] if k != "lbfgs"), key=lambda k: out["baselines"][k]["final_mean"])
            h.update(best_first_order_baseline=first, best_first_order_lr=out["baselines"][first]["lr"],
                     best_first_order_final_mean=out["baselines"][first]["final_mean"],
                     ratio_final_vs_best_first_order=r[label]["final_mean"] / out["baselines"][first]["final_mean"])
        out[label] = h
    return out


def _summary_lines(summary: dict, reference: str | None) -> list[str]:
    learned = summary["labels"]
    others = [k for k in learned if reference and k != reference]
    quasi_newton = "lbfgs" in summary["settings"]["baselines"]
    lines = [f"Coordinates that share information, {summary['task']}: the learned optimizers meta-trained with "
             f"the same recipe, evaluated with the tuned baselines ({', '.join(summary['settings']['baselines'])}) "
             f"on the same held-out test problems. Mean loss at the last step (± s.e.).\n",
             "| task | " + " | ".join(learned) + " | best tuned baseline |" +
             (" best first-order baseline |" if quasi_newton else "") + "".join(f" {k} / LSTM |" for k in others),
             "|---|" + "---|" * (len(learned) + 1 + quasi_newton + len(others))]
    for name, t in summary["tasks"].items():
        best = t[learned[0]]
        cells = [f"{t[k]['learned_final_mean']:.4g} ± {t[k]['learned_final_sem']:.2g}"
                 + ("" if t[k]["learned_beats_every_baseline"] else " (loses)") if k in t else "—" for k in learned]
        first = min((k for k in t["baselines"] if k != "lbfgs"), key=lambda k: t["baselines"][k]["final_mean"])
        lines.append(f"| {name}: {t['description']} | " + " | ".join(cells) +
                     f" | {best['best_baseline']} (lr {best['best_baseline_lr']:.3g}) {best['best_baseline_final_mean']:.4g} |"
                     + (f" {first} (lr {t['baselines'][first]['lr']:.3g}) {t['baselines'][first]['final_mean']:.4g} |"
                        if quasi_newton else "")
                     + "".join(f" {t[k]['ratio_final_vs_lstm']:.3f}× |" if k in t else " — |" for k in others))
    lines += ["", "(loses): above the best tuned baseline's mean. —: not evaluated (an NTM with its reads zeroed "
              "runs on the base task only).", "",
              "| learned optimizer | meta-training (s) | best validation at episode | implementation |",
              "|---|---|---|---|"]
    for label, r in summary["learned"].items():
        lines.append(f"| {label} | {r['meta_train_seconds']:.0f} | {r['best_episode']} | "
                     f"{r['implementation']['implementation']} |")
    return lines
