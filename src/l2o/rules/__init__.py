"""Update rules behind one protocol: the learned LSTM and the hand-designed baselines."""

from l2o.rules.base import (UpdateRule, apply_updates, detach, from_per_problem, implementation_of, num_problems,
                            per_problem, tree_map, tree_tensors)
from l2o.rules.baselines import BASELINES, LBFGS, NAG, SGD, Adam, RMSprop
from l2o.rules.lstm import LSTMConfig, LSTMRule, LSTMState
from l2o.rules.preprocess import log_sign
from l2o.rules.ntm import NTMConfig, NTMRule
from l2o.rules.routed import Routed
from l2o.rules.plateau import Plateau
from l2o.rules.agreement import SignAgreement
from l2o.rules.spike import SpikeCut

LEARNED = {"lstm": LSTMRule, "ntm": NTMRule, "routed": Routed, "plateau": Plateau, "agreement": SignAgreement,
           "spike_cut": SpikeCut}


def register_rule(name: str):
    """Decorator: make the learned rule class ``cls`` buildable by ``make_rule(name, **config)`` (and so its
    checkpoints loadable by ``load_rule`` and ``LearnedOptimizer``). Its ``__init__`` takes its ``config()``
    (without ``name``) and ``implementation``."""

    def decorate(cls):
        if name in LEARNED and LEARNED[name] is not cls or name in BASELINES:
            raise ValueError(f"an update rule named {name!r} is already registered")
        LEARNED[name] = cls
        return cls

    return decorate


def make_rule(name: str, *, implementation: str = "auto", **config) -> UpdateRule:
    """Build a rule from its name and settings (as written by ``rule.config()``); ``implementation`` is the
    learned rules' ("auto", "torch", "fused"; the baselines have only PyTorch's)."""
    if name in BASELINES:
        return BASELINES[name](**config)
    if name in LEARNED:
        return LEARNED[name](**config, implementation=implementation)
    known = ", ".join(sorted([*BASELINES, *LEARNED]))
    raise ValueError(f"unknown update rule {name!r}; available: {known}")


__all__ = [
    "UpdateRule", "apply_updates", "detach", "implementation_of", "num_problems", "per_problem",
    "from_per_problem", "tree_map", "tree_tensors", "BASELINES", "LEARNED",
    "SGD", "NAG", "RMSprop", "Adam", "LBFGS", "LSTMConfig", "LSTMRule", "LSTMState", "log_sign", "make_rule", "register_rule", "Routed", "NTMConfig", "NTMRule", "Plateau",
    "SignAgreement", "SpikeCut",
]
