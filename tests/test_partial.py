"""Interrupted learning-rate searches and evaluations resume from their progress files, with the same results."""

import json
import math

import pytest
import torch

import l2o.evaluate as evaluate_module
import l2o.tune as tune_module
from l2o.evaluate import evaluate
from l2o.partial import Partial
from l2o.rules import LSTMRule
from l2o.tasks.quadratic import QuadraticFamily
from l2o.tune import lr_grid, tune

GRID = lr_grid(1e-3, 10.0, per_decade=1)  # 5 rates: the last ones diverge on these quadratics


def interrupt_after(monkeypatch, module, name, calls):
    """Make ``module.name`` raise KeyboardInterrupt on its call number ``calls + 1``; count the calls."""
    real, count = getattr(module, name), {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        if calls is not None and count["n"] > calls:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return count


def test_an_interrupted_search_resumes_where_it_stopped_with_the_same_result(tmp_path, monkeypatch):
    fam, progress = QuadraticFamily(), tmp_path / "tuning.partial.json"
    args = dict(grid=GRID, steps=30, num_problems=8, progress=False)
    whole = tune(fam, ("sgd", "adam"), **args)
    assert math.isinf(whole["baselines"]["sgd"]["scores"][-1] or math.inf)  # lr 10 diverges
    with monkeypatch.context() as m:
        interrupt_after(m, tune_module, "_score", 7)
        with pytest.raises(KeyboardInterrupt):
            tune(fam, ("sgd", "adam"), partial=progress, **args)
    assert len(json.loads(progress.read_text())["done"]) == 7  # saved as each run finished
    count = interrupt_after(monkeypatch, tune_module, "_score", None)
    resumed = tune(fam, ("sgd", "adam"), partial=progress, **args)
    assert count["n"] == 2 * len(GRID) - 7  # only the runs that were not done
    assert resumed == whole and not progress.exists()  # the same result; the progress file is gone
    # a progress file of other settings is not used
    Partial(progress, {"other": 1}).put("sgd 0.001", 123.0)
    assert tune(fam, ("sgd",), partial=progress, **args)["baselines"]["sgd"] == whole["baselines"]["sgd"]


def test_a_diverging_run_stops_at_its_first_non_finite_loss(monkeypatch):
    fam = QuadraticFamily()
    task = fam.sample("validation", 0, 4)
    calls = {"n": 0}
    real_loss = type(task).loss

    def counting(self, params, step=0):
        calls["n"] += 1
        return real_loss(self, params, step)

    monkeypatch.setattr(type(task), "loss", counting)
    from l2o.rules.baselines import SGD

    assert tune_module._score(SGD(lr=1e6), task, 100, "final") == math.inf
    assert calls["n"] < 30  # not the 101 losses of a whole run
    calls["n"] = 0
    assert math.isfinite(tune_module._score(SGD(lr=1e-3), task, 100, "final")) and calls["n"] == 101


def test_an_interrupted_evaluation_resumes_and_never_reuses_other_weights(tmp_path, monkeypatch):
    fam, progress = QuadraticFamily(), tmp_path / "results.partial.json"
    torch.manual_seed(0)
    a, b = LSTMRule(), LSTMRule()
    from l2o.rules.baselines import Adam

    rules = {"a": a, "adam": Adam(lr=0.1), "b": b}
    args = dict(steps=20, num_problems=4, progress=False)
    whole = evaluate(rules, fam, **args)
    with monkeypatch.context() as m:
        interrupt_after(m, evaluate_module, "unroll", 2)
        with pytest.raises(KeyboardInterrupt):
            evaluate(rules, fam, partial=progress, **args)
    assert sorted(json.loads(progress.read_text())["done"]) == ["a", "adam"]
    with torch.no_grad():  # other weights under the same label: recomputed, not reused
        a.out.bias.add_(0.01)
    count = interrupt_after(monkeypatch, evaluate_module, "unroll", None)
    resumed = evaluate(rules, fam, partial=progress, **args)
    assert count["n"] == 2  # "a" (its weights changed) and "b"; "adam" came from the progress file
    assert resumed["rules"]["adam"] == whole["rules"]["adam"] and resumed["rules"]["b"] == whole["rules"]["b"]
    assert resumed["rules"]["a"]["final_mean"] != whole["rules"]["a"]["final_mean"]
    assert not progress.exists()


def test_a_foreign_progress_file_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("not json")
    with pytest.warns(UserWarning, match="not an l2o progress file"):
        p = Partial(path, {"k": 1})
    assert "x" not in p
    p.put("x", 1.5)
    assert Partial(path, {"k": 1}).get("x") == 1.5 and Partial(path, {"k": 2}).get("x") is None


def test_a_rule_added_to_a_finished_evaluation_is_the_only_one_run(tmp_path, monkeypatch):
    from l2o.evaluate import load_results, save_results
    from l2o.rules.baselines import SGD, Adam

    fam = QuadraticFamily()
    torch.manual_seed(0)
    a, b = LSTMRule(), LSTMRule()
    args = dict(steps=20, num_problems=4, progress=False)
    first = evaluate({"a": a, "adam": Adam(lr=0.1)}, fam, **args)
    first["learned_sha256"] = evaluate_module.weights_sha(a)  # as a suite saves one learned rule's fingerprint
    save_results(first, tmp_path / "results.json")
    previous = load_results(tmp_path / "results.json")  # through the file: JSON, as a suite reads it
    count = interrupt_after(monkeypatch, evaluate_module, "unroll", None)
    more = evaluate({"a": a, "adam": Adam(lr=0.1), "b": b, "sgd": SGD(lr=0.1)}, fam, previous=previous, **args)
    assert count["n"] == 2  # only "b" and "sgd" ran
    assert more["rules"]["a"] == first["rules"]["a"] and more["rules"]["adam"] == first["rules"]["adam"]
    assert more["rules"]["b"] == evaluate({"b": b}, fam, **args)["rules"]["b"]
    # several learned rules' fingerprints by label; another rule or other weights under a label are run again
    more["learned_sha256"] = {"a": evaluate_module.weights_sha(a), "b": evaluate_module.weights_sha(b)}
    with torch.no_grad():
        b.out.bias.add_(0.01)
    count["n"] = 0
    again = evaluate({"a": a, "adam": Adam(lr=0.2), "b": b}, fam, previous=more, **args)
    assert count["n"] == 2 and again["rules"]["a"] == more["rules"]["a"]  # "adam" (other lr) and "b" (other weights)
    count["n"] = 0  # other settings (more problems): nothing is reused
    evaluate({"a": a}, fam, previous=more, **{**args, "num_problems": 5})
    assert count["n"] == 1


def test_a_suite_task_with_one_more_learned_rule_evaluates_only_that_rule(tmp_path, monkeypatch):
    from l2o.experiments.common import tune_and_evaluate

    fam = QuadraticFamily()
    torch.manual_seed(0)
    a, b = LSTMRule(), LSTMRule()
    args = dict(grid=GRID, tune_problems=4, test_problems=4, baselines=("sgd",), progress=False)
    _, first = tune_and_evaluate(tmp_path, fam, 20, {"a": a}, **args)
    count = interrupt_after(monkeypatch, evaluate_module, "unroll", None)
    _, both = tune_and_evaluate(tmp_path, fam, 20, {"a": a, "b": b}, **args)
    assert count["n"] == 1 and both["rules"]["a"] == first["rules"]["a"] and both["rules"]["sgd"] == first["rules"]["sgd"]
    assert set(both["learned_sha256"]) == {"a", "b"}


def test_each_computed_piece_is_timed_beside_the_results_and_reuse_adds_nothing(tmp_path):
    """compute.json: every tuning run and rule evaluation a task computed, with its wall-clock; the results hold no
    timings (so they are the same however they were computed), and a finished task run again times nothing."""
    from l2o.experiments import common

    fam = QuadraticFamily(dim=3)
    args = dict(grid=[0.01, 0.1], tune_problems=2, test_problems=2, baselines=("sgd", "adam"), progress=False)
    folder = tmp_path / "task"
    torch.manual_seed(0)
    learned = {"a": LSTMRule()}
    _, results = common.tune_and_evaluate(folder, fam, 5, learned, **args)
    doc = json.loads((folder / "compute.json").read_text())
    assert sorted(doc["tuning"]) == ["adam 0.01", "adam 0.1", "sgd 0.01", "sgd 0.1"]
    assert sorted(doc["evaluation"]) == ["a", "adam", "sgd"]
    assert sorted(doc["tuning_cpu"]) == sorted(doc["tuning"]) and sorted(doc["evaluation_cpu"]) == ["a", "adam", "sgd"]
    assert all(v >= 0 for part in doc.values() for v in part.values())
    assert not any("seconds" in r for r in results["rules"].values())
    common.tune_and_evaluate(folder, fam, 5, learned, **args)
    assert json.loads((folder / "compute.json").read_text()) == doc
    c = common.compute_seconds(100.0, [folder, tmp_path / "none"])
    assert c["timed_pieces"] == 7 and c["meta_training"] == 100.0 and c["cpu"]["timed_pieces"] == 7
    assert c["total"] == pytest.approx(100.0 + c["tuning"] + c["evaluation"], abs=0.2)
    assert common.describe_compute(c).startswith("Compute: 0.03 process-hours of wall-clock (meta-training 0.03,")
    assert "Of those, 7 were also timed in CPU time: tuning" in common.describe_compute(c)
    common.record_compute(folder, "tuning", "sgd 0.1", 1.0)  # computed again by a version that timed no CPU
    assert "sgd 0.1" not in common.read_compute(folder)["tuning_cpu"]
    assert common.compute_seconds(0.0, [folder])["cpu"]["timed_pieces"] == 6
    (folder / "compute.json").write_text("{")  # damaged: its timings start over, nothing fails
    assert common.read_compute(folder) == {}


def test_another_build_of_the_kernel_reuses_results_under_their_own_record(tmp_path, monkeypatch):
    """A result computed by another build of the compiled kernel (same rule, weights and implementation) is
    reused, under the record of the build that computed it, from a progress file and from a finished result;
    another implementation is run again."""
    from l2o.evaluate import load_results, save_results

    fam, progress = QuadraticFamily(), tmp_path / "results.partial.json"
    torch.manual_seed(0)
    a = LSTMRule(implementation="torch")
    args = dict(steps=10, num_problems=2, progress=False)
    monkeypatch.setattr(a, "implementation_info", lambda: {"implementation": "fused", "kernel": "build_one"})
    with monkeypatch.context() as m:
        interrupt_after(m, evaluate_module, "unroll", 1)
        with pytest.raises(KeyboardInterrupt):
            evaluate({"a": a, "b": LSTMRule()}, fam, partial=progress, **args)
    monkeypatch.setattr(a, "implementation_info", lambda: {"implementation": "fused", "kernel": "build_two"})
    count = interrupt_after(monkeypatch, evaluate_module, "unroll", None)
    first = evaluate({"a": a}, fam, partial=progress, **args)
    assert count["n"] == 0 and first["rules"]["a"]["implementation"]["kernel"] == "build_one"
    first["learned_sha256"] = evaluate_module.weights_sha(a)
    save_results(first, tmp_path / "results.json")
    previous = load_results(tmp_path / "results.json")
    monkeypatch.setattr(a, "implementation_info", lambda: {"implementation": "fused", "kernel": "build_three"})
    again = evaluate({"a": a}, fam, previous=previous, **args)
    assert count["n"] == 0 and again["rules"]["a"] == first["rules"]["a"]
    monkeypatch.setattr(a, "implementation_info", lambda: {"implementation": "torch", "kernel": None})
    evaluate({"a": a}, fam, previous=previous, **args)
    assert count["n"] == 1


def test_a_rule_under_a_new_label_is_taken_from_its_old_label_even_when_that_label_now_names_another(
        tmp_path, monkeypatch):
    from l2o.evaluate import load_results, save_results
    from l2o.rules.baselines import Adam

    fam, progress = QuadraticFamily(), tmp_path / "results.partial.json"
    torch.manual_seed(0)
    old, new = LSTMRule(), LSTMRule()
    args = dict(steps=20, num_problems=4, progress=False)
    first = {"LSTM": old, "adam": Adam(lr=0.1), "other": Adam(lr=0.01)}
    whole = evaluate(first, fam, **args)
    with monkeypatch.context() as m:  # interrupted after two rules: their curves are in the progress file
        interrupt_after(m, evaluate_module, "unroll", 2)
        with pytest.raises(KeyboardInterrupt):
            evaluate(first, fam, partial=progress, **args)
    count = interrupt_after(monkeypatch, evaluate_module, "unroll", None)
    # "LSTM" now names other weights (run first, replacing its entry); the old weights are "LSTM, before"
    renamed = evaluate({"LSTM": new, "LSTM, before": old, "adam": Adam(lr=0.1)}, fam, partial=progress, **args)
    assert count["n"] == 1  # only the new weights ran
    assert renamed["rules"]["LSTM, before"]["final_mean"] == whole["rules"]["LSTM"]["final_mean"]
    assert renamed["rules"]["LSTM"] == evaluate({"LSTM": new}, fam, **args)["rules"]["LSTM"]
    # the same from a finished evaluation's results file
    whole["learned_sha256"] = evaluate_module.weights_sha(old)
    save_results(whole, tmp_path / "results.json")
    count["n"] = 0
    again = evaluate({"LSTM, before": old, "adam": Adam(lr=0.1)}, fam, previous=load_results(tmp_path / "results.json"),
                     **args)
    assert count["n"] == 0 and again["rules"]["LSTM, before"]["final_mean"] == whole["rules"]["LSTM"]["final_mean"]
