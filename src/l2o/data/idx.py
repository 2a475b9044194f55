"""The IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed.

    magic: 0x00 0x00, a type byte, the number of dimensions d; then d big-endian uint32 sizes; then the
    values, big-endian, in C order.

``read_idx`` checks the header against the file's length, so a truncated or foreign file gets an error
naming it instead of a wrongly shaped array.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
         0x0E: np.dtype(">f8")}


class DataError(ValueError):
    """Missing, corrupt or foreign data files."""


def read_bytes(path: str | Path) -> bytes:
    """A file's content, decompressed if it is gzip (recognised by its magic bytes, not its name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip data ({e})") from None
    return raw


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """The array stored in IDX bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number)")
    kind, ndim = data[2], data[3]
    if kind not in TYPES:
        raise DataError(f"{name}: not an IDX file (unknown value type 0x{kind:02x})")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(TYPES[kind])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{name}: {len(data)} bytes, but its header {shape} of {dtype} needs {expected}"
                        f" ({'truncated' if len(data) < expected else 'trailing data'})")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path, sha: str | None = None) -> np.ndarray:
    """Read an IDX file (raw or .gz); with ``sha``, check the SHA-256 of its uncompressed content first."""
    data = read_bytes(path)
    if sha is not None and sha256(data) != sha:
        raise DataError(f"{path}: checksum mismatch (SHA-256 of the content {sha256(data)[:16]}…, expected "
                        f"{sha[:16]}…): the file is corrupt or not the expected one")
    return parse_idx(data, str(path))


def write_idx(path: str | Path, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (for tests and for users' own data)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in TYPES.items()}
    key = array.dtype.newbyteorder("=").str
    if key not in codes:
        raise DataError(f"IDX cannot store {array.dtype}")
    kind = codes[key]
    header = bytes([0, 0, kind, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(np.dtype(TYPES[kind]).newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(data) if compress else data)
