"""The outer loop: meta-train a learned rule by truncated backpropagation through time.

For each episode a fresh batch of problems is drawn from the family's "train" stream (seed = the
episode's index, so runs are reproducible and resumable). Each problem is optimised for ``horizon``
steps, cut into truncations of ``unroll`` steps. After every truncation

    L(φ) = Σ_{t in truncation} w_t · mean_problems f(θ_t)

is back-propagated, φ takes one Adam step, and θ and the rule's state are carried on, detached. A
non-finite meta-loss or meta-gradient skips the step (counted in ``nan_skips``) and ends the episode.
Every ``val_every`` episodes the rule is evaluated on fixed "validation" problems and the best weights
are kept (early stopping). A run folder holds ``config.json`` (the resolved settings), ``state.safetensors``
(everything needed to resume, written atomically at episode boundaries), ``best.safetensors`` (the best
rule, loadable by ``LearnedOptimizer``) and ``history.csv``.

References:
    Andrychowicz et al. 2016, §2 and §3 (truncated BPTT, horizon 100, unroll 20, Adam).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.rules.base import detach, implementation_of
from l2o.tasks.base import TaskFamily
from l2o.tasks.scaled import ParamScaledTask, ScaledTask, log_uniform_param_scales, log_uniform_scales

LOSS_WEIGHTS = ("uniform", "last", "linear")
SCHEDULES = ("constant", "cosine")
VAL_METRICS = ("final", "sum", "log_final")


@dataclass(frozen=True)
class TrainConfig:
    episodes: int = 1000  # batches of problems to meta-train on, each for `horizon` steps
    horizon: int = 100  # optimisation steps per problem before a fresh one is drawn
    unroll: int = 20  # steps per truncation: one meta-gradient step each
    problems: int = 128  # problems per episode, optimised side by side (vectorised)
    meta_lr: float = 1e-3  # Adam learning rate for φ
    schedule: str = "constant"  # meta learning-rate schedule: "constant" or "cosine" (to 0 at the end)
    second_order: bool = False  # keep ∂∇_t/∂φ (second derivatives); the paper drops them
    clip: float = 0.0  # clip the meta-gradient's global norm to this; 0 = no clipping
    loss_weights: str = "uniform"  # w_t: "uniform" (paper, all 1), "last" (each truncation's end), "linear" (t/horizon)
    log_loss: bool = False  # meta-loss Σ w_t log f(θ_t) instead of the paper's Σ w_t f(θ_t)
    val_every: int = 50  # episodes between validations (early stopping)
    val_problems: int = 256  # validation problems (the "validation" stream, seed 0)
    val_metric: str = "final"  # early-stopping criterion: mean "final" loss, mean "sum", or "log_final"
    val_steps: int = 0  # steps of each validation run; 0 = the horizon
    ema: float = 0.0  # Polyak averaging: validate and keep φ̄ ← ema·φ̄ + (1 − ema)·φ instead of φ; 0 = off
    scale_spread: float = 1.0  # multiply each training problem's objective by c ~ log-uniform[1/s, s]; 1 = off
    param_scale_spread: float = 1.0  # train on f(c ⊙ θ'), one c ~ log-uniform[1/s, s] per coordinate; 1 = off
    checkpoint_every: int = 10  # episodes between resumable checkpoints
    seed: int = 0  # seeds φ's initialisation; problems come from the episode index

    def __post_init__(self):
        for name in ("episodes", "horizon", "unroll", "problems", "val_every", "val_problems", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.horizon % self.unroll:
            raise ValueError(f"horizon ({self.horizon}) must be a multiple of unroll ({self.unroll})")
        if not (math.isfinite(self.meta_lr) and self.meta_lr > 0):
            raise ValueError(f"meta_lr must be a positive number, got {self.meta_lr}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.val_steps < 0:
            raise ValueError(f"val_steps must be >= 0, got {self.val_steps}")
        for name in ("scale_spread", "param_scale_spread"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 1.0):
                raise ValueError(f"{name} must be a finite number >= 1, got {value}")
        if self.clip < 0:
            raise ValueError(f"clip must be >= 0, got {self.clip}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.loss_weights not in LOSS_WEIGHTS:
            raise ValueError(f"loss_weights must be one of {LOSS_WEIGHTS}, got {self.loss_weights!r}")
        if self.val_metric not in VAL_METRICS:
            raise ValueError(f"val_metric must be one of {VAL_METRICS}, got {self.val_metric!r}")


def score(losses: torch.Tensor, metric: str) -> float:
    """Reduce per-step losses (steps + 1, problems) to one number; lower is better, NaN → inf."""
    if metric == "final":
        value = losses[-1].mean()
    elif metric == "sum":
        value = losses[1:].sum(0).mean()
    else:
        value = losses[-1].clamp_min(1e-30).log().mean()
    value = float(value)
    return value if math.isfinite(value) else math.inf


@dataclass
class TrainState:
    episode: int = 0  # episodes completed
    meta_steps: int = 0
    nan_skips: int = 0
    best_metric: float = math.inf
    best_episode: int = -1
    seconds: float = 0.0  # meta-training wall-clock so far, across resumes
    history: list[dict[str, Any]] = field(default_factory=list)
    # the kernel builds the run was computed with, each with the episode it took over at (a resume on
    # another CPU, compiler or torch version adds one; the implementation itself never changes midway)
    kernels: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrainResult:
    rule: nn.Module  # holding the best weights
    state: TrainState
    run_dir: Path | None


def resolved_config(family: TaskFamily, rule: nn.Module, cfg: TrainConfig) -> dict:
    """Everything a run is a function of: the task, the rule, the training settings, and the implementation
    that computes the rule's steps (with the compiled kernel's build name)."""
    return checkpoint.jsonable({"task": family.config(), "rule": rule.config(), "train": asdict(cfg),
                                "implementation": implementation_of(rule)})


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
            f"bitwise where an uninterrupted one would. Recorded in the run's state (kernels).", stacklevel=3)


def loss_weights(cfg: TrainConfig, truncation: int) -> torch.Tensor:
    """w_t for the steps t = truncation·unroll + 1 … (truncation + 1)·unroll."""
    if cfg.loss_weights == "linear":
        return torch.arange(1, cfg.unroll + 1, dtype=torch.float32).add(truncation * cfg.unroll) / cfg.horizon
    w = torch.ones(cfg.unroll)
    if cfg.loss_weights == "last":
        w.zero_()[-1] = 1.0
    return w


def _lr(cfg: TrainConfig, episode: int) -> float:
    if cfg.schedule == "cosine":
        return cfg.meta_lr * 0.5 * (1 + math.cos(math.pi * episode / cfg.episodes))
    return cfg.meta_lr


def _save_state(run_dir: Path, rule, opt, best, avg, state: TrainState, config: dict) -> None:
    tensors = {f"rule.{k}": v for k, v in rule.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best.items()})
    tensors.update({f"ema.{k}": v for k, v in avg.items()})
    sd = opt.state_dict()
    for idx, st in sd["state"].items():
        for name, value in st.items():
            tensors[f"opt.{idx}.{name}"] = torch.as_tensor(value)
    meta = {"config": config, "param_groups": sd["param_groups"], "train_state": asdict(state)}
    checkpoint.save(run_dir / "state.safetensors", tensors, "train_state", meta)
    buf = io.StringIO()
    if state.history:
        writer = csv.DictWriter(buf, fieldnames=list(state.history[0]))
        writer.writeheader()
        writer.writerows(state.history)
    checkpoint.atomic_write_text(run_dir / "history.csv", buf.getvalue())


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under ``prefix`` (rule., best., ema.), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_latest(run_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A run's latest saved weights φ (not its best validated ones) and the run's saved document."""
    tensors, doc = checkpoint.load(Path(run_dir) / "state.safetensors", "train_state")
    return _prefixed(tensors, "rule."), doc


