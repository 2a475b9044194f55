"""What every experiment does per evaluation task: tune the baselines' learning rates on validation problems,
then evaluate the learned optimizers and the tuned baselines on the same test problems; both cached in the
task's folder and reused while their settings (and the learned weights) are unchanged.

    folder/tuning.json, tuning.png       the learning-rate search
    folder/results.json, results.csv     every rule's curves on the test problems
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.evaluate import evaluate, load_results, save_results
from l2o.plots import plot_tuning
from l2o.rules.base import implementation_of, same_implementation, weights_sha  # noqa: F401 - weights_sha re-exported
from l2o.rules.baselines import BASELINES
from l2o.tune import save_tuning, tune, tuned_rules

TUNED = ("sgd", "nag", "rmsprop", "adam")  # the paper's baselines


def load_fresh(path: Path, expect: dict, key: str = "task") -> dict | None:
    """A saved results or tuning file (one that has ``key``), read once, if it was made with the settings
    ``expect``; else None."""
    if not path.is_file():
        return None
    try:
        saved = checkpoint.read_json(path, "results", key, "")
    except ValueError:
        return None
    return saved if matches(saved, expect) else None


def matches(saved: dict, expect: dict) -> bool:
    """Whether a loaded results or tuning file was made with the settings ``expect``."""
    return all(saved.get(k) == v for k, v in checkpoint.jsonable(expect).items())


COMPUTE = "compute.json"  # beside a task's results: {"tuning": {run: seconds}, "evaluation": {rule: seconds}}


def record_compute(folder: Path, part: str, piece: str, seconds: float, cpu_seconds: float | None = None) -> None:
    """Add one computed piece's wall-clock (in ``part``) and CPU time (in ``part``_cpu) to ``folder``'s
    compute.json; a piece computed again replaces its entries, so the file sums what the task's current results
    cost, across interruptions and processes."""
    doc = read_compute(folder)
    doc.setdefault(part, {})[piece] = round(seconds, 2)
    if cpu_seconds is not None:
        doc.setdefault(f"{part}_cpu", {})[piece] = round(cpu_seconds, 2)
    elif piece in doc.get(f"{part}_cpu", {}):
        del doc[f"{part}_cpu"][piece]
    checkpoint.write_json(folder / COMPUTE, doc)


def read_compute(folder: Path) -> dict:
    try:
        doc = json.loads((folder / COMPUTE).read_text())
    except (OSError, ValueError):  # none yet, or damaged: the timings start over (the results are unaffected)
        return {}
    return {k: v for k, v in doc.items() if isinstance(v, dict)} if isinstance(doc, dict) else {}


def compute_seconds(meta_training: float, folders: list[Path]) -> dict:
    """The suite's compute: meta-training (from the runs' states) plus every task's timed tuning runs and rule
    evaluations (compute.json), in seconds of one process each; ``timed_pieces`` counts the latter (pieces computed
    by a version without timing are not in it)."""
    docs = [read_compute(f) for f in folders]

    def timed(suffix: str = "") -> dict:  # seconds per part summed over the folders, and the pieces counted
        parts = {part: round(sum(float(v) for d in docs for v in d.get(part + suffix, {}).values()), 1)
                 for part in ("tuning", "evaluation")}
        return {**parts, "timed_pieces": sum(len(d.get(part + suffix, {})) for d in docs for part in parts)}

    wall = timed()
    return {"meta_training": round(meta_training, 1), **wall,
            "total": round(meta_training + wall["tuning"] + wall["evaluation"], 1),
            # the CPU time of the pieces that were timed in CPU too (all but those a version before that computed)
            "cpu": timed("_cpu")}


def meta_cpu(*states) -> dict:
    """The CPU seconds of meta-training runs (their states' ``cpu_seconds``, summed), and whether they cover every
    episode (``complete``: false where a run was begun by a version that did not count CPU time)."""
    return {"seconds": round(sum(s.cpu_seconds for s in states), 3),  # ms: a short run's CPU time stays > 0
            "complete": all(s.cpu_from == 0 for s in states)}


def describe_meta_time(wall: float, cpu: dict) -> str:
    """'42.0 min wall-clock, 30.1 min of CPU' (the CPU part only where it covers the whole run)."""
    return f"{wall / 60:.1f} min wall-clock" + (f", {cpu['seconds'] / 60:.1f} min of CPU" if cpu["complete"] else "")


def describe_compute(c: dict) -> str:
    """``compute_seconds``'s result in words."""
    h = {k: c[k] / 3600 for k in ("total", "meta_training", "tuning", "evaluation")}
    cpu = c.get("cpu", {})
    in_cpu = ""
    if cpu.get("timed_pieces"):
        in_cpu = (f" Of those, {cpu['timed_pieces']} were also timed in CPU time: tuning {cpu['tuning'] / 3600:.2f}, "
                  f"evaluation {cpu['evaluation'] / 3600:.2f} CPU-hours (wall-clock counts the other jobs on a shared "
                  f"machine too).")
    return (f"Compute: {h['total']:.2f} process-hours of wall-clock (meta-training {h['meta_training']:.2f}, tuning "
            f"{h['tuning']:.2f}, evaluation {h['evaluation']:.2f}; {c['timed_pieces']} timed tuning runs and "
            f"evaluations).{in_cpu}")


def tune_and_evaluate(folder: Path, family, steps: int, learned: dict, *, grid: list[float], tune_problems: int,
                      test_problems: int, baselines: tuple[str, ...] = TUNED, tune_steps: int | None = None,
                      progress: bool = True, device: str = "cpu") -> tuple[dict, dict]:
    """(tuning, results) for ``family``: ``learned`` ({label: rule}) and the tuned ``baselines`` on the same
    ``test_problems`` for ``steps`` steps. With one learned rule its fingerprint is stored as a string (as the
    MNIST suite always did), with several as {label: fingerprint}."""
    tune_steps = tune_steps or steps
    tune_path, results_path = folder / "tuning.json", folder / "results.json"
    wanted = {"task": family.config(), "steps": tune_steps, "num_problems": tune_problems, "grid": grid}
    tuning = load_fresh(tune_path, wanted, key="baselines")
    if tuning is None or set(tuning["baselines"]) != set(baselines):
        tuning = tune(family, baselines, grid=grid, steps=tune_steps, num_problems=tune_problems, progress=progress,
                      device=device, partial=folder / "tuning.partial.json",
                      on_done=lambda run, seconds, cpu: record_compute(folder, "tuning", run, seconds, cpu))
        save_tuning(tuning, tune_path)
        plot_tuning(tuning, folder / "tuning.png")
    rules = {**learned, **tuned_rules(tuning)}
    shas = {k: weights_sha(r) for k, r in learned.items()}
    expect = {"task": family.config(), "steps": steps, "num_problems": test_problems,
              "learned_sha256": next(iter(shas.values())) if len(shas) == 1 else shas}
    try:  # the file is read once: returned whole if it is this evaluation, else reused rule by rule where the
        previous = load_results(results_path) if results_path.is_file() else None  # same (e.g. fewer rules)
    except ValueError:
        previous = None
    saved = previous["rules"] if previous is not None and matches(previous, expect) else {}
    if saved and set(saved) == set(rules) and all(
            saved[k].get("rule") == checkpoint.jsonable(r.config()) and same_implementation(saved[k].get("implementation"),
                                                                        implementation_of(r))
            for k, r in rules.items()):
        return tuning, previous
    results = evaluate(rules, family, steps=steps, num_problems=test_problems, progress=progress, device=device,
                       partial=folder / "results.partial.json", previous=previous,
                       on_done=lambda label, seconds, cpu: record_compute(folder, "evaluation", label, seconds, cpu))
    results["learned_sha256"] = expect["learned_sha256"]
    results["tuning"] = {k: {"lr": b["lr"], "at_grid_edge": b["at_grid_edge"]} for k, b in tuning["baselines"].items()}
    save_results(results, results_path)
    return tuning, results


def headline(results: dict, learned: str) -> dict:
    """The learned rule ``learned`` against the best tuned baseline of a task's results."""
    r = results["rules"]
    baselines = [k for k in r if r[k]["rule"].get("name") in BASELINES]
    best = min(baselines, key=lambda k: r[k]["final_mean"])
    return {"learned_final_mean": r[learned]["final_mean"], "learned_final_sem": r[learned]["final_sem"],
            "best_baseline": best, "best_baseline_lr": r[best]["rule"]["lr"],
            "best_baseline_final_mean": r[best]["final_mean"],
            "ratio_final_vs_best_baseline": r[learned]["final_mean"] / r[best]["final_mean"],
            "learned_beats_every_baseline": all(r[learned]["final_mean"] < r[k]["final_mean"] for k in baselines),
            "steps": results["steps"], "num_problems": results["num_problems"]}


def select(tasks: dict, only: str, what: str = "tasks") -> dict:
    """``tasks`` restricted to ``only`` ("all", or a comma-separated list of their names); a clear error for a
    name that is not one of them."""
    if only == "all":
        return tasks
    wanted = [w.strip() for w in only.split(",")]
    unknown = sorted(set(wanted) - set(tasks))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; available: {', '.join(tasks)}")
    return {k: v for k, v in tasks.items() if k in wanted}


def only_main_continues() -> bool:
    """After meta-training: under torchrun, process 0 goes on alone (tuning, evaluation and figures are cheap next
    to meta-training) and the others stop; without torchrun, True."""
    from l2o.meta import distributed

    main = distributed.current().main
    distributed.teardown()
    return main


def machine(device: str) -> dict:
    """What a summary records of the machine that made it."""
    return {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
            "threads": torch.get_num_threads(), "device": device}


def write_markdown(out: Path, lines: list[str], sections: dict[str, tuple[str, dict]], log=print) -> str:
    """``out/results.md``: ``lines`` (the summary table), then each task's full table under its heading."""
    from l2o.evaluate import table

    for name, (description, results) in sections.items():
        lines = [*lines, "", f"### {name}: {description}", "", table(results)]
    text = "\n".join(lines) + "\n"
    checkpoint.atomic_write_text(out / "results.md", text)
    log("")
    log(text)
    return text
