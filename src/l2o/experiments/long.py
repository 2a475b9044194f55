"""The long-horizon suite: learned optimizers and baselines for 10,000 steps, where a 2016-style optimizer meta-trained
on 100 steps falls apart (issue: an optimizer one can leave running).

Per task, on the same held-out test problems, each optimizer runs ``steps`` steps:

    learned     the shipped optimizers named in ``learned`` that this installation has (e.g. general, mnist)
    adam (lr)   Adam at each learning rate of ``adam_lrs`` (1e-3, 3e-3, 1e-2, 3e-2): the bar to meet
    rmsprop, nag  tuned on validation problems over ``tune_steps`` steps (``tuned``: which of them; none, for a
                  trial of one's own optimizer whose baselines' runs are copied from a finished suite)

Tasks:
    mnist_sigmoid   the paper's MNIST MLP, 784-20-10 sigmoid
    mnist_relu      the same with ReLU
    conv            the paper's conv net on Fashion-MNIST (28×28×1: the stand-in for CIFAR-10)
    unseen          an MLP 784-32-32-32-10 with tanh on Fashion-MNIST: a family none of the optimizers trained on

Each (task, optimizer) run is saved as it finishes (``tasks/<task>/<optimizer>.json``: the mean loss over the
last 1,000 steps, the largest mean loss, non-finite steps, and the curves every ``record_every`` steps), and
while it runs every ``segment`` steps (``<optimizer>.partial.pt``: the parameters, the optimizer's state and the
losses so far; loaded weights-only), so an interrupted suite resumes within the run it was in, on the trajectory
an uninterrupted run takes (each step's minibatch is a function of the step). The process computing a run holds a
lock on ``<optimizer>.partial.lock``: a second process on the same folder stops with an error naming the run rather
than computing it twice, and ``l2o status`` tells a running run from a stopped one. ``long.png`` (the curves),
``results.md`` and ``summary.json``.
"""

from __future__ import annotations

import io
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.experiments import common
from l2o.meta.run_folder import SEGMENT_LOCK, acquire
from l2o.meta.unroll import unroll
from l2o.rules.baselines import Adam
from l2o.rules.base import implementation_of, tree_leaves, tree_map, tree_rebuild
from l2o.tasks.conv import ConvConfig, ConvFamily
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
from l2o.tune import lr_grid, save_tuning, tune, tuned_rules

TASKS = ("mnist_sigmoid", "mnist_relu", "conv", "unseen")
TUNED = ("rmsprop", "nag")  # tuned together (one tuning file per task), run as asked


@dataclass(frozen=True)
class LongConfig:
    steps: int = 10_000  # optimisation steps per run
    test_problems: int = 8  # held-out test problems per task
    learned: tuple[str, ...] = ("general", "mnist")  # shipped optimizers or checkpoints / run folders (absent ones: skipped, said)
    adam_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    tuned: tuple[str, ...] = TUNED  # the baselines whose learning rate is tuned per task, then run
    tune_steps: int = 1000  # RMSprop's and NAG's learning rates: tuned over this many steps
    tune_problems: int = 4
    window: int = 1000  # "the last steps": the mean loss over the last `window` steps is the headline
    record_every: int = 10  # the curves kept in the results (every step would be megabytes)
    only: str = "all"  # "all" or a comma-separated list of tasks
    segment: int = 1000  # a running run is saved every this many steps (resumed from there)

    def __post_init__(self):
        if not 1 <= self.window <= self.steps or self.record_every < 1 or self.test_problems < 1 or self.segment < 1:
            raise ValueError("need 1 <= window <= steps, record_every >= 1, test_problems >= 1 and segment >= 1")
        object.__setattr__(self, "tuned", tuple(self.tuned))  # a list from JSON
        unknown = sorted(set(self.tuned) - set(TUNED))
        if unknown:
            raise ValueError(f"tuned: unknown baselines {unknown}; choose from {', '.join(TUNED)} (none: no tuning)")


@dataclass
class Settings:
    experiment: LongConfig = field(default_factory=LongConfig)


