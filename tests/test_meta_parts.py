"""The named parts of meta-training, each on its own: the meta-objective, the problem seeds and augmentations,
the truncated-BPTT estimator, the skip decision, the run folder, and an estimator of one's own plugged in."""

import math

import pytest
import torch

from l2o.meta import TrainConfig, TruncatedBPTT, meta_train, problem_seed, unroll
from l2o.meta.objective import loss_weights, meta_loss, score
from l2o.meta.run_folder import RunFolder
from l2o.meta.sampling import training_task
from l2o.meta.skip import take_step
from l2o.rules import LSTMRule
from l2o.tasks import QuadraticFamily

SMALL = dict(horizon=20, unroll=10, problems=8, val_every=2, val_problems=16, checkpoint_every=1)


def test_meta_loss_is_the_weighted_sum_of_mean_losses():
    losses = torch.tensor([[9.0, 9.0], [1.0, 3.0], [2.0, 4.0]])  # f(θ_start) first: left out
    cfg = TrainConfig(horizon=4, unroll=2)
    assert meta_loss(losses, cfg, 0).item() == pytest.approx(2.0 + 3.0)
    assert meta_loss(losses, TrainConfig(horizon=4, unroll=2, loss_weights="last"), 0).item() == pytest.approx(3.0)
    linear = TrainConfig(horizon=4, unroll=2, loss_weights="linear")
    assert meta_loss(losses, linear, 1).item() == pytest.approx(2.0 * 3 / 4 + 3.0 * 4 / 4)
    logged = TrainConfig(horizon=4, unroll=2, log_loss=True)
    assert meta_loss(losses, logged, 0).item() == pytest.approx((math.log(1) + math.log(3)) / 2
                                                                 + (math.log(2) + math.log(4)) / 2)
    scaled = meta_loss(losses * torch.tensor([2.0, 10.0]), cfg, 0, scale=torch.tensor([2.0, 10.0]))
    assert scaled.item() == pytest.approx(5.0)
    assert loss_weights(linear, 0).tolist() == [0.25, 0.5]
    assert score(torch.tensor([[5.0], [float("nan")]]), "final") == math.inf
    steps = torch.tensor([[9.0, 9.0], [8.0, 8.0], [7.0, 7.0], [1.0, 3.0], [3.0, 5.0]])  # 4 steps: the tail is 1
    assert score(steps, "log_tail") == pytest.approx((math.log(3.0) + math.log(5.0)) / 2)
    nine = torch.cat([torch.full((5, 1), 9.0), torch.tensor([[1.0], [2.0], [3.0], [5.0]])])  # 8 steps: tail 2
    assert score(nine, "log_tail") == pytest.approx(math.log(4.0))


def test_problem_seeds_are_distinct_streams():
    assert problem_seed(0, 7) == 7 and problem_seed(3, 7) == 7 + 3 * 1_000_003  # what runs always drew
    seeds = {problem_seed(s, e) for s in range(3) for e in range(50)}
    assert len(seeds) == 3 * 50
    with pytest.raises(ValueError, match=">= 0"):
        problem_seed(0, -1)


def test_training_task_draws_the_same_augmented_problems_each_time():
    family = QuadraticFamily()
    cfg = TrainConfig(problems=4, scale_spread=10.0, seed=2)
    (a, scale_a), (b, scale_b) = training_task(family, cfg, 5), training_task(family, cfg, 5)
    assert torch.equal(scale_a, scale_b) and torch.equal(a.loss(a.init_params(), 0), b.loss(b.init_params(), 0))
    base = family.sample("train", problem_seed(2, 5), 4)
    assert torch.allclose(a.loss(a.init_params(), 0), scale_a * base.loss(base.init_params(), 0))
    plain, none = training_task(family, TrainConfig(problems=4, seed=2), 5)
    assert none is None and torch.equal(plain.loss(plain.init_params(), 0), base.loss(base.init_params(), 0))
    part, part_scale = training_task(family, cfg, 5, part=(1, 2))  # a process's share: the same problems
    torch.testing.assert_close(part.loss(part.init_params(), 0), a.loss(a.init_params(), 0)[1:3])
    assert torch.equal(part_scale, scale_a[1:3])


