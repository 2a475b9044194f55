import json

import pytest

from l2o.cli import main


def test_train_tune_evaluate_plot_table(tmp_path, capsys):
    run = tmp_path / "run"
    small = ["--episodes", "2", "--horizon", "20", "--unroll", "10", "--problems", "4", "--val-problems", "8",
             "--no-progress", "--no-lstm-preprocess"]
    assert main(["train", "--out", str(run), *small]) == 0
    assert (run / "best.safetensors").is_file() and (run / "config.json").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["episodes"] == 2 and config["rule"]["preprocess"] is False
    tuning = tmp_path / "tuning.json"
    assert main(["tune", "--out", str(tuning), "--problems", "8", "--steps", "20", "--lr-min", "0.01",
                 "--lr-max", "1", "--no-progress"]) == 0
    assert len(json.loads(tuning.read_text())["grid"]) == 9
    results = tmp_path / "results.json"
    assert main(["evaluate", "--learned", f"mine={run}", "quadratic", "--tuning", str(tuning), "--out", str(results),
                 "--problems", "10", "--steps", "20", "--no-progress"]) == 0
    saved = json.loads(results.read_text())
    assert set(saved["rules"]) == {"mine", "quadratic", "sgd", "nag", "rmsprop", "adam"}
    assert len(saved["rules"]["mine"]["mean"]) == 21
    assert results.with_suffix(".csv").read_text().startswith("rule,step,mean")
    assert main(["plot", str(results)]) == 0
    assert results.with_suffix(".png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["table", str(results)]) == 0
    assert "| mine | learned |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--out", "x", "--unroll", "0"], "unroll must be >= 1"),
        (["train", "--out", "x", "--horizon", "50"], "multiple of unroll"),
        (["train", "--out", "x", "--quadratic-w-dist", "cauchy"], "w_dist must be one of"),
        (["plot", "missing.json"], "results file not found: missing.json"),
        (["evaluate", "--tuning", "missing.json", "--out", "r.json"], "tuning file not found"),
        (["evaluate", "--learned", "resnet", "--out", "r.json"], "no pretrained optimizer or checkpoint file named"),
        (["train", "--out", "x", "--resume"], "nothing to resume"),
    ],
)
def test_bad_input_gets_a_clear_error(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_flag_type_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--out", "x", "--episodes", "many"])
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_pretrained_lists_the_shipped_optimizers(capsys):
    assert main(["pretrained"]) == 0
    out = capsys.readouterr().out
    names = [line.split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert names == ["art", "art-agreement", "conv", "general", "mnist", "mnist-gac", "mnist-ntm", "quadratic", "quadratic-gac", "quadratic-ntm"]  # by name
    assert "base (20 sigmoid, paper init, 100 steps): mean final loss" in out


def test_export_writes_a_loadable_checkpoint_with_its_results(tmp_path, capsys):
    from l2o import load_rule

    exp = tmp_path / "exp"
    run = exp / "train"
    assert main(["train", "--out", str(run), "--episodes", "1", "--horizon", "20", "--unroll", "10",
                 "--problems", "4", "--val-problems", "8", "--no-progress"]) == 0
    (exp / "summary.json").write_text(json.dumps({"ratio_final_vs_best_baseline": 0.4}))
    out = tmp_path / "zoo" / "mine.safetensors"
    assert main(["export", str(run), "--out", str(out), "--description", "a test optimizer"]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["info"]["result"] == {"ratio_final_vs_best_baseline": 0.4}
    assert doc["info"]["description"] == "a test optimizer"
    assert load_rule(out).config() == load_rule(run).config()
    suite = {"tasks": {"ten": {"description": "d", "LSTM (learned)": {"learned_final_mean": 0.1}}}}
    (exp / "suite.json").write_text(json.dumps(suite))  # several optimizers' results per task: refused, clearly
    with pytest.raises(SystemExit, match="several optimizers' results per task"):
        main(["export", str(run), "--out", str(tmp_path / "bad.safetensors"), "--summary", str(exp / "suite.json")])
    assert not (tmp_path / "bad.safetensors").exists()


def test_export_wrap_saves_the_run_s_rule_inside_a_controller_with_the_same_weights(tmp_path):
    import torch

    from l2o import load_rule
    from l2o.rules import Plateau, SpikeCut

    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--episodes", "1", "--horizon", "20", "--unroll", "10",
                 "--problems", "4", "--val-problems", "8", "--no-progress"]) == 0
    plain = load_rule(run)
    for wrap, cls in (("spike_cut", SpikeCut), ("plateau", Plateau)):
        out = tmp_path / f"{wrap}.safetensors"
        assert main(["export", str(run), "--out", str(out), "--wrap", wrap]) == 0
        rule = load_rule(out)
        assert type(rule) is cls and rule.config() == cls(plain).config()
        assert all(torch.equal(v, plain.state_dict()[k]) for k, v in rule.rule.state_dict().items())
        assert json.loads(out.with_suffix(".json").read_text())["rule"]["name"] == wrap
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["export", str(run), "--out", str(tmp_path / "x.safetensors"), "--wrap", "agreement"])


