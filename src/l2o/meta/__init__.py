"""Meta-learning: the differentiable inner loop and the truncated-BPTT outer loop."""

from l2o.meta.train import TrainConfig, TrainResult, TrainState, meta_train, score
from l2o.meta.unroll import Unrolled, unroll

__all__ = ["TrainConfig", "TrainResult", "TrainState", "meta_train", "score", "Unrolled", "unroll"]
