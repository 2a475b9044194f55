"""Datasets: the IDX reader and the data step for MNIST and Fashion-MNIST."""

from l2o.data.datasets import DATASETS, Arrays, data_dir, fetch, load, status
from l2o.data.idx import DataError, parse_idx, read_idx, write_idx

__all__ = ["DATASETS", "Arrays", "DataError", "data_dir", "fetch", "load", "parse_idx", "read_idx", "status",
           "write_idx"]