@pytest.mark.parametrize("name", ["quadratic", "mnist-like", "param-scaled"])
def test_a_share_of_a_batch_is_those_problems_of_the_batch(name):
    from l2o.tasks.mlp import MLPFamily, synthetic_dataset

    cfg = TrainConfig(problems=5, seed=1, param_scale_spread=3.0 if name == "param-scaled" else 1.0)
    family = QuadraticFamily() if name == "quadratic" else MLPFamily(synthetic_dataset(200, 12, 3), hidden=(4,),
                                                                        batch_size=7)
    whole, _ = training_task(family, cfg, 3)
    for first, number in ((0, 2), (2, 3), (4, 1)):
        part, _ = training_task(family, cfg, 3, part=(first, number))
        for step in (0, 1, 5):
            torch.testing.assert_close(part.loss(part.init_params(), step),
                                       whole.loss(whole.init_params(), step)[first:first + number])

def test_truncated_bptt_gives_the_gradient_of_the_unrolled_meta_loss():
    torch.manual_seed(0)
    rule = LSTMRule(preprocess=False, output_scale=1.0)
    task = QuadraticFamily().sample("train", 0, 4)
    cfg = TrainConfig(horizon=10, unroll=5)
    objective = lambda losses, k: meta_loss(losses, cfg, k)  # noqa: E731
    estimator = TruncatedBPTT(5)
    carry = estimator.start(rule, task)
    loss, carry = estimator.estimate(rule, task, carry, 0, objective)
    grads = [p.grad.clone() for p in rule.parameters()]
    rule.zero_grad(set_to_none=True)
    out = unroll(rule, task, 5, meta=True)
    reference = meta_loss(out.losses, cfg, 0)
    reference.backward()
    assert loss.item() == reference.item() and not loss.requires_grad
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, rule.parameters()))
    assert torch.equal(carry[0]["theta"], out.params["theta"]) and not carry[0]["theta"].requires_grad

    rule.zero_grad(set_to_none=True)
    nan_loss, _ = estimator.estimate(rule, task, estimator.start(rule, task), 0, lambda losses, k: losses.sum() * math.nan)
    assert math.isnan(nan_loss.item()) and all(p.grad is None for p in rule.parameters())  # nothing back-propagated


def test_the_skip_decision():
    one, inf, nan = torch.tensor(1.0), torch.tensor(math.inf), torch.tensor(math.nan)
    assert take_step(one, one, True)
    assert not take_step(nan, one, True) and not take_step(one, inf, True) and not take_step(one, one, False)


def test_the_run_folder(tmp_path):
    folder = RunFolder(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        folder.open({"a": 1}, resume=True)
    assert folder.open({"a": 1}, resume=False) is False
    assert (tmp_path / "run" / "config.json").is_file()
    (tmp_path / "run" / ".state.safetensors.x.tmp").write_bytes(b"half")
    assert folder.open({"a": 1}, resume=True, progress=False) is False  # stopped before its first checkpoint
    assert not list((tmp_path / "run").glob(".*.tmp"))

    fam, cfg = QuadraticFamily(), TrainConfig(episodes=2, **SMALL)
    meta_train(fam, LSTMRule(preprocess=False), cfg, tmp_path / "trained", progress=False)
    trained = RunFolder(tmp_path / "trained")
    assert trained.has_state()
    with pytest.raises(FileExistsError, match="pass --resume"):
        trained.open({}, resume=False)


class _Frozen:
    """An estimator of one's own: counts its calls and leaves φ where it is (zero gradients)."""

    name = "frozen"

    def __init__(self):
        self.calls = 0

    def start(self, rule, task, seed):
        return seed

    def estimate(self, rule, task, carry, truncation, objective):
        self.calls += 1
        for p in rule.parameters():
            p.grad = torch.zeros_like(p)
        return torch.tensor(1.0), carry


def test_an_estimator_of_ones_own_plugs_into_meta_train():
    torch.manual_seed(0)
    rule = LSTMRule(preprocess=False)
    estimator = _Frozen()
    cfg = TrainConfig(episodes=3, **SMALL)
    before = {k: v.clone() for k, v in rule.state_dict().items()}
    result = meta_train(QuadraticFamily(), rule, cfg, progress=False, estimator=estimator, reinit=False)
    assert estimator.calls == 3 * 2 and result.state.meta_steps == 6
    assert all(torch.equal(before[k], v) for k, v in result.rule.state_dict().items())  # Adam on zero gradients
