"""Several rules per model: routing by name and shape, joint meta-training, one checkpoint with a nested
config, and parameter groups that name their sub-rule."""

import pytest
import torch

from l2o import LearnedOptimizer, checkpoint, load_rule
from l2o.meta import TrainConfig, meta_train, unroll
from l2o.rules import SGD, LSTMRule, Routed, make_rule
from l2o.tasks.mlp import MLPConfig, MLPFamily, synthetic_dataset


def _routed(**kw):
    torch.manual_seed(0)
    return Routed({"weights": LSTMRule(output_init=1.0, **kw), "biases": LSTMRule(output_init=1.0, **kw)},
                  routes=[{"label": "weights", "name": r"^w"}], default="biases")


def _family():
    return MLPFamily(synthetic_dataset(n=512), MLPConfig(hidden=(8,)))


def test_routes_by_name_and_shape():
    r = Routed({"conv": SGD(lr=0.1), "fc": SGD(lr=1.0), "bias": SGD(lr=0.5)},
               routes=[{"label": "conv", "ndim": 4}, {"label": "bias", "name": r"\.bias$", "ndim": 1}], default="fc")
    assert r.label_of("features.0.weight", 4) == "conv"
    assert r.label_of("head.weight", 2) == "fc" and r.label_of("head.bias", 1) == "bias"
    assert r.label_of("odd.bias", 2) == "fc"  # both conditions must hold
    grads = {"c.weight": torch.ones(1, 2, 2, 3, 3), "h.weight": torch.ones(1, 4, 2), "h.bias": torch.ones(1, 4)}
    updates, _ = r.update(grads, r.init(grads))
    assert updates["c.weight"].unique().item() == pytest.approx(-0.1) and updates["h.weight"].unique().item() == -1.0
    assert updates["h.bias"].unique().item() == -0.5 and list(updates) == list(grads)
    with pytest.raises(ValueError, match="unknown label 'head'"):
        Routed({"fc": SGD(lr=1.0)}, routes=[{"label": "head", "ndim": 2}])
    with pytest.raises(ValueError, match="without dots"):
        Routed({"a.b": SGD(lr=1.0)})


def test_each_sub_rule_steps_its_own_parameters():
    """Routed equals running each sub-rule on its own parameters."""
    routed = _routed()
    task = _family().sample("test", 0, 2)
    out = unroll(routed, task, 3).params
    w_only, b_only = routed.rule("weights"), routed.rule("biases")
    params = task.init_params()
    sw = w_only.init({k: v for k, v in params.items() if k.startswith("w")})
    sb = b_only.init({k: v for k, v in params.items() if k.startswith("b")})
    for step in range(3):
        p = {k: v.detach().requires_grad_() for k, v in params.items()}
        grads = dict(zip(p, torch.autograd.grad(task.loss(p, step).sum(), list(p.values()))))
        with torch.no_grad():
            uw, sw = w_only.update({k: g for k, g in grads.items() if k.startswith("w")}, sw)
            ub, sb = b_only.update({k: g for k, g in grads.items() if k.startswith("b")}, sb)
        params = {k: params[k] + {**uw, **ub}[k] for k in params}
    assert all(torch.equal(out[k], params[k]) for k in params)


def test_joint_meta_training_and_one_checkpoint_with_a_nested_config(tmp_path):
    routed = _routed(preprocess=True)
    before = {k: v.clone() for k, v in routed.state_dict().items()}
    cfg = TrainConfig(episodes=2, horizon=20, unroll=10, problems=4, val_every=1, val_problems=4)
    result = meta_train(_family(), routed, cfg, tmp_path, progress=False)
    after = result.rule.state_dict()
    for label in ("weights", "biases"):  # both sub-rules are trained
        assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith(f"learned.{label}."))
    _, doc = checkpoint.load(tmp_path / "best.safetensors", "rule")
    assert doc["rule"]["name"] == "routed" and set(doc["rule"]["rules"]) == {"weights", "biases"}
    assert doc["rule"]["routes"] == [{"label": "weights", "name": "^w"}]
    assert doc["info"]["implementation"]["rules"]["weights"]["implementation"] in ("fused", "torch")
    loaded = load_rule(tmp_path)
    assert isinstance(loaded, Routed) and all(torch.equal(loaded.state_dict()[k], v) for k, v in after.items())
    again = make_rule(**routed.config())
    assert again.config() == routed.config()


