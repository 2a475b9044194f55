"""Meta-training on several processes (torch.distributed, gloo, launched by torchrun): the same run whatever the
number of processes, and a killed worker survived with nothing lost."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from l2o.cli import main
from l2o.meta import distributed
from l2o.meta.run_folder import load_latest

WORKER = Path(__file__).with_name("distributed_worker.py")


def test_shares_cover_the_problems_in_order():
    for total, size in ((6, 1), (6, 2), (6, 4), (5, 2), (7, 7)):
        parts = [distributed.share(total, distributed.World(r, size)) for r in range(size)]
        assert [p[0] for p in parts] == [sum(q[1] for q in parts[:r]) for r in range(size)]
        assert sum(p[1] for p in parts) == total and max(p[1] for p in parts) - min(p[1] for p in parts) <= 1
    with pytest.raises(ValueError, match="2 problems cannot be shared by 4 processes"):
        distributed.share(2, distributed.World(0, 4))


def _torchrun(n: int, *args: str, restarts: int = 0, timeout: int = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           f"--max-restarts={restarts}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _run(n: int, out: Path, *extra: str, restarts: int = 0) -> dict:
    if n == 1:  # no torchrun: the plain single process
        r = subprocess.run([sys.executable, str(WORKER), str(out), *extra], capture_output=True, text=True,
                           timeout=240)
    else:
        r = _torchrun(n, str(WORKER), str(out), *extra, restarts=restarts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return load_latest(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run on one process, without torchrun."""
    out = tmp_path_factory.mktemp("one") / "run"
    return (*_run(1, out), out)


@pytest.mark.slow
def test_one_two_and_four_processes_reach_the_same_weights(reference, tmp_path):
    one, ref_doc, _ = reference
    assert ref_doc["train_state"]["processes"] == [{"episode": 0, "processes": 1}]
    for n in (2, 4):  # 6 problems: 3 + 3, and 2 + 2 + 1 + 1 (shares of unequal size)
        weights, doc = _run(n, tmp_path / f"n{n}")
        for k in one:
            torch.testing.assert_close(weights[k], one[k], rtol=1e-5, atol=1e-6)
        state = doc["train_state"]
        assert state["processes"] == [{"episode": 0, "processes": n}] and state["episode"] == 8
        assert 0 < state["comm_seconds"] < state["seconds"]
        history = [(h["episode"], round(h["val_final"], 4)) for h in state["history"]]
        assert history == [(h["episode"], round(h["val_final"], 4)) for h in ref_doc["train_state"]["history"]]


@pytest.mark.slow
def test_a_killed_worker_restarts_the_group_from_the_last_checkpoint(reference, tmp_path):
    reference = reference[0]
    marker = tmp_path / "killed.txt"
    weights, doc = _run(2, tmp_path / "run", str(marker), restarts=1)
    assert marker.read_text().startswith("killed rank 1")  # it did die, after episode 6's validation
    for k in reference:
        torch.testing.assert_close(weights[k], reference[k], rtol=1e-5, atol=1e-6)
    state = doc["train_state"]
    # resumed from episode 4's checkpoint: episodes 5 and 6 were computed twice, their results kept once
    assert state["episode"] == 8 and [h["episode"] for h in state["history"]] == [0, 2, 4, 6, 8]


def test_commands_that_do_not_meta_train_refuse_torchrun(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["tune", "--out", str(tmp_path / "t.json"), "--problems", "2", "--steps", "2"]) == 2
    assert "l2o tune does not run under torchrun" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cli_under_torchrun_resume_auto(tmp_path):
    args = ["-m", "l2o", "train", "--task", "quadratic", "--out", str(tmp_path / "run"), "--episodes", "4",
            "--horizon", "10", "--unroll", "5", "--problems", "4", "--val-every", "2", "--val-problems", "4",
            "--no-progress", "--threads", "1", "--resume", "auto"]
    first = _torchrun(2, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("meta-trained 4/4 episodes") == 1  # process 0 alone prints
    again = _torchrun(2, *args)  # the same command line: the run is complete, so it resumes and ends at once
    assert again.returncode == 0 and "meta-trained 4/4 episodes" in again.stdout


@pytest.mark.slow
def test_an_experiment_under_torchrun_meta_trains_on_both_and_evaluates_on_process_0(tmp_path):
    out = tmp_path / "quadratic"
    r = _torchrun(2, "-m", "l2o", "quadratic", "--out", str(out), "--episodes", "2", "--horizon", "10",
                  "--unroll", "5", "--problems", "4", "--val-every", "1", "--val-problems", "2", "--test-problems",
                  "8", "--tune-problems", "4", "--steps", "10", "--no-progress", "--threads", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("1/3 meta-training") == 1 and "3/3 evaluating on 8 held-out test problems" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["learned_final_mean"] > 0
    assert load_latest(out / "train")[1]["train_state"]["processes"] == [{"episode": 0, "processes": 2}]


def test_cuda_under_torchrun_puts_each_process_on_its_local_gpu_with_nccl(monkeypatch):
    """--device cuda: process LOCAL_RANK of a machine takes cuda:LOCAL_RANK and the group uses NCCL; CPU threads
    are the cores divided among the machine's processes. The GPU and the process group are stood in for (no
    GPU here), so this checks the choice, not NCCL itself."""
    calls = {}
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend, **kw: calls.update(backend=backend))
    monkeypatch.setattr(distributed, "_store", lambda rank, size: None)
    monkeypatch.setattr(distributed, "current", lambda: distributed.World(3, 4, 1, 2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.update(set_device=i))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.update(threads=n))
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    for k, v in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(k, v)
    world, device = distributed.setup("cuda")
    assert device == "cuda:1" and calls == {"set_device": 1, "threads": 8, "backend": "nccl"}
    assert (world.rank, world.size, world.local_rank) == (3, 4, 1)
    calls.clear()
    assert distributed.setup("cpu") == (distributed.World(3, 4, 1, 2), "cpu") and calls == {"threads": 8,
                                                                                            "backend": "gloo"}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # two processes on a machine with one GPU
    with pytest.raises(RuntimeError, match="process 1 of this machine needs GPU 1, and 1 are visible"):
        distributed.setup("cuda")