def families(s: Settings, data_dir=None) -> dict[str, object]:
    tasks = {"mnist_sigmoid": lambda: ImageMLPFamily(MLPConfig(), data_dir=data_dir),
             "mnist_relu": lambda: ImageMLPFamily(MLPConfig(activation="relu"), data_dir=data_dir),
             "conv": lambda: ConvFamily(ConvConfig(dataset="fashion-mnist"), data_dir=data_dir),
             "unseen": lambda: ImageMLPFamily(MLPConfig(hidden=(32, 32, 32), activation="tanh"),
                                              dataset="fashion-mnist", data_dir=data_dir)}
    return common.select(tasks, s.experiment.only)


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", label.lower()).strip("_")


def _load_segment(path: Path | None, key: dict, template) -> tuple[dict, object] | None:
    """A saved part of this run (``key``) and the optimizer's state in it (shaped as ``template``); None for
    none, another run's, or a file that cannot be read (said)."""
    if path is None or not path.is_file():
        return None
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
        if not (isinstance(doc, dict) and doc.get("key") == key):
            return None
        return doc, tree_rebuild(template, doc["state"])
    except Exception as err:  # noqa: BLE001 - whatever is wrong with the file, the run starts over
        warnings.warn(f"{path} cannot be read ({type(err).__name__}); the run starts over", stacklevel=2)
        return None


def run_one(rule, task, e: LongConfig, partial: Path | None = None, key: dict | None = None) -> dict:
    """One optimizer on the task's problems for ``e.steps`` steps: the headline numbers and thinned curves.
    ``partial``: where the run is saved every ``e.segment`` steps and resumed from (``cached_run`` removes it)."""
    if isinstance(rule, torch.nn.Module):
        rule.eval()
    key = checkpoint.jsonable(key or {})
    params = task.init_params()
    device = next(iter(params.values())).device
    state = rule.init(params)
    saved = _load_segment(partial, key, state)
    done, seconds, parts = 0, 0.0, []
    if saved is not None:
        (doc, state), to = saved, lambda t: t.to(device)  # noqa: E731
        done, seconds, parts = doc["step"], doc["seconds"], [doc["losses"]]
        params, state = {k: to(v) for k, v in doc["params"].items()}, tree_map(to, state)
    while done < e.steps:
        started = time.perf_counter()
        n = min(e.segment, e.steps - done)
        r = unroll(rule, task, n, params=params, state=state, start=done)
        losses = r.losses.detach().double().cpu()
        parts.append(losses if done == 0 else losses[1:])  # a segment's first loss is the last one's final
        params, state, done = r.params, r.state, done + n
        seconds += time.perf_counter() - started
        if partial is not None and done < e.steps:
            buffer = io.BytesIO()
            torch.save({"key": key, "step": done, "seconds": seconds, "losses": torch.cat(parts),
                        "params": {k: v.detach().cpu() for k, v in params.items()},
                        "state": [t.detach().cpu() for t in tree_leaves(state)]},
                       buffer)
            checkpoint.atomic_write_bytes(partial, buffer.getvalue())
    losses = torch.cat(parts)  # (steps + 1, problems); steps >= window >= 1, so there is a segment
    mean = losses.mean(1)
    finite = torch.isfinite(losses).all(1)
    last = mean[-e.window:]
    keep = list(range(0, e.steps + 1, e.record_every)) + ([e.steps] if e.steps % e.record_every else [])
    return {
        "rule": rule.config(), "implementation": implementation_of(rule), "seconds": seconds,
        "initial_mean": float(mean[0]), "last_window_mean": float(last.mean()),
        "final_mean": float(mean[-1]), "max_mean": float(mean.nan_to_num(nan=math.inf).max()),
        "nonfinite_steps": int((~finite).sum()),
        # diverged: a non-finite loss anywhere, or the last steps no better than the start
        "diverged": bool((~finite).any() or not float(last.mean()) < float(mean[0])),
        "recorded_steps": keep, "mean": [float(mean[i]) for i in keep],
        "median": [float(losses[i].median()) for i in keep],
    }


