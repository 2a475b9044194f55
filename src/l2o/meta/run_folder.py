"""A meta-training run's folder on disk: what it holds, written atomically, and how a run resumes from it.

    config.json         the resolved settings (task, rule, training, implementation)
    state.safetensors   everything needed to resume: φ, the best and the averaged φ, the meta-optimizer's
                        state, the training state (episode, history, kernel builds); a JSON document in
                        its header holds the settings it was made with
    best.safetensors    the best validated rule, loadable by ``LearnedOptimizer`` and ``load_rule``
    history.csv         one row per validation
    .lock               held (an advisory lock) by the process meta-training the run, so that a second one
                        started on the same folder stops with a clear error instead of overwriting its files

Every file is written to a temporary beside it and renamed over it (``checkpoint.atomic_write_bytes``), so a
process killed at any point leaves the previous version intact; a later run removes the temporaries.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from l2o import checkpoint

STATE, BEST, CONFIG, HISTORY = "state.safetensors", "best.safetensors", "config.json", "history.csv"
LOCK = ".lock"
SEGMENT_LOCK = ".partial.lock"  # beside a long run's results file while a process computes it (l2o long)


def lock_holder(folder: str | Path) -> int | None:
    """The pid of the process meta-training the run in ``folder`` (holding its lock); see ``holder``."""
    return holder(Path(folder) / LOCK)


def holder(path: str | Path) -> int | None:
    """The pid of the process holding the advisory lock on the file ``path``, read from the kernel's table of
    locks (Linux's /proc/locks) without taking the lock; None if none holds it or where that table cannot be
    read."""
    path = Path(path)
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if "FLOCK" in fields and len(fields) >= 6 and fields[5] == dev and fields[4].isdigit():
            return int(fields[4])
    return None


def _lock(path: Path):
    return acquire(path, f"{path.parent} is being meta-trained")


def acquire(path: Path, busy: str):
    """An open handle holding an exclusive advisory lock on ``path`` (released when it is closed, or when the
    process ends however it ends), the holder's pid written in it; if another process holds it, an error that
    starts with ``busy`` ("... is being meta-trained"). None where the platform has no ``fcntl`` (there the work
    is not guarded)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the run
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):  # e.g. a file system without locks
            handle.close()
            warnings.warn(f"cannot lock {path} ({e}); nothing stops a second process from doing this work at "
                          f"the same time", stacklevel=3)
            return None
        handle.seek(0)
        pid = handle.read().strip()
        handle.close()
        raise RuntimeError(f"{busy} by another process{f' (pid {pid})' if pid else ''}; "
                           f"wait for it to end or stop it, then run the same command again") from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under ``prefix`` (rule., best., ema.), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_latest(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A run's latest saved weights φ (not its best validated ones) and the run's saved document."""
    tensors, doc = checkpoint.load(Path(run_dir) / STATE, "train_state")
    return prefixed(tensors, "rule."), doc


def check_implementation(saved: dict | None, now: dict, where: Path, reason: str = "") -> None:
    """Refuse to resume a run with another implementation; warn if only the kernel's build differs."""
    if saved is None:  # a run saved before implementations were recorded
        return
    if saved.get("implementation") != now["implementation"]:
        raise ValueError(
            f"cannot resume {where}: it was meta-trained with the {saved.get('implementation')!r} implementation"
            f"{' (kernel ' + str(saved.get('kernel')) + ')' if saved.get('kernel') else ''} and this process would "
            f"use {now['implementation']!r}{reason}. Switching midway would change the run's arithmetic; resume "
            f"where that implementation is available (`python -m l2o.kernels` says whether the fused kernel is, "
            f"`--implementation` chooses) or start a new run")
    if saved.get("kernel") != now.get("kernel"):
        warnings.warn(
            f"resuming {where} with another build of the fused kernel ({saved.get('kernel')} → {now.get('kernel')}: "
            f"another CPU, compiler flags, torch or source); its float rounding may differ, so the run may not end "
            f"bitwise where an uninterrupted one would. Recorded in the run's state (kernels).", stacklevel=4)


def _fallback_reason(config: dict) -> str:
    if config["implementation"]["implementation"] != "torch":
        return ""
    from l2o import kernels

    return f" ({kernels.unavailable_reason()})" if kernels.status()["error"] else ""


def _same_start_elsewhere(saved: dict, now: dict) -> None:
    """A run whose starting checkpoint (``init_from``) was moved or copied, the file's fingerprint unchanged (e.g. a
    suite's folders moved together): ``saved`` takes the new path, so the run resumes. Another file under the same
    or another path still differs by its fingerprint, and refuses."""
    old, new = saved.get("train"), now.get("train")
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return
    sha = old.get("init_from_sha256")
    if sha and sha == new.get("init_from_sha256") and old.get("init_from") != new.get("init_from"):
        old["init_from"] = new["init_from"]


class RunFolder:
    """The files of one run. ``open`` checks that the folder may be started or resumed as asked."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = None

    def close(self) -> None:
        """Release the run's lock (``open`` took it)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def has_state(self) -> bool:
        return (self.path / STATE).exists()

    def open(self, config: dict, *, resume: bool, progress: bool = True) -> bool:
        """Prepare the folder for a run with ``config``; return whether there is a saved state to resume."""
        if self.path.is_dir() and self._lock is None:  # before anything is read or changed
            self._lock = _lock(self.path / LOCK)
        has_state = self.has_state()
        if self.path.is_dir():
            checkpoint.remove_stale_temporaries(self.path)  # left by a process killed while writing
        if resume and not has_state:
            if not (self.path / CONFIG).is_file():
                raise FileNotFoundError(f"nothing to resume: {self.path / STATE} does not exist")
            if progress:  # stopped before its first checkpoint
                print(f"l2o: {self.path} was stopped before its first checkpoint; starting it from the beginning")
        elif not resume and has_state:
            raise FileExistsError(
                f"{self.path} already holds a training run; pass --resume to continue it or choose another folder")
        self.path.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = _lock(self.path / LOCK)
        if not (resume and has_state and (self.path / CONFIG).is_file()):  # a resumed run keeps the record of its
            checkpoint.atomic_write_text(self.path / CONFIG, json.dumps(config, indent=2) + "\n")  # start; later
        return resume and has_state  # kernel builds are in its state (kernels)

    def save_state(self, rule, opt, best: dict, avg: dict, state, config: dict) -> None:
        tensors = {f"rule.{k}": v for k, v in rule.state_dict().items()}
        tensors.update({f"best.{k}": v for k, v in best.items()})
        tensors.update({f"ema.{k}": v for k, v in avg.items()})
        sd = opt.state_dict()
        for idx, st in sd["state"].items():
            for name, value in st.items():
                tensors[f"opt.{idx}.{name}"] = torch.as_tensor(value)
        meta = {"config": config, "param_groups": sd["param_groups"], "train_state": asdict(state)}
        checkpoint.save(self.path / STATE, tensors, "train_state", meta)
        buf = io.StringIO()
        if state.history:
            writer = csv.DictWriter(buf, fieldnames=list(state.history[0]))
            writer.writeheader()
            writer.writerows(state.history)
        checkpoint.atomic_write_text(self.path / HISTORY, buf.getvalue())

    def load_state(self, rule, opt, config: dict, defaults: dict) -> tuple[dict, dict, dict]:
        """Load φ and the meta-optimizer's state into ``rule`` and ``opt``; return the best and averaged φ and
        the saved training state (a dict). ``defaults``: the training settings' defaults, for settings added
        since the run was saved."""
        tensors, doc = checkpoint.load(self.path / STATE, "train_state")
        if isinstance(doc["config"].get("train"), dict):
            doc["config"]["train"] = {**defaults, **doc["config"]["train"]}
        saved_impl = doc["config"].pop("implementation", None)
        check_implementation(saved_impl, config["implementation"], self.path, _fallback_reason(config))
        doc["config"]["implementation"] = config["implementation"]
        _same_start_elsewhere(doc["config"], config)
        if doc["config"] != config:
            diff = sorted(
                f"{part}.{k}: saved {doc['config'][part].get(k)!r}, now {config[part].get(k)!r}"
                for part in config
                for k in set(config[part]) | set(doc["config"].get(part, {}))
                if doc["config"].get(part, {}).get(k) != config[part].get(k)
            )
            raise ValueError(f"cannot resume {self.path}: the settings differ from the saved run: {'; '.join(diff)}")
        rule.load_state_dict(prefixed(tensors, "rule."))
        opt_state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, name = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = v
        opt.load_state_dict({"state": opt_state, "param_groups": doc["param_groups"]})
        return prefixed(tensors, "best."), prefixed(tensors, "ema."), doc["train_state"]

    def save_best(self, rule, best: dict, info: dict) -> None:
        """``best.safetensors``: the rule with the ``best`` weights (the rule's own weights are left as they were)."""
        current = {k: v.clone() for k, v in rule.state_dict().items()}
        rule.load_state_dict(best)
        try:
            checkpoint.save_rule(self.path / BEST, rule, info)
        finally:
            rule.load_state_dict(current)