def test_learned_optimizer_with_a_routed_checkpoint_and_groups_that_name_their_rule(tmp_path):
    conv, fc = load_rule("mnist"), load_rule("quadratic")
    routed = Routed({"conv": conv, "fc": fc}, routes=[{"label": "conv", "ndim": 4}], default="fc")
    checkpoint.save_rule(tmp_path / "routed.safetensors", routed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 1))
    x = torch.randn(3, 1, 4, 4)

    def grads():
        model.zero_grad()
        model(x).pow(2).sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    g = grads()
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = LearnedOptimizer(model.named_parameters(), checkpoint=str(tmp_path / "routed.safetensors"))
    opt.step()
    for name, p in model.named_parameters():
        sub = conv if p.dim() == 4 else fc
        expected, _ = sub.update({name: g[name].unsqueeze(0)}, sub.init({name: start[name].unsqueeze(0)}))
        torch.testing.assert_close(p.detach() - start[name], expected[name][0], rtol=1e-6, atol=1e-7)

    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(start[name])
    forced = LearnedOptimizer([{"params": list(model.named_parameters()), "rule": "conv"}],
                              checkpoint=str(tmp_path / "routed.safetensors"))
    grads()
    forced.step()
    expected, _ = conv.update({"2.bias": g["2.bias"].unsqueeze(0)}, conv.init({"2.bias": start["2.bias"].unsqueeze(0)}))
    torch.testing.assert_close(model[2].bias.detach() - start["2.bias"], expected["2.bias"][0], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="no sub-rule labelled 'head'"):
        LearnedOptimizer([{"params": list(model.parameters()), "rule": "head"}],
                         checkpoint=str(tmp_path / "routed.safetensors"))
    with pytest.raises(ValueError, match="is not a routed rule"):
        LearnedOptimizer([{"params": list(model.parameters()), "rule": "conv"}], checkpoint="mnist")


def test_the_two_lstm_optimizer_trains_from_the_cli_and_routes_a_models_conv_kernels(tmp_path, monkeypatch):
    from test_conv import images

    from l2o import LearnedOptimizer
    from l2o.cli import main
    from l2o.tasks import conv as conv_tasks

    monkeypatch.setattr(conv_tasks, "image_splits", lambda *a, **k: images(shape=(1, 28, 28)))  # generated
    assert main(["train", "--rule", "conv-fc", "--task", "conv", "--conv-dataset", "mnist", "--conv-batch-size", "8",
                 "--conv-channels", "4", "4", "--lstm-preprocess", "--lstm-output-scale", "0.01", "--episodes", "2",
                 "--horizon", "4", "--unroll", "2", "--problems", "2", "--val-problems", "2", "--out",
                 str(tmp_path / "run"), "--no-progress"]) == 0
    rule = checkpoint.load_rule(str(tmp_path / "run"))
    assert isinstance(rule, Routed) and rule.labels == ["conv", "fc"]
    assert not torch.equal(rule.rule("conv").out.weight, rule.rule("fc").out.weight)  # separate weights, both trained
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 26 * 26, 2))
    opt = LearnedOptimizer(model.parameters(), checkpoint=str(tmp_path / "run"))
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    opt.step()
    assert rule.partition({n: p.unsqueeze(0) for n, p in model.named_parameters()}).keys() == {"conv", "fc"}
    assert [n for n, p in model.named_parameters() if rule.label_of(n, p.dim()) == "conv"] == ["0.weight"]


def test_the_shipped_conv_optimizer_routes_a_models_conv_kernels_to_its_conv_lstm():
    from l2o import LearnedOptimizer

    rule = load_rule("conv")
    assert isinstance(rule, Routed) and rule.labels == ["conv", "fc"]
    assert "Fashion-MNIST as a stand-in for CIFAR-10" in checkpoint.pretrained()["conv"]["description"]
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 6 * 6, 2))
    x, start = torch.randn(5, 1, 8, 8), {n: p.detach().clone() for n, p in model.named_parameters()}
    model(x).pow(2).mean().backward()
    g = {n: p.grad.clone() for n, p in model.named_parameters()}
    LearnedOptimizer(model.named_parameters(), checkpoint="conv").step()
    for name, p in model.named_parameters():  # 0.weight (4-D) by the conv LSTM, the rest by the other
        sub = rule.rule("conv" if p.dim() == 4 else "fc")
        expected, _ = sub.update({name: g[name].unsqueeze(0)}, sub.init({name: start[name].unsqueeze(0)}))
        torch.testing.assert_close(p.detach() - start[name], expected[name][0], rtol=1e-5, atol=1e-7)
    assert not torch.equal(rule.rule("conv").out.weight, rule.rule("fc").out.weight)