def cached_run(path: Path, family, rule, task, e: LongConfig, log, message: str) -> dict:
    """``run_one``, saved at ``path``; reused while the task, the rule (a learned rule's weights too), the steps and
    the problems are those of the saved run. A run cut short resumes from ``path`` with ``.partial.pt``."""
    expect = {"task": family.config(), "rule": rule.config(), "steps": e.steps, "num_problems": e.test_problems,
              "record_every": e.record_every, "window": e.window,
              "learned_sha256": common.weights_sha(rule) if isinstance(rule, torch.nn.Module) else None}
    saved = common.load_fresh(path, expect)
    if saved is not None:
        return saved
    # held while this process computes the run, so a second process on the same folder says so rather than computing
    # it twice, and `l2o status` can tell a running segment from a stopped one
    lock_path = path.with_suffix(SEGMENT_LOCK)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = acquire(lock_path, f"{path.with_suffix('')} is being computed")
    try:
        saved = common.load_fresh(path, expect)  # finished by another process while this one waited to look
        if saved is not None:
            return saved
        log(message)
        partial = path.with_suffix(".partial.pt")
        r = {**expect, **run_one(rule, task, e, partial, {**expect, "implementation": implementation_of(rule)})}
        checkpoint.write_json(path, r)
        partial.unlink(missing_ok=True)
        lock_path.unlink(missing_ok=True)
        return r
    finally:
        if lock is not None:
            lock.close()


def run(out: str | Path, settings: Settings | None = None, *, data_dir=None, progress: bool = True,
        device: str = "cpu", command: str | None = None, log=print) -> dict:
    s = settings or Settings()
    e = s.experiment
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    shipped = checkpoint.pretrained()
    present = lambda n: n in shipped or Path(n).is_file() or (Path(n) / "best.safetensors").is_file()  # noqa: E731
    learned = [name for name in e.learned if present(name)]
    missing = [name for name in e.learned if not present(name)]
    if missing:
        log(f"not shipped in this installation, skipped: {', '.join(missing)}")
    results = {}
    for name, make in families(s, data_dir).items():
        family = make()
        folder = out / "tasks" / name
        task = family.sample("test", 0, e.test_problems).to(device)
        results[name] = {"description": describe(family), "rules": {}}

        def run_all(rules: dict) -> None:
            for label, rule in rules.items():
                r = cached_run(folder / f"{slug(label)}.json", family, rule, task, e, log,
                               f"{name}: {label}, {e.steps} steps on {e.test_problems} test problems")
                results[name]["rules"][label] = r
                log(f"    {name:13s} {label:26s} mean over the last {e.window} steps {r['last_window_mean']:.4g}"
                    f"{'  DIVERGED' if r['diverged'] else ''}")

        # the learned optimizers and the bar (Adam) first: on a slow task they are what an interrupted suite has
        run_all({**{n: checkpoint.load_rule(n, device=device) for n in learned},
                 **{f"adam (lr {lr:g})": Adam(lr=lr) for lr in e.adam_lrs}})
        if not e.tuned:  # e.g. a trial's own optimizer, its baselines copied from a finished suite
            continue
        tuning_path = folder / "tuning.json"
        wanted = {"task": family.config(), "steps": e.tune_steps, "num_problems": e.tune_problems,
                  "grid": lr_grid(1e-4, 1.0, 2)}
        tuning = common.load_fresh(tuning_path, wanted, key="baselines")
        if tuning is None:
            log(f"{name}: tuning RMSprop and NAG over {e.tune_steps} steps on {e.tune_problems} validation problems")
            tuning = tune(family, TUNED, grid=wanted["grid"], steps=e.tune_steps,
                          num_problems=e.tune_problems, progress=progress, device=device,
                          partial=folder / "tuning.partial.json")
            save_tuning(tuning, tuning_path)
        run_all({f"{k} (tuned, lr {r.lr:.3g})": r for k, r in tuned_rules(tuning).items() if k in e.tuned})
    summary = {"command": command, "settings": asdict(e), "skipped": missing,
               "tasks": {k: _headline(v, learned, e) for k, v in results.items()},
               "total_seconds": round(time.perf_counter() - started, 1), "machine": common.machine(device)}
    checkpoint.write_json(out / "summary.json", summary)
    if e.adam_lrs:  # each learned optimizer's own results, as `l2o export --summary` stores them with it
        for name in learned:
            checkpoint.write_json(out / "own" / f"{slug(name)}.json", {"command": command, "tasks": {
                k: own_result(v["description"], e, v["rules"], name) for k, v in results.items()}})
    _figure(results, out / "long.png", e)
    _markdown(results, summary, out, e, log)
    return summary


