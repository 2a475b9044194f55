"""Meta-training survives being killed: ``l2o train`` in real subprocesses, SIGKILLed at random points and while
writing a checkpoint, resumed, ends with bitwise the weights of an uninterrupted run; a full or read-only run
folder gives a clear error and leaves the last good checkpoint intact."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from l2o import checkpoint

L2O = [sys.executable, "-m", "l2o.cli"]
ARGS = ["--task", "quadratic", "--problems", "64", "--val-every", "5", "--val-problems", "64",
        "--checkpoint-every", "1", "--threads", "1", "--no-progress", "--seed", "3"]

# Run as a script in a subprocess: the CLI, with the write of the N-th state checkpoint cut off halfway by a
# SIGKILL (after half the bytes reached the temporary file, before the rename that would publish it).
DIE_DURING_WRITE = """
import os, signal, sys, tempfile
from l2o import checkpoint, cli
original, count = checkpoint.atomic_write_bytes, [0]
def dying(path, data):
    if str(path).endswith("state.safetensors"):
        count[0] += 1
        if count[0] == int(os.environ["KILL_AT_WRITE"]):
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.write(fd, data[: len(data) // 2])
            os.fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    original(path, data)
checkpoint.atomic_write_bytes = dying
sys.exit(cli.main(sys.argv[1:]))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _train(out: Path, episodes: int, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*L2O, "train", "--out", str(out), "--episodes", str(episodes), *ARGS, *extra],
                          env=_env(), capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _weights(run: Path) -> dict[str, torch.Tensor]:
    best, _ = checkpoint.load(run / "best.safetensors", "rule")
    state, doc = checkpoint.load(run / "state.safetensors", "train_state")
    return {**{f"best.{k}": v for k, v in best.items()}, **state, "episode": torch.tensor(doc["train_state"]["episode"])}


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert _history(a) == _history(b)


def _history(run: Path) -> list[list[str]]:
    """history.csv without its wall-clock column."""
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    seconds = rows[0].index("seconds")
    return [row[:seconds] + row[seconds + 1:] for row in rows]


@pytest.mark.slow
def test_sigkill_at_random_points_and_during_a_checkpoint_write_then_resume_is_bitwise_uninterrupted(tmp_path):
    episodes = 240  # long enough that four kills of 2-6 s cannot finish it on a fast, idle machine
    _train(tmp_path / "reference", episodes)

    run, rng = tmp_path / "killed", random.Random(0)
    kills = []
    for _ in range(4):  # SIGKILL after a random time: during start-up, training, validation or a checkpoint
        resume = ["--resume"] if (run / "config.json").exists() else []
        proc = subprocess.Popen([*L2O, "train", "--out", str(run), "--episodes", str(episodes), *ARGS, *resume],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        delay = rng.uniform(2.0, 6.0)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        saved = checkpoint.load(run / "state.safetensors", "train_state")[1]["train_state"]["episode"] \
            if (run / "state.safetensors").exists() else None
        kills.append((round(delay, 2), proc.returncode, saved))
    assert any(k[1] == -signal.SIGKILL for k in kills), kills  # at least one kill landed while it ran

    # a SIGKILL halfway through writing the second state checkpoint of this call
    before = checkpoint.load(run / "state.safetensors", "train_state")[1]["train_state"]["episode"] \
        if (run / "state.safetensors").exists() else None
    assert (before or 0) < episodes - 2, kills
    died = subprocess.run([sys.executable, "-c", DIE_DURING_WRITE, "train", "--out", str(run), "--episodes",
                           str(episodes), *ARGS, *(["--resume"] if (run / "config.json").exists() else [])],
                          env={**_env(), "KILL_AT_WRITE": "2"}, capture_output=True, text=True, timeout=600)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert list(run.glob(".state.safetensors.*.tmp"))  # the half-written temporary
    after = checkpoint.load(run / "state.safetensors", "train_state")[1]["train_state"]["episode"]  # still loads
    assert after == (before or 0) + 1  # the first write of that call landed, the second did not

    _train(run, episodes, "--resume")
    assert not list(run.glob(".*.tmp"))  # the debris is removed
    _assert_same_weights(tmp_path / "reference", run)


# Run under `unshare -rm` (a private mount namespace): a small tmpfs as the run folder, then filled up, then
# made read-only. Prints "NAME=exit status" lines; copies what the test inspects to $2.
FULL_AND_READ_ONLY = r"""
set -u
D=$1; OUT=$2; shift 2
mount -t tmpfs -o size=4m tmpfs "$D" || exit 90
"$@" --out "$D/run" --episodes 8 --stop-after 4 >/dev/null 2>&1; echo "first=$?"
cp "$D/run/state.safetensors" "$OUT/state.before"
dd if=/dev/zero of="$D/fill" bs=4k >/dev/null 2>&1; truncate -s -40K "$D/fill"
"$@" --out "$D/run" --episodes 8 --resume >/dev/null 2>"$OUT/full.err"; echo "full=$?"
cp "$D/run/state.safetensors" "$OUT/state.full"
rm "$D/fill"; mount -o remount,ro "$D"
"$@" --out "$D/run" --episodes 8 --resume >/dev/null 2>"$OUT/ro.err"; echo "ro=$?"
cp "$D/run/state.safetensors" "$OUT/state.ro"
mount -o remount,rw "$D"
"$@" --out "$D/run" --episodes 8 --resume >/dev/null 2>&1; echo "final=$?"
cp -r "$D/run" "$OUT/run"
"""


@pytest.mark.slow
def test_a_full_or_read_only_run_folder_is_a_clear_error_that_keeps_the_last_checkpoint(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small file system without privileges")
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    script = tmp_path / "scenario.sh"
    script.write_text(FULL_AND_READ_ONLY)
    done = subprocess.run(["unshare", "-rm", "bash", str(script), str(mnt), str(out), *L2O, "train", *ARGS],
                          env=_env(), capture_output=True, text=True, timeout=600)
    if done.returncode == 90 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a file system in a user namespace here: {done.stderr.strip()}")
    status = dict(line.split("=") for line in done.stdout.split())
    assert status == {"first": "0", "full": "2", "ro": "2", "final": "0"}, (done.stdout, done.stderr)

    full, ro = (out / "full.err").read_text(), (out / "ro.err").read_text()
    assert "l2o: error:" in full and "state.safetensors: No space left on device" in full, full
    assert "the previous file is left as it was" in full and "Traceback" not in full, full
    assert "l2o: error:" in ro and "Read-only file system" in ro and "Traceback" not in ro, ro
    before = (out / "state.before").read_bytes()
    assert (out / "state.full").read_bytes() == before and (out / "state.ro").read_bytes() == before
    assert checkpoint.load(out / "state.before", "train_state")[1]["train_state"]["episode"] == 4

    _train(tmp_path / "reference", 8)  # and once there is room again, the run ends where an uninterrupted one does
    _assert_same_weights(tmp_path / "reference", out / "run")
