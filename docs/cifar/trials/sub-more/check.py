"""LSTM-sub against the LSTM on the 5-class task (Fashion-MNIST stand-in for CIFAR-10; the suite's classes 0–4, or
another suite's) on 64 test problems instead of the suite's 16: is the suite's ratio (standard errors about 35 % of
each mean) a real gap?
The suite's 16 problems are test seed 0; seeds 1–3 draw 48 more (other initial weights and minibatch orders).
Both optimizers run the same problems for 1,000 steps, as in the suite. Usage (resumable: each finished seed and
optimizer is kept in check.json):
    python docs/cifar/trials/sub-more/check.py [--suite FOLDER] [--only NAME] [NAME=RUN ...]
--suite: another suite's folder (its train/lstm-long, train/sub-long and tasks/five, whose classes it reads), e.g.
docs/cifar/trials/balanced; its output goes to FOLDER/sub-more/ (default: docs/cifar, output beside this file).
--only NAME: run that optimizer's problems alone (e.g. the LSTM's while LSTM-sub is still meta-trained), no summary.
NAME=RUN adds a candidate (a run folder or checkpoint, e.g. a trial's LSTM-sub) on the same 64 problems, each
against the LSTM. About 10 min of one core per seed and optimizer. Output: check.json (per problem, the loss at
step 1,000) and check.txt (the means, their standard errors, and each ratio with a bootstrap interval over
problems)."""
import json
import math
import sys
from pathlib import Path

import torch

from l2o import checkpoint
from l2o.rules.base import weights_sha
from l2o.meta.unroll import unroll
from l2o.tasks.conv import ConvConfig, ConvFamily

torch.set_num_threads(1)
args = sys.argv[1:]
here, folder = Path(__file__).parent, Path(__file__).parents[2]  # this file's folder, docs/cifar
if args[:1] == ["--suite"]:
    folder, args = Path(args[1]), args[2:]
    here = folder / "sub-more"
    here.mkdir(exist_ok=True)
only = None
if args[:1] == ["--only"]:
    only, args = args[1], args[2:]
runs = {"LSTM": folder / "train/lstm-long", "LSTM-sub": folder / "train/sub-long"}
candidates = dict(arg.split("=", 1) for arg in args)
runs.update(candidates)
suite = json.loads((folder / "tasks/five/results.json").read_text())
labels = tuple(suite["task"]["labels"])
print(f"the 5-class task's classes {list(labels)}, from {folder}", flush=True)
family = ConvFamily(ConvConfig(dataset="fashion-mnist", labels=labels))
rules = {name: checkpoint.load_rule(path).eval() for name, path in runs.items() if only in (None, name)}
shas = suite["learned_sha256"]
shas = shas if isinstance(shas, dict) else {"LSTM (learned)": shas}  # a string where the suite had one learned rule
path = here / "check.json"
done = json.loads(path.read_text()) if path.exists() else {}
for name, rule in rules.items():
    sha = weights_sha(rule)
    assert name in candidates or sha == shas.get(f"{name} (learned)", sha), f"not the suite's {name}"
    for seed in range(4):
        key = f"{name} seed {seed}"
        if key in done and done[key]["weights_sha256"] == sha:
            continue
        task = family.sample("test", seed, 16)
        with torch.no_grad():
            losses = torch.as_tensor(unroll(rule, task, 1000).losses)
        done[key] = {"weights_sha256": sha, "final": [float(x) for x in losses[-1]]}
        checkpoint.atomic_write_text(path, json.dumps(done, indent=1))
        print(key, f"{losses[-1].mean():.5g}", flush=True)

if only is not None:
    sys.exit()
lines = []
final = {name: torch.tensor([x for s in range(4) for x in done[f"{name} seed {s}"]["final"]], dtype=torch.float64)
         for name in rules}
for s in range(4):
    a, b = (torch.tensor(done[f"{n} seed {s}"]["final"]).mean() for n in ("LSTM", "LSTM-sub"))
    suite_note = ""
    if s == 0:
        suite_note = (f"   (the suite: {suite['rules']['LSTM (learned)']['final_mean']:.5g} and "
                      f"{suite['rules']['LSTM-sub (learned)']['final_mean']:.5g})")
    lines.append(f"seed {s} (16 problems): LSTM {a:.5g}  LSTM-sub {b:.5g}  ratio {b / a:.3f}{suite_note}")
for name, f in final.items():
    lines.append(f"{name:8s} 64 problems: mean {f.mean():.5g} ± {f.std() / math.sqrt(len(f)):.2g} (standard error), "
                 f"median {f.median():.3g}")
gen = torch.Generator().manual_seed(0)
idx = torch.randint(0, len(final["LSTM"]), (10000, len(final["LSTM"])), generator=gen)  # one resampling for all
for name in [n for n in rules if n != "LSTM"]:
    ratio = final[name].mean() / final["LSTM"].mean()
    boot = final[name][idx].mean(1) / final["LSTM"][idx].mean(1)  # same problems resampled for both (paired)
    lo, hi = torch.quantile(boot, torch.tensor([0.05, 0.95], dtype=torch.float64))
    lines.append(f"ratio of the means, {name} / LSTM, 64 problems: {ratio:.3f} (90 % bootstrap interval over problems "
                 f"{lo:.2f}–{hi:.2f})")
print("\n".join(lines))
(here / "check.txt").write_text("\n".join(lines) + "\n")
