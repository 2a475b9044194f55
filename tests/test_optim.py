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
