"""The curriculum's own weights. `with_curriculum` validated best (log-loss at step 200) at episode 50, before its
episodes grew past 200 steps, and its first 50 episodes are the recipe's (same seed, same settings until the
curriculum's second stage), so its row in the ablation is the recipe's episode-50 weights. This runs the weights
each of the two runs ended with (episode 150: the recipe after 200-step episodes throughout, the curriculum after
its 1,000-step stage) on the ablation's check: 2,000 steps on the same 4 held-out problems of each MNIST MLP, the
mean loss over the last 1,000 (the best weights' rows are in docs/general/ablation.md). Usage (from the repository root; about 2 min of one core per run):
    python docs/general/trials/curriculum/final_check.py
Output: final_check.txt beside this file, and each run's curves under runs/ (reused when rerun)."""
from pathlib import Path

import torch

from l2o.experiments.long import LongConfig, cached_run, slug
from l2o.meta.run_folder import load_latest
from l2o.rules import make_rule
from l2o.tasks.mlp import ImageMLPFamily, MLPConfig

torch.set_num_threads(1)
here = Path(__file__).parent
train = here.parents[1] / "train"
e = LongConfig(steps=2000, test_problems=4, window=1000)  # the ablation's check (l2o general's defaults)


def final_weights(run: str):
    weights, doc = load_latest(train / run)
    rule = make_rule(**doc["config"]["rule"])
    rule.load_state_dict(weights)
    return rule.eval(), doc["train_state"]["episode"]


rules = {}
for run in ("general", "with_curriculum"):
    rule, episodes = final_weights(run)
    rules[f"{run}, last weights (episode {episodes})"] = rule
lines = []
for task_name, family in {"mnist_sigmoid": ImageMLPFamily(MLPConfig()),
                          "mnist_relu": ImageMLPFamily(MLPConfig(activation="relu"))}.items():
    task = family.sample("test", 0, e.test_problems)
    for label, rule in rules.items():
        r = cached_run(here / "runs" / task_name / f"{slug(label)}.json", family, rule, task, e, print,
                       f"{task_name}: {label}")
        lines.append(f"{task_name:14s} {label:42s} mean over the last 1,000 of 2,000 steps {r['last_window_mean']:.4g}")
print("\n".join(lines))
(here / "final_check.txt").write_text("\n".join(lines) + "\n")
