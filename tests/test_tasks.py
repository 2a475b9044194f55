import pytest
import torch

from l2o.tasks import QuadraticConfig, QuadraticFamily, make_family, split_generator


def test_same_seed_same_problems_and_splits_are_disjoint():
    fam = QuadraticFamily()
    a, b = fam.sample("train", 3, 4), fam.sample("train", 3, 4)
    assert torch.equal(a.W, b.W) and torch.equal(a.y, b.y) and torch.equal(a.theta0, b.theta0)
    others = [fam.sample(split, 3, 4) for split in ("validation", "test")] + [fam.sample("train", 4, 4)]
    for o in others:
        assert not torch.allclose(a.W, o.W)


def test_loss_is_vectorised_and_matches_the_formula():
    task = QuadraticFamily(dim=5).sample("test", 0, 7)
    theta = torch.randn(7, 5)
    losses = task.loss({"theta": theta})
    assert losses.shape == (7,)
    for i in range(7):
        expected = ((task.W[i] @ theta[i] - task.y[i]) ** 2).sum()
        assert torch.allclose(losses[i], expected, rtol=1e-5)


def test_distributions_follow_the_config():
    gauss = QuadraticFamily().sample("train", 0, 256)
    unif = QuadraticFamily(w_dist="uniform", y_dist="uniform").sample("train", 0, 256)
    assert gauss.W.min() < -2 and abs(float(gauss.W.mean())) < 0.05
    assert unif.W.min() >= 0 and unif.W.max() < 1 and abs(float(unif.W.mean()) - 0.5) < 0.02
    assert float(gauss.theta0.std()) == pytest.approx(0.01, rel=0.1)
    assert QuadraticFamily(dtype="float64").sample("train", 0, 2).W.dtype == torch.float64


def test_solution_loss_is_the_minimum():
    task = QuadraticFamily().sample("test", 1, 5)
    assert torch.all(task.solution_loss() < 1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"dim": 0}, "dim must be"), ({"w_dist": "cauchy"}, "w_dist must be one of"),
     ({"init_std": -1.0}, "init_std"), ({"dtype": "int8"}, "dtype")],
)
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuadraticConfig(**kwargs)


def test_bad_split_seed_and_family_names():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_generator("dev", 0)
    with pytest.raises(ValueError, match="non-negative"):
        split_generator("train", -1)
    with pytest.raises(ValueError, match="unknown task family 'mnist2'.*quadratic"):
        make_family("mnist2")
    with pytest.raises(ValueError, match="num_problems"):
        QuadraticFamily().sample("train", 0, 0)


def test_a_family_registered_in_its_own_file_is_known_to_make_family_and_the_cli(tmp_path):
    """Registering is all a new family needs: make_family and `l2o train --task NAME --NAME-flag` find it."""
    from dataclasses import dataclass

    from l2o import cli
    from l2o.tasks import families, register_family

    @dataclass(frozen=True)
    class ToyConfig:
        dim: int = 3  # dimension

    @register_family("toy-quadratic", config=ToyConfig, flag_prefix="toy-")
    def _toy(config, data_dir=None):
        return QuadraticFamily(dim=config.dim)

    try:
        assert make_family("toy-quadratic", dim=4).cfg.dim == 4
        with pytest.raises(ValueError, match="task family 'toy-quadratic' takes the settings dim"):
            make_family("toy-quadratic", width=4)
        with pytest.raises(ValueError, match="already registered"):
            register_family("toy-quadratic", config=ToyConfig, flag_prefix="toy-")(lambda c, data_dir=None: None)
        code = cli.main(["train", "--task", "toy-quadratic", "--toy-dim", "5", "--out", str(tmp_path / "run"),
                         "--episodes", "1", "--horizon", "20", "--problems", "4", "--val-problems", "4",
                         "--no-progress", "--no-lstm-preprocess"])
        assert code == 0
        import json

        assert json.loads((tmp_path / "run" / "config.json").read_text())["task"]["dim"] == 5
    finally:
        from l2o.tasks import registry

        registry._FAMILIES.pop("toy-quadratic", None)
    assert "toy-quadratic" not in families()
