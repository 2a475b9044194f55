"""NTM-BFGS and NTM-L-BFGS (paper Appendix D): the memory against a direct computation, the window against
the full memory, problems never mixed, meta-gradients through the memory against finite differences, and the
state through LearnedOptimizer's state_dict."""

import json

import pytest
import torch
from problems import assert_problems_stay_apart

from l2o import LearnedOptimizer, checkpoint, load_rule
from l2o.meta import unroll
from l2o.rules import NTMRule, make_rule
from l2o.tasks import QuadraticFamily
from l2o.tasks.mlp import MLPConfig, MLPFamily, synthetic_dataset


def _rule(**kw):
    torch.manual_seed(0)
    return NTMRule(output_init=1.0, **{"preprocess": False, "output_scale": 1.0, **kw})


def test_memory_writes_outer_products_and_reads_matrix_vector_products():
    rule = _rule(write_heads=2, read_heads=2)
    task = QuadraticFamily(dim=5).sample("test", 0, 3)
    params = task.init_params()
    state = rule.init(params)
    pairs = []
    for step in range(4):
        p = {k: v.detach().requires_grad_() for k, v in params.items()}
        grads = dict(zip(p, torch.autograd.grad(task.loss(p, step).sum(), list(p.values()))))
        with torch.no_grad():
            updates, new = rule.update(grads, state)
            out = rule.out(new.h[-1]).view(3, 5, -1)
            pairs.append((out[..., 3:5], out[..., 5:7]))
            M = sum(torch.einsum("bnw,bmw->bnm", a, b) for a, b in pairs)
            torch.testing.assert_close(new.a, M)  # M_{t+1} = Σ a bᵀ
            torch.testing.assert_close(rule.read(new), torch.einsum("bnm,bmr->bnr", M, new.read))  # i = M r
        params, state = {k: params[k] + updates[k] for k in params}, new


def test_the_window_equals_the_full_memory_while_it_holds_every_pair_and_forgets_after():
    full = _rule()
    task = QuadraticFamily().sample("test", 0, 4)
    window = _rule(memory="window", window=30)  # 10 steps of 3 pairs
    window.load_state_dict(full.state_dict())
    a, b = unroll(full, task, 10), unroll(window, task, 10)
    torch.testing.assert_close(a.losses, b.losses, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(window.read(b.state), full.read(a.state), rtol=1e-5, atol=1e-6)
    short = _rule(memory="window", window=6)
    short.load_state_dict(full.state_dict())
    assert not torch.allclose(unroll(short, task, 10).losses, a.losses)


@pytest.mark.parametrize("memory", ["full", "window"])
def test_memory_and_averages_never_mix_problems(memory):
    rule = _rule(memory=memory)
    family = MLPFamily(synthetic_dataset(n=256), MLPConfig(hidden=(3,)))
    assert_problems_stay_apart(rule, family, steps=4)


def test_meta_gradient_through_the_memory_matches_finite_differences():
    """float64, 3 steps, second derivatives kept so that the full derivative is what autograd computes."""
    torch.manual_seed(1)
    rule = NTMRule(preprocess=False, output_scale=0.5, output_init=1.0, hidden_size=4, gac=1).double()
    task = QuadraticFamily(dim=4, dtype="float64").sample("test", 0, 2)

    def meta_loss():
        return unroll(rule, task, 3, meta=True, second_order=True).losses[1:].sum()

    meta_loss().backward()
    weights = [rule.out.weight, rule.cells[0].weight_ih, rule.cells[1].bias_hh]
    eps = 1e-6
    for w in weights:
        for idx in [(0, 0), (5, 1)] if w.dim() == 2 else [(0,), (3,)]:  # (5, 1): a weight of the read input
            with torch.no_grad():
                w[idx] += eps
                up = meta_loss().item()
                w[idx] -= 2 * eps
                down = meta_loss().item()
                w[idx] += eps
            assert w.grad[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)
    assert rule.out.weight.grad[1 + 1:].abs().sum() > 0  # the write heads' weights get gradient (via the reads)


def test_state_dict_round_trip_resumes_exactly(tmp_path):
    for memory in ("window", "full"):
        rule = _rule(memory=memory, window=9).requires_grad_(False)
        checkpoint.save_rule(tmp_path / f"{memory}.safetensors", rule)
        assert load_rule(tmp_path / f"{memory}.safetensors").config() == rule.config()

        def run(opt, ps, steps):
            for _ in range(steps):
                opt.zero_grad()
                sum(((p - 1) ** 2 * torch.arange(1, p.numel() + 1).view_as(p)).sum() for p in ps).backward()
                opt.step()

        ps = [torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(4))]
        opt = LearnedOptimizer(ps, checkpoint=str(tmp_path / f"{memory}.safetensors"))
        run(opt, ps, 3)
        torch.save({"p": [p.detach().clone() for p in ps], "opt": opt.state_dict()}, tmp_path / "ck.pt")
        run(opt, ps, 3)
        saved = torch.load(tmp_path / "ck.pt", weights_only=True)
        qs = [torch.nn.Parameter(p) for p in saved["p"]]
        opt2 = LearnedOptimizer(qs, checkpoint=str(tmp_path / f"{memory}.safetensors"))
        opt2.load_state_dict(saved["opt"])
        run(opt2, qs, 3)
        assert all(torch.equal(p.detach(), q.detach()) for p, q in zip(ps, qs)), memory


