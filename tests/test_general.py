"""The `general` experiment on tiny settings: variants with one method off each, and the ablation table."""

import json

import pytest

from l2o.experiments import general
from l2o.meta.train import TrainConfig
from l2o.rules.lstm import LSTMConfig
from l2o.tasks.mixture import MixtureFamily
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig
from test_mnist import data  # noqa: F401  (the fixture: small generated MNIST files)


def test_variants_switch_one_method_off_each():
    s = general.Settings()
    assert general.variant(s, "general") == (general.RULE, general.TRAIN)
    assert general.VARIANTS == ("general", "no_moments", "no_direct", "with_curriculum", "with_imitation", "no_scaling",
                                "with_warm_start", "with_pes")
    # the recipe: Adam's step (fixed) times a fading factor from the LSTM, whole 200-step episodes
    assert (general.RULE.direct, general.RULE.learn_direct, general.RULE.correction) == (True, False, "scale")
    assert general.TRAIN.unroll == general.TRAIN.horizon == 200
    rule, train = general.variant(s, "no_moments")  # the 2016 rule's inputs, no direct term
    assert (rule.moments, rule.gradient_input, rule.direct, rule.output_init) == ((), True, False, 0.1)
    assert train == general.TRAIN
    rule, _ = general.variant(s, "no_direct")  # the same scale-free inputs, the LSTM alone
    assert (rule.moments, rule.gradient_input, rule.direct) == (general.MOMENTS, False, False)
    # the curriculum's horizons rounded up to multiples of the truncation (200): 100 -> 200, 500 -> 600
    assert general.variant(s, "with_curriculum")[1].curriculum == (200, 600, 1000)
    assert general.variant(s, "with_imitation")[1].imitate == "adam:0.01"
    assert general.variant(s, "no_scaling")[1].param_scale_spread == 1.0
    assert general.variant(s, "with_warm_start")[1].warm_start == "adam:0.01:8000"
    # PES in place of back-propagating whole episodes: the same 200-step episodes, cut into truncations of 25
    _, pes = general.variant(s, "with_pes")
    assert (pes.estimator, pes.unroll, pes.horizon, pes.pes_pairs, pes.pes_sigma) == ("pes", 25, 200, 8, 0.01)
    assert general.describe_training(*general.variant(s, "with_pes")).endswith("methods: moments, direct, scaling, pes")
    assert general.describe_training(*general.variant(s, "general")) == (
        "a mixture of a sigmoid MLP on MNIST, a ReLU MLP on MNIST, a 64-unit ReLU MLP on MNIST, a 2-layer tanh MLP on "
        "MNIST, a ReLU MLP on Fashion-MNIST; horizons up to 200 steps; methods: moments, direct, scaling")
    assert "the conv net" in general.describe_members("all") and "conv" not in general.MLPS
    with pytest.raises(ValueError, match=r"unknown variants \['no_luck'\]"):
        general.GeneralConfig(variants=("no_luck",))


def test_switching_the_direct_term_off_drops_what_only_it_uses():
    """A recipe whose LSTM is a fixed direct term's learning-rate factor: without d (no_direct, or no_moments, which
    takes d away too) the factor, its decay and the fixed d go with it, so the variants are valid rules."""
    rule = LSTMConfig(moments=general.MOMENTS, gradient_input=False, direct=True, output_scale=0.01, output_init=0.0,
                      learn_direct=False, correction="scale", correction_scale=2.3, correction_decay=100.0,
                      moment_eps=1e-5)
    s = general.Settings(rule=rule)
    for name in ("no_direct", "no_moments"):
        r, _ = general.variant(s, name)
        assert (r.direct, r.learn_direct, r.correction, r.correction_scale, r.correction_decay, r.output_init) == \
            (False, True, "add", 1.0, 0.0, 0.1), name
    assert general.variant(s, "no_direct")[0].moments == general.MOMENTS
    assert general.variant(s, "no_direct")[0].moment_eps == 1e-5
    r, _ = general.variant(s, "no_moments")  # and the moments' own settings go with the moments
    assert (r.moments, r.moment_eps, r.second_moment) == ((), 1e-8, 0.999)
    assert general.variant_names(rule, general.TRAIN)[:3] == ("general", "no_moments", "no_direct")


