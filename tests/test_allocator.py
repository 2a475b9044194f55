"""The malloc setting that keeps freed memory for reuse: on where glibc is, off when asked, once."""

import os
import platform
import subprocess
import sys

import pytest

CODE = "from l2o.allocator import retain_freed_memory as r; print(r(), r())"


def _run(**env):
    out = subprocess.run([sys.executable, "-c", CODE], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_on_with_glibc_off_when_asked():
    assert _run(L2O_MALLOC_TUNING="1") == ["True", "True"]
    assert _run(L2O_MALLOC_TUNING="0") == ["False", "False"]


def test_unroll_gives_the_same_losses_with_and_without(tmp_path):
    code = ("import torch; from l2o.tasks import QuadraticFamily; from l2o.rules import LSTMRule; "
            "from l2o.meta import unroll; torch.manual_seed(0); rule = LSTMRule(preprocess=True); "
            "task = QuadraticFamily().sample('test', 0, 64); "
            "print(unroll(rule, task, 30).losses.double().sum().item().hex())")
    outs = [subprocess.run([sys.executable, "-c", code], env={**os.environ, "L2O_MALLOC_TUNING": v},
                           capture_output=True, text=True, check=True).stdout for v in ("0", "1")]
    assert outs[0] == outs[1] and outs[0].strip()