def _fallback_reason(config: dict) -> str:
    if config["implementation"]["implementation"] != "torch":
        return ""
    from l2o import kernels

    return f" ({kernels.unavailable_reason()})" if kernels.status()["error"] else ""


def _load_state(run_dir: Path, rule, opt, config: dict) -> tuple[dict, TrainState]:
    path = run_dir / "state.safetensors"
    tensors, doc = checkpoint.load(path, "train_state")
    if isinstance(doc["config"].get("train"), dict):  # settings added since the run was saved: their defaults
        doc["config"]["train"] = {**asdict(TrainConfig()), **doc["config"]["train"]}
    saved_impl = doc["config"].pop("implementation", None)
    check_implementation(saved_impl, config["implementation"], run_dir, _fallback_reason(config))
    doc["config"]["implementation"] = config["implementation"]
    if doc["config"] != config:
        diff = sorted(
            f"{part}.{k}: saved {doc['config'][part].get(k)!r}, now {config[part].get(k)!r}"
            for part in config
            for k in set(config[part]) | set(doc["config"].get(part, {}))
            if doc["config"].get(part, {}).get(k) != config[part].get(k)
        )
        raise ValueError(f"cannot resume {run_dir}: the settings differ from the saved run: {'; '.join(diff)}")
    rule.load_state_dict(_prefixed(tensors, "rule."))
    best = _prefixed(tensors, "best.")
    avg = _prefixed(tensors, "ema.")
    opt_state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": opt_state, "param_groups": doc["param_groups"]})
    return best, avg, TrainState(**doc["train_state"])


