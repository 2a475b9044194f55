"""Meta-learning: the differentiable inner loop and the truncated-BPTT outer loop."""

from l2o.meta.estimators import GradientEstimator, TruncatedBPTT
from l2o.meta.sampling import problem_seed
from l2o.meta.train import TrainConfig, TrainResult, TrainState, meta_train, score
from l2o.meta.unroll import Unrolled, unroll

__all__ = ["GradientEstimator", "TruncatedBPTT", "TrainConfig", "TrainResult", "TrainState", "meta_train", "problem_seed",
           "score", "Unrolled", "unroll"]