def test_the_experiment_trains_the_variants_and_tabulates_the_ablation(data, tmp_path, monkeypatch):  # noqa: F811
    root, _ = data
    monkeypatch.setattr(general, "members", lambda data_dir=None, only="all": MixtureFamily(
        {"sigmoid": ImageMLPFamily(MLPConfig(batch_size=8), data_dir=root),
         "relu": ImageMLPFamily(MLPConfig(batch_size=8, activation="relu"), data_dir=root)}))
    s = general.Settings(
        rule=LSTMConfig(moments=(0.9,), output_scale=0.01),
        train=TrainConfig(episodes=2, horizon=10, unroll=5, curriculum=(5, 10), problems=1, val_every=2,
                          val_problems=1, imitate="adam:0.001", imitate_weight=0.1),
        experiment=general.GeneralConfig(variants=("general", "no_curriculum"), check_steps=12, check_problems=2))
    summary = general.run(tmp_path, s, data_dir=root, progress=False, log=lambda *a: None)
    assert set(summary["variants"]) == {"general", "no_curriculum"}
    assert all(v["meta_train_cpu"]["complete"] for v in summary["variants"].values())
    assert set(summary["ablation"]["mnist_relu"]) == {"general", "no_curriculum", "adam (lr 0.001)", "adam (lr 0.003)",
                                                     "adam (lr 0.01)", "adam (lr 0.03)"}
    config = json.loads((tmp_path / "train" / "no_curriculum" / "config.json").read_text())
    assert config["train"]["curriculum"] == [] and config["rule"]["moments"] == [0.9]
    assert config["task"]["name"] == "mixture"
    assert "| no_curriculum |" in (tmp_path / "ablation.md").read_text()
    # each variant's own results beside its weights, as `l2o export` stores them with a shipped optimizer
    own = json.loads((tmp_path / "train" / "general" / "summary.json").read_text())
    relu = own["tasks"]["mnist_relu"]
    adams = {k: v["last_window_mean"] for k, v in summary["ablation"]["mnist_relu"].items() if k.startswith("adam")}
    assert relu["best_baseline"] == min(adams, key=adams.get) and relu["best_baseline_final_mean"] == min(adams.values())
    assert relu["learned_final_mean"] == summary["ablation"]["mnist_relu"]["general"]["last_window_mean"]
    assert relu["ratio_final_vs_best_baseline"] == pytest.approx(relu["learned_final_mean"] / min(adams.values()))
    assert own["meta_train_seconds"] == summary["variants"]["general"]["meta_train_seconds"] > 0



def test_a_chosen_part_of_the_mixture(data):  # noqa: F811
    root, _ = data
    fam = general.members(root, "mlp_sigmoid, mlp_relu")
    assert list(fam.members) == ["mlp_sigmoid", "mlp_relu"] and fam.weights.tolist() == [1.0, 2.0]
    assert general.describe_members("mlp_sigmoid,mlp_relu") == "a mixture of a sigmoid MLP on MNIST, a ReLU MLP on MNIST"
    assert general.describe_members("all").startswith("a mixture of MLPs on MNIST (sigmoid, ReLU, tanh")
    assert list(general.MEMBERS) == ["mlp_sigmoid", "mlp_relu", "mlp_wide_relu", "mlp_deep_tanh", "fashion_relu",
                                     "conv_fashion"]  # the order and weights a resumed run was begun with
    assert [w for _, w, _ in general.MEMBERS.values()] == [1, 2, 1, 1, 2, 1]
    with pytest.raises(ValueError, match=r"unknown members \['mlp_huge'\]"):
        general.GeneralConfig(members="mlp_sigmoid,mlp_huge")