def meta_train(
    family: TaskFamily,
    rule: nn.Module,
    cfg: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    info: dict[str, Any] | None = None,
    reinit: bool = True,
    device: str | torch.device = "cpu",
    on_validate: Callable[[TrainState], None] | None = None,
) -> TrainResult:
    """Meta-train ``rule`` (in place) on ``family``; return it holding its best validated weights.

    ``run_dir``: where checkpoints go (None: keep nothing on disk). ``resume``: continue the run saved
    there. ``stop_after``: end this call after that many episodes (the run can be resumed later).
    ``info``: extra facts stored in ``best.safetensors`` (what the rule was trained for).
    ``reinit``: draw φ afresh from ``cfg.seed`` (False: start from the rule's current weights).
    ``device``: where φ and the problems live (problems are drawn on the CPU, so they are the same
    on every device).
    """
    if reinit:  # φ's initialisation comes from the seed: the run is a function of its config
        torch.manual_seed(cfg.seed)
        rule.reset_parameters()
    rule.to(device)  # resolves the rule's implementation for the device
    if cfg.second_order and getattr(rule, "implementation", None) == "fused":  # the kernel drops them
        if rule.requested_implementation == "fused":
            raise ValueError("second_order=True needs second derivatives, which the fused kernel drops; "
                             "use implementation 'torch' or 'auto'")
        rule.set_implementation("torch")
    config = resolved_config(family, rule, cfg)
    opt = torch.optim.Adam(rule.parameters(), lr=cfg.meta_lr)
    best = copy.deepcopy(rule.state_dict())
    avg = copy.deepcopy(rule.state_dict()) if cfg.ema else {}  # the Polyak average φ̄
    state = TrainState()
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        has_state = (run_dir / "state.safetensors").exists()
        if run_dir.is_dir():
            checkpoint.remove_stale_temporaries(run_dir)  # left by a process killed while writing
        if resume and has_state:
            best, avg, state = _load_state(run_dir, rule, opt, config)
        elif resume and (run_dir / "config.json").is_file():  # stopped before its first checkpoint
            if progress:
                print(f"l2o: {run_dir} was stopped before its first checkpoint; starting it from the beginning")
        elif resume:
            raise FileNotFoundError(f"nothing to resume: {run_dir / 'state.safetensors'} does not exist")
        elif has_state:
            raise FileExistsError(
                f"{run_dir} already holds a training run; pass --resume to continue it or choose another folder"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2) + "\n")
    if not state.kernels or state.kernels[-1]["kernel"] != config["implementation"]["kernel"]:
        state.kernels.append({"episode": state.episode, **config["implementation"]})

    val_task = family.sample("validation", 0, cfg.val_problems).to(device)
    truncations = cfg.horizon // cfg.unroll
    end = cfg.episodes if stop_after is None else min(cfg.episodes, state.episode + stop_after)
    bar = tqdm(total=cfg.episodes, initial=state.episode, disable=not progress, desc="meta-train", unit="ep")

    def validate() -> None:
        rule.eval()
        current = copy.deepcopy(rule.state_dict()) if avg else None
        if avg:
            rule.load_state_dict(avg)
        losses = unroll(rule, val_task, cfg.val_steps or cfg.horizon).losses
        value = score(losses, cfg.val_metric)
        if value < state.best_metric:
            state.best_metric, state.best_episode = value, state.episode
            best.update(copy.deepcopy(rule.state_dict()))
        if current is not None:
            rule.load_state_dict(current)
        state.history.append(
            {"episode": state.episode, "meta_steps": state.meta_steps, "seconds": round(state.seconds, 2),
             "val_" + cfg.val_metric: value, "best": state.best_metric, "nan_skips": state.nan_skips}
        )
        bar.set_postfix(val=f"{value:.4g}", best=f"{state.best_metric:.4g}", nan=state.nan_skips)
        if on_validate is not None:
            on_validate(state)

    def save_best() -> None:
        meta_info = {**(info or {}), "trained": config, "best_episode": state.best_episode,
                     "val_" + cfg.val_metric: state.best_metric, "train_seconds": round(state.seconds, 1)}
        current = copy.deepcopy(rule.state_dict())
        rule.load_state_dict(best)
        checkpoint.save_rule(run_dir / "best.safetensors", rule, meta_info)
        rule.load_state_dict(current)

    try:
        if state.episode == 0 and not state.history:
            validate()
        while state.episode < end:
            t0 = time.perf_counter()
            rule.train()
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, state.episode)
            # episode e of seed s draws train problems e + 1_000_003·s: a stream per seed, resumable
            problem_seed = state.episode + cfg.seed * 1_000_003
            task = family.sample("train", problem_seed, cfg.problems)
            scale = None
            if cfg.scale_spread > 1.0:  # objective-scale augmentation; the meta-loss sees f itself
                scale = log_uniform_scales(cfg.problems, cfg.scale_spread, problem_seed)
                task = ScaledTask(task, scale)
                scale = scale.to(device)
            if cfg.param_scale_spread > 1.0:  # parameter-scale augmentation: f(c ⊙ θ'), from θ_0 / c
                task = ParamScaledTask(task, log_uniform_param_scales(
                    task.init_params(), cfg.param_scale_spread, problem_seed + 2**40))
            task = task.to(device)
            params = task.init_params()
            rstate = rule.init(params)
            for k in range(truncations):
                out = unroll(rule, task, cfg.unroll, params=params, state=rstate, start=k * cfg.unroll,
                             meta=True, second_order=cfg.second_order)
                losses = out.losses[1:] if scale is None else out.losses[1:] / scale
                losses = losses.clamp_min(1e-30).log() if cfg.log_loss else losses
                meta_loss = (loss_weights(cfg, k).to(losses.device) * losses.mean(-1)).sum()
                opt.zero_grad(set_to_none=True)
                ok = bool(torch.isfinite(meta_loss))
                if ok:
                    meta_loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(rule.parameters(), cfg.clip or math.inf)
                    ok = bool(torch.isfinite(norm)) and any(p.grad is not None for p in rule.parameters())
                if not ok:
                    state.nan_skips += 1
                    opt.zero_grad(set_to_none=True)
                    break
                opt.step()
                if avg:
                    with torch.no_grad():
                        for name, p in rule.named_parameters():
                            avg[name].lerp_(p, 1.0 - cfg.ema)
                state.meta_steps += 1
                params, rstate = detach(out.params), detach(out.state)
            state.episode += 1
            state.seconds += time.perf_counter() - t0
            bar.update(1)
            if state.episode % cfg.val_every == 0 or state.episode == cfg.episodes:
                validate()
            if run_dir is not None and (state.episode % cfg.checkpoint_every == 0 or state.episode == end):
                _save_state(run_dir, rule, opt, best, avg, state, config)
                save_best()
    finally:
        bar.close()
    if run_dir is not None and state.episode == 0:
        _save_state(run_dir, rule, opt, best, avg, state, config)
        save_best()
    rule.load_state_dict(best)
    rule.eval()
    return TrainResult(rule, state, run_dir)
