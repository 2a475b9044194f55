"""Figures, made from saved results files only (this module never trains or evaluates)."""

from __future__ import annotations

import csv
import io
import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from l2o.checkpoint import atomic_write_bytes  # noqa: E402

STYLE = {  # the paper's figures: learned optimizer solid, baselines dashed
    "sgd": dict(color="tab:blue", linestyle="--"),
    "rmsprop": dict(color="tab:purple", linestyle="--"),
    "adam": dict(color="tab:green", linestyle="--"),
    "nag": dict(color="tab:orange", linestyle="--"),
    "lbfgs": dict(color="tab:gray", linestyle=":"),
}
REPEAT_COLOURS = ("darkcyan", "tab:pink", "tab:olive")  # for a second, third, fourth rule of one style
LEARNED_STYLE = {  # the learned optimizers, solid: the LSTM, with averaging cells, with a memory
    "lstm": dict(color="tab:red", linestyle="-", linewidth=2),
    "gac": dict(color="tab:brown", linestyle="-", linewidth=2),
    "ntm": dict(color="black", linestyle="-", linewidth=2),
}


def _style(rule: dict[str, Any]) -> dict[str, Any]:
    if rule.get("name") in STYLE:
        return STYLE[rule["name"]]
    kind = "gac" if rule.get("gac") and rule.get("name") == "lstm" else rule.get("name")
    return LEARNED_STYLE.get(kind, LEARNED_STYLE["lstm"])


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(results: dict[str, Any], path: str | Path, title: str | None = None, band: bool = True) -> None:
    """Mean loss against the step on a log scale, one line per rule, inter-quartile band shaded."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    _curves(ax, results, band)
    task = results["task"]
    ax.set_title(title or f"{task.get('name', 'task')}: {results['num_problems']} held-out problems")
    ax.legend(frameon=False)
    _save(fig, path)


def plot_panels(panels: list[tuple[dict[str, Any], str]], path: str | Path, suptitle: str | None = None) -> None:
    """Several results side by side (the paper's Figure 5), one panel per (results, title)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (results, title) in zip(axes[0], panels):
        _curves(ax, results, band=False)
        ax.set_title(textwrap.fill(title, width=48), fontsize=10)  # a panel's width at this size
        ax.legend(frameon=False, fontsize=7)
    if suptitle:  # wrapped to the panels' width, as plot_images's
        fig.suptitle(textwrap.fill(suptitle, width=int(4.2 * len(panels) * 10)), fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_sweep(results: dict[str, dict[str, Any]], path: str | Path) -> None:
    """Final loss against hidden units, one panel per number of layers, one line per optimizer."""
    by_layers: dict[int, list] = {}
    for r in results.values():
        by_layers.setdefault(len(r["task"]["hidden"]), []).append(r)
    fig, axes = plt.subplots(1, len(by_layers), figsize=(4.6 * len(by_layers), 3.8), squeeze=False, sharey=True)
    for ax, (layers, rs) in zip(axes[0], sorted(by_layers.items())):
        rs = sorted(rs, key=lambda r: r["task"]["hidden"][0])
        units = [r["task"]["hidden"][0] for r in rs]
        for label in rs[0]["rules"]:
            style = _style(rs[0]["rules"][label]["rule"])
            finals = [r["rules"][label]["final_mean"] for r in rs]
            ax.plot(units, finals, marker="o", label=label, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(units, [str(u) for u in units])
        ax.set_yscale("log")
        ax.set_xlabel("hidden units per layer")
        ax.set_title(f"{layers} hidden layer{'s' if layers > 1 else ''}, {rs[0]['steps']} steps")
        ax.grid(True, which="both", alpha=0.25)
    axes[0][0].set_ylabel(f"final loss (mean over {rs[0]['num_problems']} test problems)")
    axes[0][0].legend(frameon=False, fontsize=8)
    _save(fig, path)


def _curves(ax, results: dict[str, Any], band: bool) -> None:
    used = set()
    for label, r in results["rules"].items():
        style = dict(_style(r["rule"]))
        # two rules of one kind (LSTM and LSTM-sub, an ablation): told apart by colour as well as by dashes, since
        # dashes vanish on a noisy curve of a thousand steps
        for dashes, colour in zip(("-.", ":", (0, (5, 1, 1, 1, 1, 1))), REPEAT_COLOURS):
            if (style["color"], str(style["linestyle"])) not in used:
                break
            style["linestyle"], style["color"] = dashes, colour
        used.add((style["color"], str(style["linestyle"])))
        steps = range(len(r["mean"]))
        lr = r["rule"].get("lr")
        name = f"{label} (lr {lr:.3g})" if lr is not None else label
        ax.plot(steps, r["mean"], label=name, **style)
        if band:
            ax.fill_between(steps, r["q25"], r["q75"], color=style["color"], alpha=0.08, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (mean over {results['num_problems']} {results['split']} problems)")
    ax.grid(True, which="both", alpha=0.25)


def plot_history(history_csv: str | Path, path: str | Path) -> None:
    """Validation metric against meta-training episodes, from a run's history.csv."""
    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{history_csv} has no validation rows yet")
    metric = next(k for k in rows[0] if k.startswith("val_"))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([int(r["episode"]) for r in rows], [float(r[metric]) for r in rows], marker=".", label=metric)
    ax.plot([int(r["episode"]) for r in rows], [float(r["best"]) for r in rows], label="best so far")
    if all(float(r[metric]) > 0 for r in rows if math.isfinite(float(r[metric]))):  # a log metric is already one
        ax.set_yscale("log")
    ax.set_xlabel("meta-training episode")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(frameon=False)
    _save(fig, path)


def plot_tuning(tuning: dict[str, Any], path: str | Path) -> None:
    """Validation score against learning rate for every tuned baseline."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, b in tuning["baselines"].items():
        pts = [(lr, s) for lr, s in zip(tuning["grid"], b["scores"]) if s is not None]
        ax.plot(*zip(*pts), marker=".", label=f"{name} (best {b['lr']:.3g})", **{**STYLE.get(name, {}), "linestyle": "-"})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"validation {tuning['metric']} loss")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(frameon=False)
    _save(fig, path)


def plot_images(rows: list[list[tuple[str, Any]]], path: str | Path, suptitle: str | None = None) -> None:
    """A grid of images, one row per list of (title, (3, H, W) tensor in [0, 1]; clipped), e.g. Figure 9."""
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.35 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        for ax in ax_row:
            ax.axis("off")
        for ax, (title, image) in zip(ax_row, row):
            ax.imshow(image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=8)
    if suptitle:  # wrapped to the grid's width (a long line would widen the saved figure around the grid)
        fig.suptitle(textwrap.fill(suptitle, width=int(2.2 * cols * 12)), fontsize=9)
    _save(fig, path)
