"""`l2o status`: a run's episodes, best validation and time left, read from its files while it runs; progress
files; clear lines (not a crash) for damaged files."""

import json
from pathlib import Path

import pytest

from l2o import status
from l2o.cli import main
from l2o.meta import TrainConfig, meta_train
from l2o.partial import Partial
from l2o.rules import LSTMRule
from l2o.tasks import QuadraticFamily

SMALL = dict(horizon=20, unroll=10, problems=8, val_every=2, val_problems=16, checkpoint_every=2)


def test_a_stopped_run_a_finished_run_and_a_progress_file(tmp_path, capsys):
    cfg = TrainConfig(episodes=6, **SMALL)
    meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), cfg, tmp_path / "a", progress=False,
               stop_after=4)
    meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), TrainConfig(episodes=2, **SMALL),
               tmp_path / "b", progress=False)
    Partial(tmp_path / "tasks" / "x" / "results.partial.json", {"steps": 5}).put("adam", {"curve": [1.0]})
    a = status.run_status(tmp_path / "a")
    assert (a["episode"], a["episodes"], a["finished"]) == (4, 6, False)
    assert a["best_episode"] in (0, 2, 4) and a["seconds"] > 0
    assert a["seconds_left"] == pytest.approx(a["seconds"] / 4 * 2)
    found = status.scan(tmp_path)
    assert [r["path"] for r in found["runs"]] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert found["runs"][1]["finished"] and found["runs"][1]["seconds_left"] == 0.0
    assert found["progress"][0]["pieces"] == 1
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'a'}: 4/6 episodes, best final ") and "left at this pace" in out[0]
    assert out[1].startswith(f"{tmp_path / 'b'}: 2/2 episodes") and "finished" in out[1]
    assert out[2] == f"{tmp_path / 'tasks' / 'x' / 'results.partial.json'}: 1 pieces done (in progress; saved 0 min ago)"


def test_damaged_files_and_empty_or_missing_folders(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"episodes": 10, "val_metric": "final"}}))
    assert status.run_status(run)["note"] == "no checkpoint yet"
    (run / "state.safetensors").write_bytes(b"not a checkpoint")
    assert "not a readable safetensors file" in status.run_status(run)["error"]
    (tmp_path / "x.partial.json").write_text("{")
    assert "x.partial.json" in status.progress_status(tmp_path / "x.partial.json")["error"]
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{run}: unreadable: " in out and f"{tmp_path / 'x.partial.json'}: unreadable: " in out
    broken = tmp_path / "broken"  # a settings file that cannot be read, beside a state: reported, not skipped
    broken.mkdir()
    (broken / "config.json").write_text("{")
    (broken / "state.safetensors").write_bytes(b"")
    assert f"{broken}: unreadable: {broken / 'config.json'} is not a run's settings file" in status.report(tmp_path)
    (tmp_path / "empty").mkdir()
    assert status.report(tmp_path / "empty") == f"{tmp_path / 'empty'}: no training runs, progress files or summaries found"
    assert main(["status", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cpu_time_is_counted_across_resumes_and_shown_only_when_it_covers_the_whole_run(tmp_path, monkeypatch):
    from l2o.experiments import common
    from l2o.meta.run_folder import RunFolder

    cfg = TrainConfig(episodes=4, **SMALL)
    first = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), cfg, tmp_path / "a",
                       progress=False, stop_after=2)
    assert first.state.cpu_from == 0 and first.state.cpu_seconds > 0
    done = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), cfg, tmp_path / "a",
                      progress=False, resume=True)
    assert done.state.cpu_from == 0 and done.state.cpu_seconds > first.state.cpu_seconds
    assert status.run_status(tmp_path / "a")["cpu_seconds"] == pytest.approx(done.state.cpu_seconds)
    assert "of CPU)" in status.report(tmp_path / "a")
    assert common.meta_cpu(done.state) == {"seconds": round(done.state.cpu_seconds, 3), "complete": True}
    # a run begun by a version that did not count CPU time: counted from the episode it resumed at, not shown
    meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), cfg, tmp_path / "b", progress=False,
               stop_after=2)
    load = RunFolder.load_state

    def load_old(self, *args, **kwargs):
        best, avg, saved = load(self, *args, **kwargs)
        return best, avg, {k: v for k, v in saved.items() if k not in ("cpu_seconds", "cpu_from")}

    monkeypatch.setattr(RunFolder, "load_state", load_old)
    old = meta_train(QuadraticFamily(), LSTMRule(preprocess=False, output_scale=1.0), cfg, tmp_path / "b",
                     progress=False, resume=True)
    assert (old.state.cpu_from, old.state.episode) == (2, 4) and old.state.cpu_seconds > 0
    assert status.run_status(tmp_path / "b")["cpu_seconds"] is None and "of CPU" not in status.report(tmp_path / "b")
    assert common.meta_cpu(done.state, old.state)["complete"] is False


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="the kernel's table of locks is Linux's")
def test_a_run_being_trained_now_says_by_which_process(tmp_path):
    from problems import lock_held_elsewhere

    run = tmp_path / "run"
    meta_train(QuadraticFamily(), LSTMRule(preprocess=False), TrainConfig(episodes=2, horizon=10, unroll=5, problems=2,
               val_every=1, val_problems=2), run, progress=False, stop_after=1)
    assert "being meta-trained" not in status.report(tmp_path)  # this process let go of it when it returned
    with lock_held_elsewhere(run / ".lock") as holder:
        assert "1/2 episodes" in status.report(tmp_path)
        assert f"; being meta-trained now (pid {holder.pid})" in status.report(tmp_path)
    assert "being meta-trained" not in status.report(tmp_path)


