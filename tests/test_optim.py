import math

import pytest
import torch

from l2o import CheckpointError, LearnedOptimizer, load_rule
from l2o.meta import unroll
from l2o.tasks import QuadraticFamily


def test_matches_the_rule_on_a_quadratic():
    """The torch.optim wrapper follows exactly the trajectory of the pure rule."""
    task = QuadraticFamily().sample("test", 0, 3)
    expected = unroll(load_rule("quadratic"), task, 20).params["theta"]
    theta = torch.nn.Parameter(task.init_params()["theta"])
    opt = LearnedOptimizer([theta], checkpoint="quadratic")
    for step in range(20):
        opt.zero_grad()
        task.loss({"theta": theta}, step).sum().backward()
        opt.step()
    assert torch.allclose(theta.detach(), expected, atol=1e-6)


def test_step_returns_closure_loss_and_skips_params_without_grad():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = LearnedOptimizer([a, b])

    def closure():
        opt.zero_grad()
        loss = (a**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 3.0
    assert not torch.equal(a.detach(), torch.ones(3))
    assert torch.equal(b.detach(), torch.ones(2)) and b not in opt.state


def test_state_dict_round_trip_resumes_the_same_trajectory(tmp_path):
    def run(opt, p, n):
        for _ in range(n):
            opt.zero_grad()
            ((p - 3) ** 2).sum().backward()
            opt.step()

    p1 = torch.nn.Parameter(torch.zeros(5))
    o1 = LearnedOptimizer([p1])
    run(o1, p1, 4)
    torch.save({"p": p1.detach().clone(), "opt": o1.state_dict()}, tmp_path / "ck.pt")
    run(o1, p1, 4)
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)
    p2 = torch.nn.Parameter(saved["p"])
    o2 = LearnedOptimizer([p2])
    o2.load_state_dict(saved["opt"])
    run(o2, p2, 4)
    assert torch.equal(p1.detach(), p2.detach())


