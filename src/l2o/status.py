"""Where long work stands: the meta-training runs and the progress files under a folder, read from their
headers (no weights are loaded), so it can be asked while the work runs.

    l2o status docs/cifar

For a run: episodes done of its total, its best validation so far, its meta-training time, and what is left at
the average pace so far (an estimate: a curriculum's later episodes cost more); and, where the system's table of
locks can be read (Linux), whether a process is meta-training it now (it holds the run's lock). For a progress file
(``*.partial.json``, see ``l2o.partial``): how many pieces are done. For a long run's saved segment
(``*.partial.pt``, ``l2o long``): its steps done of its total, the time left at its pace (the file is mapped,
not read whole) and whether a process computes it now (it holds ``*.partial.lock``). A suite's ``summary.json``
is listed with its age, and whether work under it is in progress.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from l2o import checkpoint, partial
from l2o.meta.run_folder import CONFIG, HISTORY, SEGMENT_LOCK, STATE, holder, lock_holder


def run_status(folder: str | Path, config: dict | None = None) -> dict[str, Any]:
    """One run folder's progress: {path, episode, episodes, finished, best_episode, best_metric, metric, seconds,
    seconds_left, age}; {path, error} when its files cannot be read. ``config``: its settings file, if already read."""
    folder = Path(folder)
    out: dict[str, Any] = {"path": str(folder)}
    try:
        config = json.loads((folder / CONFIG).read_text()) if config is None else config
        train = config["train"]
        out.update(episodes=int(train["episodes"]), metric=train.get("val_metric", "final"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        return {**out, "error": f"{folder / CONFIG} is not a run's settings file: {e}"}
    out["pid"] = lock_holder(folder)  # the process meta-training it now, where the system says (Linux)
    if not (folder / STATE).is_file():
        note = "its settings and history only, no resumable state" if (folder / HISTORY).is_file() else \
            "no checkpoint yet"
        return {**out, "episode": 0, "finished": False, "note": note}
    try:
        state = checkpoint.read_document(folder / STATE, "train_state")["train_state"]
    except (checkpoint.CheckpointError, KeyError, TypeError) as e:
        return {**out, "error": str(e)}
    episode, seconds = int(state["episode"]), float(state["seconds"])
    left = out["episodes"] - episode
    out.update(episode=episode, finished=left <= 0, best_episode=state.get("best_episode"),
               best_metric=state.get("best_metric"), seconds=seconds,
               cpu_seconds=float(state["cpu_seconds"]) if state.get("cpu_from") == 0 else None,
               seconds_left=seconds / episode * left if episode and left > 0 else (0.0 if left <= 0 else None),
               age=time.time() - (folder / STATE).stat().st_mtime)
    return out


def progress_status(path: str | Path) -> dict[str, Any]:
    """A progress file's {path, pieces, age}; {path, error} for a file that is not one."""
    path = Path(path)
    doc = partial.read(path)
    if doc is None:
        return {"path": str(path), "error": f"{path}: not a readable l2o progress file"}
    return {"path": str(path), "pieces": len(doc["done"]), "age": time.time() - path.stat().st_mtime}


def segment_status(path: str | Path) -> dict[str, Any]:
    """A long run's saved segment (``l2o long``): {path, step, steps, seconds, seconds_left, age}; {path, error}
    for a file that is not one."""
    import torch

    path = Path(path)
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        step, steps, seconds = int(doc["step"]), int(doc["key"]["steps"]), float(doc["seconds"])
    except Exception:  # noqa: BLE001 - whatever is wrong with the file, a line that says so
        return {"path": str(path), "error": f"{path}: not a readable l2o long segment"}
    return {"path": str(path), "step": step, "steps": steps, "seconds": seconds,
            "seconds_left": seconds / step * (steps - step) if step else None, "age": time.time() - path.stat().st_mtime,
            "pid": holder(path.with_name(path.name.removesuffix(".partial.pt") + SEGMENT_LOCK))}


def scan(root: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every run folder (a ``config.json`` with training settings), progress file and ``summary.json`` under
    ``root``, sorted by path."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist: give a run folder or an experiment's output folder")
    files = sorted(p for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file())
    configs = {p: _run_config(p) for p in files if p.name == CONFIG}
    runs = [run_status(p.parent, None if c is True else c) for p, c in configs.items() if c]
    progress = [progress_status(p) if p.name.endswith(".partial.json") else segment_status(p)
                for p in files if p.name.endswith((".partial.json", ".partial.pt"))]
    summaries = [str(p) for p in files if p.name == "summary.json" and not (p.parent / CONFIG).is_file()]
    return {"runs": runs, "progress": progress, "summaries": summaries}


def _run_config(config: Path) -> dict | bool:
    """A run's settings (read once), True for an unreadable one beside a state file (reported as unreadable),
    False for a file that is not a run's."""
    try:
        doc = json.loads(config.read_text())
    except (OSError, ValueError):
        return (config.parent / STATE).is_file()
    return doc if isinstance(doc, dict) and isinstance(doc.get("train"), dict) else False


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _locks_readable() -> bool:
    """Whether the system's table of locks can be read (Linux), so that no holder means nothing runs."""
    return Path("/proc/locks").is_file()


def _training(r: dict) -> str:
    return f"; being meta-trained now (pid {r['pid']})" if r.get("pid") else ""


def report(root: str | Path) -> str:
    """``scan(root)`` as lines of text."""
    found = scan(root)
    lines = []
    for r in found["runs"]:
        if "error" in r:
            lines.append(f"{r['path']}: unreadable: {r['error']}")
        elif "note" in r:
            lines.append(f"{r['path']}: {r['note']} ({r['episodes']} episodes)" + _training(r))
        else:
            best = (f"best {r['metric']} {r['best_metric']:.4g} at episode {r['best_episode']}"
                    if r["best_episode"] is not None and r["best_episode"] >= 0 else "not validated yet")
            where = "finished" if r["finished"] else f"about {_duration(r['seconds_left'])} left at this pace"
            lines.append(f"{r['path']}: {r['episode']}/{r['episodes']} episodes, {best}, "
                         f"{_duration(r['seconds'])} of meta-training"
                         + (f" ({_duration(r['cpu_seconds'])} of CPU)" if r.get("cpu_seconds") is not None else "")
                         + f", {where}; saved {_duration(r['age'])} ago" + _training(r))
    for p in found["progress"]:
        if "error" in p:
            lines.append(f"{p['path']}: unreadable: {p['error']}")
        elif "pieces" in p:
            lines.append(f"{p['path']}: {p['pieces']} pieces done (in progress; saved {_duration(p['age'])} ago)")
        else:
            now = (f"being computed now (pid {p['pid']})" if p.get("pid") else
                   "stopped: the suite's command resumes it" if _locks_readable() else "in progress")
            lines.append(f"{p['path']}: {p['step']:,}/{p['steps']:,} steps, {_duration(p['seconds'])} so far, about "
                         f"{_duration(p['seconds_left'])} left at this pace ({now}; saved {_duration(p['age'])} ago)")
    for summary in found["summaries"]:
        folder, age = Path(summary).parent, time.time() - Path(summary).stat().st_mtime
        running = any(Path(p["path"]).is_relative_to(folder) for p in found["progress"])
        lines.append(f"{summary}: written {_duration(age)} ago"
                     + ("; work under it is still in progress (above)" if running else ""))
    return "\n".join(lines) if lines else f"{root}: no training runs, progress files or summaries found"