def describe(family) -> str:
    cfg = family.cfg
    if isinstance(cfg, ConvConfig):
        return f"the paper's conv net on {cfg.dataset}"
    return f"MLP 784-{'-'.join(map(str, cfg.hidden))}-10 {cfg.activation} on {family.name}"


def best_adam(rows: dict) -> tuple[str | None, dict]:
    """Among one task's runs (label -> run), the label of Adam's best learning rate (None without Adam) and every
    Adam run's mean over the last steps."""
    adams = {k: v["last_window_mean"] for k, v in rows.items() if k.startswith("adam (")}
    return (min(adams, key=adams.get) if adams else None), adams


def own_result(what: str, e: LongConfig, rows: dict, name: str) -> dict:
    """One optimizer's run on one task against Adam's best rate there, as the shipped optimizers' results are kept
    (``l2o export --summary``)."""
    best, adams = best_adam(rows)
    mine = rows[name]["last_window_mean"]
    return {"description": f"{what}, {e.steps:,} steps, {e.test_problems} held-out problems",
            "measure": f"mean loss over the last {e.window:,} steps", "learned_final_mean": mine,
            "diverged": rows[name]["diverged"],
            "baseline_words": f"the best of Adam at lr {', '.join(f'{lr:g}' for lr in e.adam_lrs)}:",
            "best_baseline": best, "best_baseline_final_mean": adams[best],
            "ratio_final_vs_best_baseline": mine / adams[best]}


def _headline(task: dict, learned: list[str], e: LongConfig) -> dict:
    r = task["rules"]
    best, adams = best_adam(r)
    out = {"description": task["description"], "best_adam": best, "best_adam_last_window_mean": adams.get(best)}
    for name in learned:
        out[name] = {"last_window_mean": r[name]["last_window_mean"], "diverged": r[name]["diverged"],
                     "at_most_best_adam": bool(best and r[name]["last_window_mean"] <= adams[best])}
    return out


def _figure(results: dict, path: Path, e: LongConfig) -> None:
    import matplotlib.pyplot as plt

    from l2o.plots import _save

    # one colour per optimizer in every panel; a tuned baseline's rate differs by task (results.md has it)
    kind = lambda label: label.split(" (tuned")[0] + " (tuned per task)" if " (tuned" in label else label  # noqa: E731
    labels = list(dict.fromkeys(kind(label) for task in results.values() for label in task["rules"]))
    colour = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(results), figsize=(4.4 * len(results), 4.4), squeeze=False)
    handles = {}
    for ax, (name, task) in zip(axes[0], results.items()):
        for label, r in task["rules"].items():
            style = "-" if not label.startswith(("adam", "rmsprop", "nag")) else "--"
            (handles[kind(label)],) = ax.plot(r["recorded_steps"], r["mean"], style, color=colour[kind(label)],
                                              linewidth=2 if style == "-" else 1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{name}: {task['description']}", fontsize=9)
    axes[0][0].set_ylabel(f"mean loss ({e.test_problems} test problems)")
    # one legend for the figure, below the panels, so that it never hides a curve
    fig.legend([handles[k] for k in labels], labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.04 * ((len(labels) - 1) // 4), 1, 1))
    _save(fig, path)


def _markdown(results: dict, summary: dict, out: Path, e: LongConfig, log) -> None:
    lines = [f"{e.steps:,} steps on {e.test_problems} held-out test problems per task; the mean loss over the last "
             f"{e.window:,} steps (diverged: a non-finite loss, or the last steps no better than the start)."]
    if summary["skipped"]:
        lines.append(f"Not shipped in this installation, so not run: {', '.join(summary['skipped'])}.")
    for name, task in results.items():
        lines += ["", f"### {name}: {task['description']}", "",
                  f"| optimizer | mean, last {e.window:,} steps | at step {e.steps:,} | largest mean | diverged |",
                  "|---|---|---|---|---|"]
        for label, r in sorted(task["rules"].items(), key=lambda kv: kv[1]["last_window_mean"]):
            lines.append(f"| {label} | {r['last_window_mean']:.4g} | {r['final_mean']:.4g} | {r['max_mean']:.4g} | "
                         f"{'**yes**' if r['diverged'] else 'no'} |")
    text = "\n".join(lines) + "\n"
    checkpoint.atomic_write_text(out / "results.md", text)
    log(text)
