"""The outer loop: meta-train a learned rule; it owns the schedule, clipping, the meta-optimizer, EMA,
validation and early stopping, and delegates the rest to named parts:

    l2o.meta.sampling     which problems an episode draws (``problem_seed``) and their augmentations
    l2o.meta.estimators   how a truncation becomes a meta-gradient (``TruncatedBPTT``: the paper's)
    l2o.meta.objective    the meta-loss of a truncation, the validation score
    l2o.meta.skip         whether a meta-step is taken (non-finite loss or gradient: skipped, counted)
    l2o.meta.run_folder   the run's files, written atomically, and resuming from them
    l2o.meta.distributed  several processes under torchrun: each optimises its share of an episode's problems

For each episode a fresh batch of problems is drawn; each is optimised for ``horizon`` steps, cut into
truncations of ``unroll`` steps. After every truncation the estimator fills φ's gradient, which is clipped
and applied by Adam; a skipped step (``nan_skips``) ends the episode. Every ``val_every`` episodes the rule
is evaluated on fixed "validation" problems and the best weights are kept (early stopping).

References:
    Andrychowicz et al. 2016, §2 and §3 (truncated BPTT, horizon 100, unroll 20, Adam).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from l2o import checkpoint
from l2o.meta import distributed, objective
from l2o.meta import estimators
from l2o.meta.estimators import GradientEstimator
from l2o.meta.objective import LOSS_WEIGHTS, VAL_METRICS, loss_weights, score  # noqa: F401 - re-exported
from l2o.meta.run_folder import RunFolder, load_latest  # noqa: F401 - re-exported
from l2o.meta.sampling import problem_seed, training_task
from l2o.meta.skip import take_step
from l2o.meta.unroll import unroll
from l2o.rules.base import implementation_of
from l2o.tasks.base import TaskFamily, narrow

SCHEDULES = ("constant", "cosine")
ESTIMATORS = ("tbptt", "pes")


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
    val_metric: str = "final"  # early-stopping criterion: mean "final" loss, mean "sum", "log_final", or "log_tail"
    # (each problem's log mean loss over the last quarter of the steps)
    val_steps: int = 0  # steps of each validation run; 0 = the horizon
    ema: float = 0.0  # Polyak averaging: validate and keep φ̄ ← ema·φ̄ + (1 − ema)·φ instead of φ; 0 = off
    scale_spread: float = 1.0  # multiply each training problem's objective by c ~ log-uniform[1/s, s]; 1 = off
    param_scale_spread: float = 1.0  # train on f(c ⊙ θ'), one c ~ log-uniform[1/s, s] per coordinate; 1 = off
    checkpoint_every: int = 10  # episodes between resumable checkpoints
    seed: int = 0  # seeds φ's initialisation; problems come from the episode index
    init_from: str = ""  # start φ from this checkpoint (name, file or run) instead of a fresh draw; NTM: from an LSTM
    estimator: str = "tbptt"  # the meta-gradient: "tbptt" (truncated BPTT, the paper's) or "pes" (l2o.meta.estimators)
    pes_sigma: float = 0.01  # PES: the standard deviation of the perturbations of φ
    pes_pairs: int = 8  # PES: antithetic pairs of particles
    imitate: str = ""  # "NAME:LR", e.g. "adam:0.001": imitate that baseline's updates as an extra meta-loss term (Chen et al. 2020; truncated BPTT); "NAME:LR+agreement:POWER": its steps × the sign-agreement factor^POWER (l2o.rules.agreement)
    imitate_weight: float = 1.0  # the imitation term's weight (relative squared distance between the updates)
    warm_start: str = ""  # "NAME:LR:MAX", e.g. "adam:0.01:5000": each episode's problems first take K ~ U{0…MAX} steps of that baseline; "self:MAX": of the rule itself, its state kept (l2o.tasks.warm); "": none
    remat: int = 0  # truncated BPTT: back-propagate each truncation in segments of this many steps, recomputing their forward passes (memory of one segment, not the truncation); 0 = in one piece
    curriculum: tuple[int, ...] = ()  # horizons of the training episodes by stage, each stage an equal share of the episodes (Chen et al. 2020); none: always `horizon`

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
        if self.remat < 0 or (self.remat and self.estimator != "tbptt"):
            raise ValueError(f"remat must be >= 0, and is for truncated BPTT (estimator tbptt); got {self.remat}")
        if self.val_steps < 0:
            raise ValueError(f"val_steps must be >= 0, got {self.val_steps}")
        for name in ("scale_spread", "param_scale_spread"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 1.0):
                raise ValueError(f"{name} must be a finite number >= 1, got {value}")
        if self.imitate:
            from l2o.rules.baselines import BASELINES, from_spec

            if from_spec(self.imitate) is None or self.estimator != "tbptt" or self.imitate_weight < 0:
                raise ValueError(f"imitate must be NAME:LR (or NAME:LR+agreement:POWER, POWER > 0) with NAME one of "
                                 f"{', '.join(BASELINES)} and LR > 0, with truncated BPTT and imitate_weight >= 0; got "
                                 f"{self.imitate!r}")
        if self.warm_start:
            from l2o.tasks.warm import SELF, parse

            if parse(self.warm_start)[0] == SELF and self.estimator != "tbptt":
                raise ValueError(f"warm_start {self.warm_start!r} needs truncated BPTT (estimator tbptt)")
        if self.curriculum:
            if any(h < self.unroll or h % self.unroll for h in self.curriculum):
                raise ValueError(f"every curriculum horizon must be a multiple of unroll ({self.unroll}), got "
                                 f"{list(self.curriculum)}")
            if list(self.curriculum) != sorted(self.curriculum) or len(self.curriculum) > self.episodes:
                raise ValueError(f"the curriculum's horizons must not decrease and be at most one per episode, got "
                                 f"{list(self.curriculum)}")
        if self.clip < 0:
            raise ValueError(f"clip must be >= 0, got {self.clip}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.loss_weights not in LOSS_WEIGHTS:
            raise ValueError(f"loss_weights must be one of {LOSS_WEIGHTS}, got {self.loss_weights!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.estimator == "pes" and (self.second_order or not (self.pes_sigma > 0 and self.pes_pairs >= 1)):
            raise ValueError("PES needs pes_sigma > 0, pes_pairs >= 1 and no second_order (it does not backpropagate)")
        if self.val_metric not in VAL_METRICS:
            raise ValueError(f"val_metric must be one of {VAL_METRICS}, got {self.val_metric!r}")


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
    # the number of processes that meta-trained it, each with the episode it took over at (the run is the same
    # run whatever the number; a resume with another number adds one)
    processes: list[dict[str, Any]] = field(default_factory=list)
    comm_seconds: float = 0.0  # of `seconds`, spent in collective calls (waiting for the other processes included)
    # CPU time of the process (of process 0 under torchrun) over the same episodes as `seconds`, from episode
    # `cpu_from` on (0: the whole run; later: a run begun by a version that did not count it). On a machine that
    # other jobs share, wall-clock counts their time too; CPU time does not.
    cpu_seconds: float = 0.0
    cpu_from: int = -1


@dataclass
class TrainResult:
    rule: nn.Module  # holding the best weights
    state: TrainState
    run_dir: Path | None


def resolved_config(family: TaskFamily, rule: nn.Module, cfg: TrainConfig) -> dict:
    """Everything a run is a function of: the task, the rule, the training settings, and the implementation
    that computes the rule's steps (with the compiled kernel's build name)."""
    train = asdict(cfg)
    if cfg.init_from:  # the starting weights' fingerprint, so a resume never mixes two starts
        train["init_from_sha256"] = hashlib.sha256(checkpoint.resolve(cfg.init_from).read_bytes()).hexdigest()
    return checkpoint.jsonable({"task": family.config(), "rule": rule.config(), "train": train,
                                "implementation": implementation_of(rule)})


def warm_start(rule: nn.Module, source: str) -> None:
    """φ from the checkpoint ``source``: the same kind of rule loads its weights; an NTM loads an LSTM's as its
    controller (``NTMRule.load_controller``)."""
    other = checkpoint.load_rule(source, implementation="torch")
    if type(other) is type(rule) and other.config() == rule.config():
        rule.load_state_dict(other.state_dict())
    elif hasattr(rule, "load_controller"):
        rule.load_controller(other)
    else:
        raise ValueError(f"cannot start {rule.config()} from {source}, which holds {other.config()}")


def episode_horizon(cfg: TrainConfig, episode: int) -> int:
    """The steps of training episode ``episode``: the curriculum's stage's horizon, else ``horizon``."""
    if not cfg.curriculum:
        return cfg.horizon
    return cfg.curriculum[min(episode * len(cfg.curriculum) // cfg.episodes, len(cfg.curriculum) - 1)]


def self_warm_up(cfg: TrainConfig, episode: int) -> int:
    """With ``warm_start`` "self:MAX": the truncations that the rule runs at the start of ``episode`` without a
    meta-gradient (K ~ U{0…MAX} steps from the episode's seed, rounded down to whole truncations); else 0."""
    if not cfg.warm_start:
        return 0
    from l2o.tasks.warm import SELF, parse, warm_up_steps

    if parse(cfg.warm_start)[0] != SELF:
        return 0
    return warm_up_steps(cfg.warm_start, problem_seed(cfg.seed, episode)) // cfg.unroll


def _lr(cfg: TrainConfig, episode: int) -> float:
    if cfg.schedule == "cosine":
        return cfg.meta_lr * 0.5 * (1 + math.cos(math.pi * episode / cfg.episodes))
    return cfg.meta_lr


def meta_train(
    family: TaskFamily,
    rule: nn.Module,
    cfg: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    resume: bool | str = False,
    stop_after: int | None = None,
    progress: bool = True,
    info: dict[str, Any] | None = None,
    reinit: bool = True,
    device: str | torch.device = "cpu",
    on_validate: Callable[[TrainState], None] | None = None,
    estimator: GradientEstimator | None = None,
) -> TrainResult:
    """Meta-train ``rule`` (in place) on ``family``; return it holding its best validated weights.

    ``run_dir``: where checkpoints go (None: keep nothing on disk). ``resume``: continue the run saved
    there (``"auto"``: if there is one, else start it). ``stop_after``: end this call after that many episodes (the run can be resumed later).
    ``info``: extra facts stored in ``best.safetensors`` (what the rule was trained for).
    ``reinit``: draw φ afresh from ``cfg.seed`` (False: start from the rule's current weights).
    ``device``: where φ and the problems live (problems are drawn on the CPU, so they are the same
    on every device). ``estimator``: the meta-gradient estimator (default: truncated BPTT with the run's
    ``unroll`` and ``second_order``; ``cfg.estimator`` names another).
    """
    folder = RunFolder(run_dir) if run_dir is not None else None
    try:
        return _meta_train(family, rule, cfg, folder, resume=resume, stop_after=stop_after, progress=progress,
                           info=info, reinit=reinit, device=device, on_validate=on_validate, estimator=estimator)
    finally:
        if folder is not None:
            folder.close()  # the run's lock, however the call ends: an interrupted run can be resumed at once


def _meta_train(family, rule, cfg, folder: RunFolder | None, *, resume, stop_after, progress, info, reinit, device,
                on_validate, estimator) -> TrainResult:
    """``meta_train``'s work, in the run folder ``folder`` (opened here; closed by the caller)."""
    if reinit:  # φ's initialisation comes from the seed (or init_from): the run is a function of its config
        torch.manual_seed(cfg.seed)
        rule.reset_parameters()
        if cfg.init_from:
            warm_start(rule, cfg.init_from)
    rule.to(device)  # resolves the rule's implementation for the device
    for part in rule.modules() if cfg.second_order else ():  # the kernel drops second derivatives
        if getattr(part, "implementation", None) == "fused":
            if part.requested_implementation == "fused":
                raise ValueError("second_order=True needs second derivatives, which the fused kernel drops; "
                                 "use implementation 'torch' or 'auto'")
            part.set_implementation("torch")
    config = resolved_config(family, rule, cfg)
    opt = torch.optim.Adam(rule.parameters(), lr=cfg.meta_lr)
    best = copy.deepcopy(rule.state_dict())
    avg = copy.deepcopy(rule.state_dict()) if cfg.ema else {}  # the Polyak average φ̄
    state = TrainState()
    world = distributed.current()
    comm = distributed.Communicator(world)
    mine, val_mine = distributed.share(cfg.problems, world), distributed.share(cfg.val_problems, world)
    if folder is not None:
        if resume == "auto":
            resume = folder.has_state()
        resumed = folder.open(config, resume=resume, progress=progress and world.main) if world.main else None
        comm.barrier()  # process 0 has checked and prepared the folder
        if resumed or (resumed is None and resume and folder.has_state()):
            best, avg, saved = folder.load_state(rule, opt, config, checkpoint.jsonable(asdict(TrainConfig())))
            state = TrainState(**saved)
        comm.check_same(state.episode, f"the episode to resume {folder.path} from; every process must read the "
                        f"run folder (on several machines, put --out on a file system they share)")
    if not state.kernels or state.kernels[-1]["kernel"] != config["implementation"]["kernel"]:
        state.kernels.append({"episode": state.episode, **config["implementation"]})
    if state.cpu_from < 0:
        state.cpu_from = state.episode
    if not state.processes or state.processes[-1]["processes"] != world.size:
        state.processes.append({"episode": state.episode, "processes": world.size})
    estimator = estimator if estimator is not None else estimators.make(cfg)

    # the validation problems: one set, or one per member of a family that has several (l2o.tasks.mixture)
    val_sets = family.validation_sets(cfg.val_problems) if hasattr(family, "validation_sets") else \
        {"": family.sample("validation", 0, cfg.val_problems)}
    val_sets = {k: narrow(t, *val_mine).to(device) for k, t in val_sets.items()}
    end = cfg.episodes if stop_after is None else min(cfg.episodes, state.episode + stop_after)
    bar = tqdm(total=cfg.episodes, initial=state.episode, disable=not (progress and world.main), desc="meta-train",
               unit="ep")
    weight = mine[1] / cfg.problems  # this process's share of the meta-loss's mean over problems

    def validate() -> None:
        rule.eval()
        current = copy.deepcopy(rule.state_dict()) if avg else None
        if avg:
            rule.load_state_dict(avg)
        values = [score(comm.gather_problems(unroll(rule, t, cfg.val_steps or cfg.horizon).losses, cfg.val_problems),
                        cfg.val_metric) for t in val_sets.values()]
        value = sum(values) / len(values)
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

    def save() -> None:
        if not world.main:
            return
        folder.save_state(rule, opt, best, avg, state, config)
        folder.save_best(rule, best, {**(info or {}), "trained": config, "best_episode": state.best_episode,
                                      "val_" + cfg.val_metric: state.best_metric,
                                      "train_seconds": round(state.seconds, 1)})

    try:
        if state.episode == 0 and not state.history:
            validate()
        while state.episode < end:
            t0, c0 = time.perf_counter(), time.process_time()
            rule.train()
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, state.episode)
            task, scale = training_task(family, cfg, state.episode, part=mine, device=device)

            def episode_objective(losses, truncation, extra=None, scale=scale):
                loss = objective.meta_loss(losses, cfg, truncation, scale)
                loss = loss if extra is None else loss + extra  # e.g. the imitation term
                return loss if weight == 1 else loss * weight

            carry = estimator.start(rule, task, problem_seed(cfg.seed, state.episode))
            skip = self_warm_up(cfg, state.episode)  # truncations the rule runs first without a meta-gradient
            if skip:
                rule.eval()
                for k in range(skip):
                    carry = estimator.advance(rule, task, carry, k)
                rule.train()
            for k in range(skip, skip + episode_horizon(cfg, state.episode) // cfg.unroll):
                opt.zero_grad(set_to_none=True)
                loss, carry = estimator.estimate(rule, task, carry, k,
                                                 lambda losses, t, extra=None: episode_objective(losses, t - skip, extra))
                has_grads = any(p.grad is not None for p in rule.parameters())
                comm.all_reduce_grads(rule)  # several processes: the sum of their shares' gradients
                norm = torch.nn.utils.clip_grad_norm_(rule.parameters(), cfg.clip or math.inf) if has_grads \
                    else torch.tensor(math.nan)
                if not take_step(loss, norm, has_grads):
                    state.nan_skips += 1
                    opt.zero_grad(set_to_none=True)
                    break
                opt.step()
                if avg:
                    with torch.no_grad():
                        for name, p in rule.named_parameters():
                            avg[name].lerp_(p, 1.0 - cfg.ema)
                state.meta_steps += 1
            state.episode += 1
            state.seconds += time.perf_counter() - t0
            state.cpu_seconds += time.process_time() - c0
            state.comm_seconds, comm.seconds = state.comm_seconds + comm.seconds, 0.0
            bar.update(1)
            if state.episode % cfg.val_every == 0 or state.episode == cfg.episodes:
                validate()
            if folder is not None and (state.episode % cfg.checkpoint_every == 0 or state.episode == end):
                save()
    finally:
        bar.close()
    if folder is not None and state.episode == 0:
        save()
    comm.barrier()  # several processes: process 0's files are written before any process returns
    rule.load_state_dict(best)
    rule.eval()
    return TrainResult(rule, state, folder.path if folder is not None else None)