def test_export_latest_takes_the_last_saved_weights_not_the_best(tmp_path):
    import torch
    from safetensors.torch import load_file

    from l2o import checkpoint, load_rule
    from l2o.rules import LSTMRule

    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--episodes", "2", "--horizon", "20", "--unroll", "10",
                 "--problems", "4", "--val-problems", "8", "--no-progress"]) == 0
    torch.manual_seed(1)  # make the run's best weights differ from its latest ones
    checkpoint.save_rule(run / "best.safetensors", LSTMRule(**load_rule(run).cfg.__dict__), {})
    best, latest = tmp_path / "best.safetensors", tmp_path / "latest.safetensors"
    assert main(["export", str(run), "--out", str(best)]) == 0
    assert main(["export", str(run), "--latest", "--out", str(latest)]) == 0
    state = {k[len("rule."):]: v for k, v in load_file(run / "state.safetensors").items() if k.startswith("rule.")}
    got, was = load_rule(latest).state_dict(), load_rule(best).state_dict()
    assert all(torch.equal(got[k], state[k]) for k in state)
    assert any(not torch.equal(got[k], was[k]) for k in got)
    assert json.loads(latest.with_suffix(".json").read_text())["info"]["episode"] == 2
    with pytest.raises(SystemExit, match="--latest needs a run folder"):
        main(["export", str(best), "--latest", "--out", str(tmp_path / "x.safetensors")])


def test_train_an_ntm_rule_from_the_command_line(tmp_path):
    from l2o import checkpoint
    from l2o.cli import main

    code = main(["train", "--rule", "ntm", "--ntm-memory", "window", "--ntm-window", "6", "--no-ntm-preprocess",
                 "--ntm-output-scale", "1", "--task", "quadratic", "--out", str(tmp_path), "--episodes", "1",
                 "--horizon", "20", "--problems", "4", "--val-problems", "4", "--no-progress"])
    assert code == 0
    _, doc = checkpoint.load(tmp_path / "best.safetensors", "rule")
    assert doc["rule"]["name"] == "ntm" and doc["rule"]["memory"] == "window" and doc["rule"]["window"] == 6


def test_a_list_flag_alone_switches_its_default_off():
    from l2o.cli import build_parser, from_args
    from l2o.experiments import general
    from l2o.meta.train import TrainConfig
    from l2o.rules.lstm import LSTMConfig

    parser = build_parser()
    args = parser.parse_args(["general", "--curriculum", "200", "400", "--lstm-moments", "--lstm-gradient-input",
                              "--no-lstm-direct", "--lstm-learn-direct", "--lstm-correction", "add",
                              "--lstm-correction-scale", "1", "--lstm-correction-decay", "0", "--lstm-moment-eps", "1e-8"])
    assert from_args(args, TrainConfig).curriculum == (200, 400) and not general.TRAIN.curriculum  # off by default
    assert from_args(args, LSTMConfig, "lstm-").moments == () and general.RULE.moments  # on by default
    args = parser.parse_args(["general", "--lstm-moments", "0.9"])
    assert from_args(args, LSTMConfig, "lstm-").moments == (0.9,)
    args = parser.parse_args(["cifar", "--lstm-moments"])
    assert from_args(args, LSTMConfig, "lstm-").moments == ()  # the authors' rule: the gradient alone
    assert "the flag alone: none" in parser._subparsers._group_actions[0].choices["cifar"].format_help()


def test_quadratic_resumes_when_run_again_and_restart_refuses_an_existing_run(tmp_path, capsys):
    """The same command line twice: the second run finds the finished meta-training and continues from it (as the
    other experiments do); --restart on a folder holding a run is refused with a clear error, and so is
    --restart with --resume."""
    out = tmp_path / "q"
    small = ["quadratic", "--out", str(out), "--episodes", "2", "--horizon", "10", "--unroll", "5", "--problems", "4",
             "--val-every", "1", "--val-problems", "2", "--test-problems", "8", "--tune-problems", "4", "--steps", "10",
             "--no-progress", "--threads", "1"]
    assert main(small) == 0
    weights, history = (out / "train" / "best.safetensors").read_bytes(), (out / "train" / "history.csv").read_text()
    assert main(small) == 0  # without the default resume: "already holds a training run"
    assert (out / "train" / "best.safetensors").read_bytes() == weights
    assert (out / "train" / "history.csv").read_text() == history  # no episode run again
    capsys.readouterr()
    assert main([*small, "--restart"]) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main([*small, "--restart", "--resume"]) == 2
    assert "--restart and --resume contradict each other" in capsys.readouterr().err