def test_clear_errors():
    rule = NTMRule(max_full=100)
    with pytest.raises(ValueError, match="use NTM-L-BFGS, memory='window'"):
        rule.init({"w": torch.zeros(1, 101)})
    with pytest.raises(ValueError, match="run on PyTorch only"):
        NTMRule(implementation="fused")
    with pytest.raises(ValueError, match="memory must be one of"):
        NTMRule(memory="tape")
    assert make_rule("ntm", memory="window").cfg.memory == "window"


def test_head_scale_squash_and_read_scale():
    plain, rule = _rule(), _rule(head_init=0.5, squash=True, read_scale=0.25)
    assert "squash" not in plain.config() and plain.config() == NTMRule(**{
        k: v for k, v in plain.config().items() if k != "name"}).config()  # the paper's settings read as before
    assert rule.config()["squash"] is True and rule.config()["read_scale"] == 0.25
    torch.manual_seed(0)
    small = NTMRule(output_init=0.1, head_init=1.0)
    torch.manual_seed(0)
    ref = NTMRule(output_init=1.0)
    torch.testing.assert_close(small.out.weight[0], ref.out.weight[0] * 0.1)  # the step's row: output_init
    torch.testing.assert_close(small.out.weight[1:], ref.out.weight[1:])  # the heads' rows: head_init
    task = QuadraticFamily(dim=6).sample("test", 0, 2)
    with torch.no_grad():
        state = unroll(rule, task, 5).state
    assert state.a.abs().max() <= 5 * 3  # 5 steps of 3 outer products of vectors in [-1, 1]
    # reading at a quarter equals reading in full with the read's input weights at a quarter
    scaled = _rule(read_scale=0.25)
    quarter = _rule()
    with torch.no_grad():
        quarter.cells[0].weight_ih[:, 1:] *= 0.25
    torch.testing.assert_close(unroll(scaled, task, 6).losses, unroll(quarter, task, 6).losses)
    with pytest.raises(ValueError, match="head_init must be >= 0"):
        NTMRule(head_init=-1.0)


def test_a_controller_started_from_an_lstm_steps_as_the_lstm_until_it_reads(tmp_path):
    from l2o import LSTMRule, TrainConfig, meta_train
    from l2o.meta.train import warm_start

    torch.manual_seed(1)
    lstm = LSTMRule(gac=2, preprocess=False, output_scale=1.0)
    checkpoint.save_rule(tmp_path / "gac.safetensors", lstm)
    ntm = NTMRule(preprocess=False, output_scale=0.5, head_init=1.0)
    warm_start(ntm, str(tmp_path / "gac.safetensors"))
    task = QuadraticFamily().sample("test", 0, 4)
    torch.testing.assert_close(unroll(ntm, task, 12).losses, unroll(lstm, task, 12).losses, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="starts only from an LSTM with the same hidden_size, num_layers, gac"):
        NTMRule(gac=1).load_controller(lstm)
    # through meta_train: init_from replaces the fresh draw and its file's fingerprint is part of the run
    cfg = TrainConfig(episodes=1, horizon=4, unroll=2, problems=2, val_problems=2, init_from=str(tmp_path / "gac.safetensors"))
    run = tmp_path / "run"
    meta_train(QuadraticFamily(), NTMRule(preprocess=False, output_scale=1.0), cfg, run, progress=False)
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["init_from"].endswith("gac.safetensors") and len(saved["init_from_sha256"]) == 64
    checkpoint.save_rule(tmp_path / "gac.safetensors", LSTMRule(gac=2, preprocess=False, output_scale=1.0))
    with pytest.raises(ValueError, match="init_from_sha256"):  # another starting point: not the same run
        meta_train(QuadraticFamily(), NTMRule(preprocess=False, output_scale=1.0), cfg, run, resume=True, progress=False)


def test_a_full_memory_checkpoint_runs_windowed_on_a_large_model(tmp_path):
    torch.manual_seed(0)
    checkpoint.save_rule(tmp_path / "ntm.safetensors", NTMRule(max_full=50))
    big = torch.nn.Linear(20, 5)  # 105 coordinates: more than this full memory takes
    opt = LearnedOptimizer(big.parameters(), checkpoint=str(tmp_path / "ntm.safetensors"))
    big(torch.randn(4, 20)).pow(2).sum().backward()
    with pytest.raises(ValueError, match=r"settings=\{'memory': 'window'\}"):
        opt.step()
    opt = LearnedOptimizer(big.parameters(), checkpoint=str(tmp_path / "ntm.safetensors"),
                           settings={"memory": "window", "window": 9})
    assert opt.rule.cfg.memory == "window" and opt.rule.cfg.window == 9
    before = big.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, big.weight)
    with pytest.raises(checkpoint.CheckpointError, match=r"cannot change \['colour'\]"):
        load_rule(str(tmp_path / "ntm.safetensors"), settings={"colour": 1})
    with pytest.raises(checkpoint.CheckpointError, match="do not fit"):  # the weights' shapes: refused
        load_rule(str(tmp_path / "ntm.safetensors"), settings={"write_heads": 2})


def test_without_reads_is_the_controller_alone():
    rule = _rule()
    blind = rule.without_reads()
    task = QuadraticFamily().sample("test", 0, 3)
    assert not torch.allclose(unroll(blind, task, 8).losses, unroll(rule, task, 8).losses)
    with torch.no_grad():  # the same as a rule whose memory is never written
        rule.out.weight[2:] = 0
        rule.out.bias[2:] = 0
    torch.testing.assert_close(unroll(blind, task, 8).losses, unroll(rule, task, 8).losses)
    assert blind.cells[0].weight_ih[:, 1:].abs().sum() == 0 and rule.cells[0].weight_ih[:, 1:].abs().sum() > 0
