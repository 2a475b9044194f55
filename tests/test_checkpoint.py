import json

import pytest
import torch
from safetensors.torch import save_file

from l2o import CheckpointError, LSTMRule, load_rule, pretrained, save_rule
from l2o.checkpoint import atomic_write_text, resolve


def test_round_trip(tmp_path):
    rule = LSTMRule(hidden_size=7, preprocess=False, output_scale=2.0)
    save_rule(tmp_path / "r.safetensors", rule, {"note": "x"})
    loaded = load_rule(tmp_path / "r.safetensors")
    assert loaded.config() == rule.config()
    for (k, a), (_, b) in zip(rule.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_a_run_folder_resolves_to_its_best_checkpoint(tmp_path):
    save_rule(tmp_path / "best.safetensors", LSTMRule())
    assert resolve(tmp_path) == tmp_path / "best.safetensors"


def test_missing_file_and_unknown_name_list_what_exists(tmp_path):
    with pytest.raises(CheckpointError, match="no pretrained optimizer or checkpoint file named 'nope'.*quadratic"):
        load_rule("nope")
    with pytest.raises(CheckpointError, match="nothing.safetensors"):
        load_rule(tmp_path / "nothing.safetensors")


def test_corrupt_truncated_and_foreign_files_name_the_file(tmp_path):
    good = tmp_path / "good.safetensors"
    save_rule(good, LSTMRule())
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04this is a pickle, not a checkpoint" * 10)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, foreign)
    for path, message in [(truncated, "not a readable safetensors file"), (garbage, "not a readable safetensors file"),
                          (foreign, "not an l2o checkpoint")]:
        with pytest.raises(CheckpointError, match=message) as err:
            load_rule(path)
        assert str(path) in str(err.value)


def test_wrong_kind_and_mismatched_weights(tmp_path):
    path = tmp_path / "bad.safetensors"
    rule = LSTMRule(hidden_size=5)
    meta = {"format": "l2o.rule", "version": 1, "rule": LSTMRule(hidden_size=6).config()}
    save_file(dict(rule.state_dict()), path, metadata={"l2o": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_rule(path)
    meta["format"] = "l2o.train_state"
    save_file(dict(rule.state_dict()), path, metadata={"l2o": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="expected an 'l2o.rule' checkpoint"):
        load_rule(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "a.json", "1")
    atomic_write_text(tmp_path / "a.json", "2")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "2"


def test_shipped_quadratic_optimizer_is_listed_and_loads():
    zoo = pretrained()
    assert "quadratic" in zoo
    assert zoo["quadratic"]["rule"]["name"] == "lstm"
    rule = load_rule("quadratic")
    assert sum(p.numel() for p in rule.parameters()) > 5000


def test_the_zoo_says_what_each_optimizer_is_for_and_how_it_did():
    zoo = pretrained()
    assert {"quadratic", "mnist"} <= set(zoo)
    for name, info in zoo.items():
        assert info["description"], name
        assert info["trained"]["train"]["seed"] is not None and info["trained"]["task"]["name"], name
        assert "meta_train_seconds" in info["result"], name
    assert zoo["mnist"]["rule"]["preprocess"] is True and zoo["mnist"]["trained"]["task"]["hidden"] == [20]
    assert zoo["mnist"]["result"]["tasks"]["base"]["learned_final_mean"] > 0
    assert "l2o mnist" in zoo["mnist"]["result"]["command"]


@pytest.mark.parametrize("name", ["quadratic-gac", "quadratic-ntm"])
def test_shipped_information_sharing_optimizers_train_a_model(name):
    from l2o import LearnedOptimizer

    zoo = pretrained()
    assert zoo[name]["result"]["tasks"]["base"]["learned_final_mean"] < zoo[name]["result"]["tasks"]["base"][
        "best_first_order_final_mean"]  # better than tuned Adam on held-out quadratics, as measured
    torch.manual_seed(0)
    w_true, x = torch.randn(4), torch.randn(64, 4)
    y = x @ w_true
    model = torch.nn.Linear(4, 1, bias=False)
    opt = LearnedOptimizer(model.named_parameters(), checkpoint=name)
    losses = []
    for _ in range(30):
        loss = (model(x).squeeze(-1) - y).pow(2).mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.1 * losses[0], losses


@pytest.mark.parametrize("name", ["mnist-gac", "mnist-ntm"])
def test_shipped_mnist_information_sharing_optimizers_train_a_classifier(name):
    from l2o import LearnedOptimizer

    zoo = pretrained()
    base = zoo[name]["result"]["tasks"]["base"]
    assert base["learned_beats_every_baseline"] and base["num_problems"] == 128  # as measured on MNIST
    assert set(zoo[name]["result"]["tasks"]) == {"base", "steps200", "units40", "layers2"}
    torch.manual_seed(0)  # a sigmoid MLP classifier on data it never saw: 64 inputs, 4 classes, full batch
    x = torch.rand(512, 64)
    y = ((x - x.mean(0)) @ torch.randn(64, 4)).argmax(1)
    model = torch.nn.Sequential(torch.nn.Linear(64, 20), torch.nn.Sigmoid(), torch.nn.Linear(20, 4))
    opt = LearnedOptimizer(model.named_parameters(), checkpoint=name)
    losses = []
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses  # measured: 1.53 -> 0.18 (mnist-gac), 0.60 (mnist-ntm)
