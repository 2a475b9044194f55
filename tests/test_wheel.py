"""Installed as users install a library: a wheel built from this checkout, installed (not editable) into a
fresh virtual environment, imports, lists its optimizers and runs a learned step on the fused kernel."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from l2o import kernels

REPO = Path(__file__).parents[1]

SCRIPT = """
import sys, torch, l2o
assert "site-packages" in l2o.__file__, l2o.__file__
names = sorted(l2o.pretrained())
w = torch.zeros(1000, requires_grad=True)
opt = l2o.LearnedOptimizer([w], checkpoint="mnist")
w.grad = torch.linspace(-1, 1, 1000)
opt.step()
assert torch.isfinite(w).all() and w.abs().sum() > 0
print("names", *names)
print("implementation", opt.rule.implementation, opt.rule.implementation_info()["kernel"])
"""


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "L2O_KERNELS")}
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=900, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_imports_lists_its_optimizers_and_steps_on_the_fast_path(tmp_path):
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
          REPO])
    wheel = next((tmp_path / "dist").glob("l2o-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("l2o/kernels/lstm_step.cpp", "l2o/kernels/_compile.py", "l2o/pretrained/mnist.safetensors",
                   "l2o/pretrained/quadratic.safetensors"):
        assert needed in names, needed

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    torch_requirement = os.environ.get("L2O_TORCH", f"torch=={torch.__version__.split('+')[0]}").split()
    _run([python, "-m", "pip", "install", "-q", *torch_requirement])
    _run([python, "-m", "pip", "install", "-q", wheel])

    out = _run([python, "-c", SCRIPT], cwd=tmp_path).stdout
    shipped = sorted(f.stem for f in (REPO / "src" / "l2o" / "pretrained").glob("*.safetensors"))
    assert "quadratic-ntm" in shipped and f"names {' '.join(shipped)}\n" in out, out  # every shipped optimizer
    expected = "fused" if kernels.lstm_step() is not None else "torch"
    assert f"implementation {expected}" in out, out
    listed = _run([venv / "bin" / "l2o", "pretrained"], cwd=tmp_path).stdout
    assert "mnist:" in listed and "quadratic:" in listed
    step = _run([python, "-m", "l2o.kernels"], cwd=tmp_path).stdout
    assert f"implementation 'auto' -> '{expected}'" in step, step
