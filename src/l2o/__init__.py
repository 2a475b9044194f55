"""l2o: learned optimizers in PyTorch.

A reimplementation of "Learning to learn by gradient descent by gradient descent" (Andrychowicz et al.,
NIPS 2016): a coordinatewise LSTM that maps gradients to updates, meta-trained by truncated
backpropagation through the unrolled optimization, and usable as a ``torch.optim`` optimizer.
"""

from l2o.checkpoint import CheckpointError, load_rule, pretrained, save_rule
from l2o.meta import TrainConfig, meta_train, unroll
from l2o.optim import LearnedOptimizer
from l2o.rules import LSTMConfig, LSTMRule, make_rule
from l2o.tasks import ModuleFamily, QuadraticFamily, make_family

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "load_rule", "pretrained", "save_rule", "TrainConfig", "meta_train", "unroll",
    "LearnedOptimizer", "LSTMConfig", "LSTMRule", "make_rule", "QuadraticFamily", "make_family",
    "ModuleFamily",
]