def test_clear_errors():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="lr must be"):
        LearnedOptimizer([p], lr=-1.0)
    with pytest.raises(CheckpointError, match="pretrained optimizers: .*quadratic"):
        LearnedOptimizer([p], checkpoint="resnet")
    emb = torch.nn.Embedding(4, 2, sparse=True)
    opt = LearnedOptimizer(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()


def _quad_steps(opt, params, n):
    for _ in range(n):
        opt.zero_grad()
        sum(((p - 3) ** 2).sum() for p in params).backward()
        opt.step()


def test_parameter_groups_have_their_own_update_scale():
    """lr multiplies the learned update per group; lr 0 freezes a group; the same rule as one group at lr 1."""
    a, b, c = (torch.nn.Parameter(torch.zeros(4)) for _ in range(3))
    ref = torch.nn.Parameter(torch.zeros(4))
    opt = LearnedOptimizer([{"params": [a]}, {"params": [b], "lr": 0.5}, {"params": [c], "lr": 0.0}])
    ref_opt = LearnedOptimizer([ref])
    opt.zero_grad()
    ref_opt.zero_grad()
    sum(((p - 3) ** 2).sum() for p in (a, b, c, ref)).backward()
    opt.step()
    ref_opt.step()
    assert torch.allclose(a.detach(), ref.detach())
    assert torch.allclose(b.detach(), 0.5 * ref.detach())
    assert torch.equal(c.detach(), torch.zeros(4))
    with pytest.raises(ValueError, match="lr must be"):
        LearnedOptimizer([{"params": [a]}, {"params": [b], "lr": float("nan")}])


def test_lr_scheduler_scales_the_update():
    p, q = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
    opt = LearnedOptimizer([p])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    _quad_steps(opt, [p], 1)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    before = p.detach().clone()
    _quad_steps(opt, [p], 1)
    # the same second step at lr 1, from the same state, is 10 times as large
    ref = LearnedOptimizer([q])
    _quad_steps(ref, [q], 1)
    q_before = q.detach().clone()
    _quad_steps(ref, [q], 1)
    assert torch.allclose(p.detach() - before, 0.1 * (q.detach() - q_before), atol=1e-7)


def test_float64_parameters_stay_float64_and_agree_with_float32():
    p64 = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    p32 = torch.nn.Parameter(torch.zeros(6))
    _quad_steps(LearnedOptimizer([p64]), [p64], 5)
    _quad_steps(LearnedOptimizer([p32]), [p32], 5)
    assert p64.dtype == torch.float64
    assert torch.allclose(p64.detach().float(), p32.detach(), atol=1e-5)


def test_complex_parameters_are_refused():
    z = torch.nn.Parameter(torch.zeros(2, dtype=torch.complex64))
    opt = LearnedOptimizer([z])
    z.grad = torch.ones_like(z)
    with pytest.raises(RuntimeError, match="complex"):
        opt.step()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    pc = torch.nn.Parameter(torch.zeros(7))
    pg = torch.nn.Parameter(torch.zeros(7, device="cuda"))
    _quad_steps(LearnedOptimizer([pc]), [pc], 5)
    _quad_steps(LearnedOptimizer([pg]), [pg], 5)
    assert pg.device.type == "cuda" and torch.allclose(pg.detach().cpu(), pc.detach(), atol=1e-5)


def test_state_dict_holds_only_tensors_and_numbers():
    """torch.load(weights_only=True) accepts it: no pickled objects."""
    p = torch.nn.Parameter(torch.zeros(3))
    opt = LearnedOptimizer([p], checkpoint="quadratic")
    _quad_steps(opt, [p], 2)
    sd = opt.state_dict()
    leaves = []

    def walk(x):
        if isinstance(x, dict):
            [walk(v) for v in x.values()]
        elif isinstance(x, (list, tuple)):
            [walk(v) for v in x]
        else:
            leaves.append(x)
    walk(sd)
    assert all(isinstance(x, (torch.Tensor, int, float, str, bool, type(None))) for x in leaves)


class _Spy:
    """Wraps a LearnedOptimizer's rule and records the names of every update call."""

    def __init__(self, rule):
        self.rule, self.calls = rule, []

    def __getattr__(self, name):
        return getattr(self.rule, name)

    def update(self, grads, state, **kw):
        self.calls.append(list(grads))
        return self.rule.update(grads, state, **kw)


def test_one_rule_call_per_parameter_group_with_the_real_names():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = LearnedOptimizer([{"params": list(model[0].named_parameters())},
                            {"params": list(model[2].named_parameters()), "lr": 0.5}], checkpoint="mnist")
    spy = _Spy(opt.rule)
    opt._rules[(torch.device("cpu"), torch.float32)] = spy
    model(torch.randn(5, 3)).pow(2).sum().backward()
    opt.step()
    assert spy.calls == [["weight", "bias"], ["weight", "bias"]]
    unnamed = LearnedOptimizer(model.parameters(), checkpoint="mnist")
    spy = _Spy(unnamed.rule)
    unnamed._rules[(torch.device("cpu"), torch.float32)] = spy
    unnamed.step()
    assert spy.calls == [["0.0", "0.1", "0.2", "0.3"]]


def _separately(params, grads_per_step):
    """The reference: every parameter with an optimizer of its own."""
    opts = [LearnedOptimizer([p], checkpoint="mnist") for p in params]
    for grads in grads_per_step:
        for p, g, o in zip(params, grads, opts):
            p.grad = g
            o.step()
    return opts


def _together(params, grads_per_step, opt=None, start=0, stop=None):
    opt = opt or LearnedOptimizer(params, checkpoint="mnist")
    for grads in grads_per_step[start:stop]:
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    return opt


def _steps():
    torch.manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    steps = []
    for t in range(8):
        # the second parameter has no gradient at steps 2, 3 and 6; the third gains one only at step 1
        steps.append([torch.randn(s) if not (i == 1 and t in (2, 3, 6)) and not (i == 2 and t == 0) else None
                      for i, s in enumerate(shapes)])
    return shapes, steps


def test_one_call_per_group_equals_a_call_per_parameter_as_gradients_come_and_go():
    shapes, steps = _steps()
    alone = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    grouped = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    _separately(alone, steps)
    opt = _together(grouped, steps)
    assert all(torch.equal(a.detach(), b.detach()) for a, b in zip(alone, grouped))
    assert [opt.state[p]["step"] for p in grouped] == [8, 5, 7]


def test_state_dict_round_trip_as_gradients_come_and_go(tmp_path):
    shapes, steps = _steps()
    whole = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    _together(whole, steps)
    first = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    opt = _together(first, steps, stop=3)
    torch.save({"params": [p.detach() for p in first], "opt": opt.state_dict()}, tmp_path / "ck.pt")
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)
    # one copy of the LSTM state on disk: each parameter's share is a view of one buffer
    coords = sum(torch.Size(s).numel() for s in shapes)
    assert (tmp_path / "ck.pt").stat().st_size < 1.5 * coords * 80 * 4 + 20_000
    resumed = [torch.nn.Parameter(p.clone()) for p in saved["params"]]
    opt2 = LearnedOptimizer(resumed, checkpoint="mnist")
    opt2.load_state_dict(saved["opt"])
    _together(resumed, steps, opt=opt2, start=3)
    assert all(torch.equal(a.detach(), b.detach()) for a, b in zip(whole, resumed))


def test_states_with_numbers_round_trip_through_a_state_dict(tmp_path):
    """Non-tensor state leaves (a step count) survive tree_leaves → torch.save → weights_only load."""
    from l2o.rules import Adam
    from l2o.rules.base import tree_leaves, tree_rebuild

    rule = Adam(lr=0.1)
    params = {"w": torch.zeros(1, 3)}
    _, state = rule.update({"w": torch.ones(1, 3)}, rule.init(params))
    _, state = rule.update({"w": torch.ones(1, 3)}, state)
    torch.save(tree_leaves(state), tmp_path / "s.pt")
    back = tree_rebuild(rule.init(params), torch.load(tmp_path / "s.pt", weights_only=True))
    assert back.step == 2 and isinstance(back.step, int) and torch.equal(back.exp_avg["w"], state.exp_avg["w"])


def test_general_needs_no_horizon_and_runs_past_its_training_episodes():
    """`general` on a user's model as torch.optim: no horizon or step count given; 1,000 steps (five times its
    meta-training episodes) on a small classifier, it never climbs above the start and ends below Adam's loss
    (lr 0.01, ε 1e-5: the rule it becomes late in a run)."""
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()

    def run(make, steps=1000):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
        opt, losses = make(model.parameters()), []
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    learned = run(lambda p: LearnedOptimizer(p, checkpoint="general"))
    adam = run(lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-5))
    assert all(math.isfinite(v) and v <= learned[0] for v in learned)
    assert learned[-1] < adam[-1] < 0.01 * learned[0]