def test_a_long_runs_saved_segment(tmp_path, capsys, monkeypatch):
    """`l2o long` saves a running run every segment (``*.partial.pt``): its steps done and the time left."""
    import torch

    import l2o.experiments.long as long_suite
    from l2o.rules.baselines import Adam

    task = QuadraticFamily().sample("test", 0, 2)
    path = tmp_path / "tasks" / "q" / "adam.partial.pt"
    path.parent.mkdir(parents=True)
    unroll = long_suite.unroll

    def stopped_after_a_segment(*args, **kwargs):
        if path.exists():
            raise KeyboardInterrupt
        return unroll(*args, **kwargs)

    monkeypatch.setattr(long_suite, "unroll", stopped_after_a_segment)
    with pytest.raises(KeyboardInterrupt):  # stopped after its first segment of 10 steps
        long_suite.run_one(Adam(0.1), task, long_suite.LongConfig(steps=40, window=10, segment=10), path, {"steps": 40})
    seg = status.segment_status(path)
    assert (seg["step"], seg["steps"]) == (10, 40) and seg["seconds_left"] == pytest.approx(seg["seconds"] * 3)
    (tmp_path / "tasks" / "q" / "bad.partial.pt").write_bytes(b"not a segment")
    torch.save({"step": 1}, tmp_path / "tasks" / "q" / "foreign.partial.pt")
    (tmp_path / "summary.json").write_text("{}")  # a summary written earlier, with work under it still running
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    now = "stopped: the suite's command resumes it" if Path("/proc/locks").is_file() else "in progress"
    assert out[0].startswith(f"{path}: 10/40 steps, ") and f"left at this pace ({now}; saved 0 min ago)" in out[0]
    assert out[1] == f"{tmp_path / 'tasks' / 'q' / 'bad.partial.pt'}: unreadable: {tmp_path / 'tasks' / 'q' / 'bad.partial.pt'}: not a readable l2o long segment"
    assert out[2].endswith("foreign.partial.pt: not a readable l2o long segment")
    assert out[3] == f"{tmp_path / 'summary.json'}: written 0 min ago; work under it is still in progress (above)"


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="the kernel's table of locks is Linux's")
def test_a_long_run_being_computed_now_says_by_which_process(tmp_path, monkeypatch):
    """The process computing a long run holds ``<optimizer>.partial.lock``: status names it; a second process on
    the same run stops with an error naming the run and the holder, and computes nothing."""
    from problems import lock_held_elsewhere

    import l2o.experiments.long as long_suite
    from l2o.rules.baselines import Adam

    fam = QuadraticFamily()
    task = fam.sample("test", 0, 2)
    e = long_suite.LongConfig(steps=20, window=5, segment=10)
    folder = tmp_path / "tasks" / "q"
    folder.mkdir(parents=True)
    unroll = long_suite.unroll

    def stopped_after_a_segment(*args, **kwargs):
        if (folder / "adam.partial.pt").exists():
            raise KeyboardInterrupt
        return unroll(*args, **kwargs)

    monkeypatch.setattr(long_suite, "unroll", stopped_after_a_segment)
    with pytest.raises(KeyboardInterrupt):
        long_suite.cached_run(folder / "adam.json", fam, Adam(0.1), task, e, lambda m: None, "adam")
    assert (folder / "adam.partial.lock").is_file()  # left by the stopped process, held by none
    assert "(stopped: the suite's command resumes it; saved" in status.report(tmp_path)
    monkeypatch.setattr(long_suite, "unroll", unroll)
    with lock_held_elsewhere(folder / "adam.partial.lock", "4242") as holder:
        assert f"(being computed now (pid {holder.pid}); saved" in status.report(tmp_path)
        with pytest.raises(RuntimeError, match=r"q/adam is being computed by another process \(pid 4242\); wait"):
            long_suite.cached_run(folder / "adam.json", fam, Adam(0.1), task, e, lambda m: None, "adam")
    assert not (folder / "adam.json").exists()  # the second process computed nothing
    r = long_suite.cached_run(folder / "adam.json", fam, Adam(0.1), task, e, lambda m: None, "adam")
    assert (folder / "adam.json").is_file() and r["steps"] == 20
    assert sorted(p.name for p in folder.iterdir()) == ["adam.json"]  # its segment and its lock are gone
