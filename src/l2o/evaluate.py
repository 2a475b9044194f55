"""Evaluation: rules × held-out problems → loss curves, saved as JSON and CSV with their settings.

Every rule is run on the *same* problems, drawn from the family's "test" stream (never used for
meta-training, early stopping or tuning). For each step t the curve holds statistics of f(θ_t) over
the problems; ``final_*`` is f(θ_T) and ``sum_mean`` the mean over problems of Σ_{t=1..T} f(θ_t), the
paper's meta-objective.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.partial import Partial
from l2o.rules.base import UpdateRule, implementation_of, same_implementation, weights_sha
from l2o.tasks.base import TaskFamily


def summarize(losses: torch.Tensor) -> dict[str, Any]:
    """Statistics of per-step losses (steps + 1, problems), as plain floats."""
    losses = losses.double()
    finite = torch.isfinite(losses[-1])
    q = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=losses.dtype)
    quant = torch.quantile(losses.nan_to_num(nan=math.inf), q, dim=1) if losses.shape[1] > 1 else losses.T.repeat(5, 1)
    n = losses.shape[1]
    final = losses[-1]
    as_list = lambda t: [float(x) for x in t]  # noqa: E731
    return {
        "mean": as_list(losses.mean(1)),
        "std": as_list(losses.std(1) if n > 1 else torch.zeros(losses.shape[0])),
        "q10": as_list(quant[0]), "q25": as_list(quant[1]), "median": as_list(quant[2]),
        "q75": as_list(quant[3]), "q90": as_list(quant[4]),
        "final_mean": float(final.mean()),
        "final_sem": float(final.std() / math.sqrt(n)) if n > 1 else 0.0,
        "final_median": float(final.median()),
        "sum_mean": float(losses[1:].sum(0).mean()),
        "diverged": int((~finite).sum()),
    }


def evaluate(
    rules: dict[str, UpdateRule],
    family: TaskFamily,
    *,
    steps: int = 100,
    num_problems: int = 100,
    seed: int = 0,
    split: str = "test",
    progress: bool = True,
    device: str | torch.device = "cpu",
    partial: str | Path | None = None,
    previous: dict[str, Any] | None = None,
    on_done: Callable[[str, float, float], None] | None = None,
) -> dict[str, Any]:
    """Run every rule on the same ``num_problems`` problems of ``split`` for ``steps`` steps. ``partial``: a progress
    file (each finished rule's curves, kept for the same rule, settings and weights; an interrupted evaluation
    resumes from it, and it is removed when all rules are done). ``previous``: an earlier result of the same
    evaluation (a results document); a rule it ran with the same settings and weights is taken from it instead of
    being run again, so that adding a rule to a finished evaluation runs only the new one. ``on_done(label,
    seconds, cpu_seconds)``: called after each rule this call runs, with its wall-clock and the process's CPU time
    (kept out of the result)."""
    if not rules:
        raise ValueError("evaluate needs at least one rule")
    task = family.sample(split, seed, num_problems).to(device)
    out: dict[str, Any] = {"task": family.config(), "split": split, "seed": seed,
                           "num_problems": num_problems, "steps": steps, "rules": {}}
    done = Partial(partial, {k: v for k, v in out.items() if k != "rules"})
    cached = list(done.done.values())  # as found: a label's entry may be replaced below, another label may want it
    for label, rule in tqdm(rules.items(), desc=f"evaluate ({num_problems} problems)", disable=not progress):
        if isinstance(rule, torch.nn.Module):
            rule.eval().to(device)
        which = {"rule": rule.config(), "implementation": implementation_of(rule),
                 "weights_sha256": weights_sha(rule) if isinstance(rule, torch.nn.Module) else None}
        saved = next((v for v in (done.get(label), *done.done.values(), *cached)  # under another label will do
                      if v is not None and _same_run(v["which"], which)), None)
        if saved is not None and done.get(label) is not saved:
            done.put(label, saved)
        if saved is None:
            found = _previous_curves(previous, out, label, which)
            if found is None:
                started, cpu = time.perf_counter(), time.process_time()
                found = summarize(unroll(rule, task, steps).losses), which["implementation"]
                if on_done is not None:
                    on_done(label, time.perf_counter() - started, time.process_time() - cpu)
            curves, implementation = found
            done.put(label, {"which": {**which, "implementation": implementation}, "curves": curves})
        saved = done.get(label)
        out["rules"][label] = {"rule": which["rule"], "implementation": saved["which"]["implementation"],
                               **saved["curves"]}
    done.finish()
    return out


def _same_run(then: dict[str, Any], now: dict[str, Any]) -> bool:
    """The same rule (configuration and, for a learned rule, weights) on the same implementation, whatever build
    of the compiled kernel (``same_implementation``)."""
    now = checkpoint.jsonable(now)
    return (then.get("rule") == now["rule"] and then.get("weights_sha256") == now["weights_sha256"]
            and same_implementation(then.get("implementation"), now["implementation"]))


def _previous_curves(previous: dict[str, Any] | None, out: dict[str, Any], label: str,
                     which: dict[str, Any]) -> tuple[dict[str, Any], dict] | None:
    """The curves of the same run (``_same_run``) in ``previous`` and the implementation that computed them, if that
    evaluation had the same settings as ``out``: under ``label``, else under any other label (a rule renamed); else
    None."""
    if not isinstance(previous, dict) or not isinstance(previous.get("rules"), dict):
        return None
    if any(previous.get(k) != checkpoint.jsonable(out[k]) for k in ("task", "split", "seed", "num_problems", "steps")):
        return None
    from l2o.rules.baselines import BASELINES

    rules = previous["rules"]
    shas = previous.get("learned_sha256")  # {label: sha} for several learned rules, one sha for one
    learned = [k for k, r in rules.items() if isinstance(r, dict) and r.get("rule", {}).get("name") not in BASELINES]
    for name in [label, *(k for k in rules if k != label)]:
        saved = rules.get(name)
        if not isinstance(saved, dict):
            continue
        sha = shas.get(name) if isinstance(shas, dict) else (shas if learned == [name] else None)
        then = {"rule": saved.get("rule"), "implementation": saved.get("implementation"), "weights_sha256": sha}
        if _same_run(then, which):
            return {k: v for k, v in saved.items() if k not in ("rule", "implementation")}, saved.get("implementation")
    return None


def save_results(results: dict[str, Any], path: str | Path) -> None:
    """``path`` (.json) and the per-step curves beside it as .csv, both written atomically."""
    path = Path(path)
    checkpoint.write_json(path, results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    cols = ["mean", "std", "q10", "q25", "median", "q75", "q90"]
    writer.writerow(["rule", "step", *cols])
    for label, r in results["rules"].items():
        for t in range(len(r["mean"])):
            writer.writerow([label, t, *(repr(r[c][t]) for c in cols)])
    checkpoint.atomic_write_text(path.with_suffix(".csv"), buf.getvalue())


def load_results(path: str | Path) -> dict[str, Any]:
    return checkpoint.read_json(path, "results", "rules", "make one with `l2o evaluate`")


def table(results: dict[str, Any], reference: str | None = None) -> str:
    """A Markdown table: final and summed loss per rule, and the ratio of final losses to ``reference``.

    ``reference`` defaults to the best (lowest final mean) rule whose name is not a learned one.
    """
    rules = results["rules"]
    from l2o.rules.baselines import BASELINES

    learned = {k for k, r in rules.items() if r["rule"].get("name") not in BASELINES}
    baselines = [k for k in rules if k not in learned]
    if reference is None and baselines:
        reference = min(baselines, key=lambda k: rules[k]["final_mean"])
    T = results["steps"]
    lines = [
        f"| optimizer | learning rate | mean loss at step {T} (± s.e.) | median at step {T} | "
        f"mean summed loss, steps 1–{T} | final vs {reference or '—'} |",
        "|---|---|---|---|---|---|",
    ]
    ref = rules[reference]["final_mean"] if reference else None
    for label in sorted(rules, key=lambda k: rules[k]["final_mean"] if math.isfinite(rules[k]["final_mean"]) else math.inf):
        r = rules[label]
        lr = r["rule"].get("lr")
        ratio = f"{r['final_mean'] / ref:.3f}×" if ref else "—"
        div = f" ({r['diverged']} diverged)" if r["diverged"] else ""
        lines.append(
            f"| {label} | {lr:.3g} | {r['final_mean']:.4g} ± {r['final_sem']:.2g}{div} | {r['final_median']:.4g} | "
            f"{r['sum_mean']:.4g} | {ratio} |" if lr is not None else
            f"| {label} | learned | {r['final_mean']:.4g} ± {r['final_sem']:.2g}{div} | {r['final_median']:.4g} | "
            f"{r['sum_mean']:.4g} | {ratio} |"
        )
    return "\n".join(lines) + "\n"
