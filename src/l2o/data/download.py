"""One download, for the data steps that fetch a single file (CIFAR-10's archive, VGG-19's weights)."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from l2o.data.idx import DataError


def download(url: str, target: Path, timeout: float, hint: str) -> Path:
    """``url`` into ``target``; without the internet (or behind a proxy, or when the file moved) a DataError that
    says what happened and, in ``hint``, what to do instead."""
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "l2o"})
        with urllib.request.urlopen(req, timeout=timeout) as r, open(target, "wb") as f:
            shutil.copyfileobj(r, f)
    except Exception as e:  # noqa: BLE001 - no internet, a proxy, a moved file: say what to do
        raise DataError(f"could not download {url} ({type(e).__name__}: {e}). {hint}") from None
    return target
