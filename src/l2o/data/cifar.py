"""CIFAR-10: the data step for either official release, checked, installed atomically, read without pickle.

Sources (``source=``):
    "official"                        https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
    a file                            cifar-10-binary.tar.gz or cifar-10-python.tar.gz (as downloaded)
    a folder                          cifar-10-batches-bin/ or cifar-10-batches-py/ (extracted), or a folder
                                      holding one of the two archives or one of the two folders
"auto" tries the official download. Checks, before anything is installed:
    - an archive: the MD5 published for it (binary c32a1d4a…, python c58f3010…);
    - the python release's extracted files: the per-file MD5s published with it;
    - the binary release's extracted files, which have no published per-file checksums: their format (each
      exactly 10,000 records of 1 label byte in 0–9 and 3,072 pixel bytes), said so in the log.
The python release is pickled. It is read by an unpickler that admits only what the official files hold
(a dict of bytes, lists of ints and bytes, and numpy uint8 arrays: numpy's array reconstruction, and
``codecs.encode``, with which Python 3 writes bytes at pickle protocol 2); any other class or function a
pickle may name is refused before it is built, so no code from the file ever runs.

Installed: ``<data dir>/cifar10/`` holds the six batches in the binary layout (``data_batch_1.bin`` …
``data_batch_5.bin``, ``test_batch.bin``) and ``manifest.json`` with each file's SHA-256, written last;
every load checks them. Nothing here touches the network unless ``fetch`` is called with "official"/"auto".
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l2o.data.download import download
from l2o.data.idx import DataError

NAME = "cifar10"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = {"binary": "c32a1d4ab5d03f1284b67883e8d87530", "python": "c58f30108f718f92721af3b95e74349a"}
ARCHIVE_FOLDER = {"binary": "cifar-10-batches-bin", "python": "cifar-10-batches-py"}
BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
PYTHON_MD5 = {  # published with the python release
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
}
RECORDS, PIXELS = 10_000, 3 * 32 * 32
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Images:
    train_images: np.ndarray  # (50000, 3, 32, 32) uint8, channels first
    train_labels: np.ndarray  # (50000,) uint8
    test_images: np.ndarray  # (10000, 3, 32, 32) uint8
    test_labels: np.ndarray  # (10000,) uint8


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_binary(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the binary release: (10000, 3, 32, 32) images and (10000,) labels, or a DataError."""
    if len(data) != RECORDS * (1 + PIXELS):
        raise DataError(f"{name}: {len(data):,} bytes, not the {RECORDS * (1 + PIXELS):,} of a CIFAR-10 batch "
                        f"(truncated or not CIFAR-10)")
    rows = np.frombuffer(data, np.uint8).reshape(RECORDS, 1 + PIXELS)
    labels = rows[:, 0].copy()
    if labels.max() > 9:
        raise DataError(f"{name}: labels above 9; not a CIFAR-10 batch")
    return rows[:, 1:].reshape(RECORDS, 3, 32, 32).copy(), labels


def to_binary(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The binary release's layout of one batch (the inverse of ``parse_binary``)."""
    return np.concatenate([labels.reshape(-1, 1).astype(np.uint8), images.reshape(len(images), -1)], 1).tobytes()


class _OfficialPickle(pickle.Unpickler):
    """Admits only the globals an official python-release batch names (numpy's array reconstruction)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how Python 3 writes bytes at protocol 2 (a re-pickled batch): a pure function

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}: not in an official CIFAR-10 batch")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "_reconstruct":  # numpy 2 keeps it in numpy._core, numpy 1 in numpy.core
            import importlib

            for where in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return importlib.import_module(where)._reconstruct
                except (ImportError, AttributeError):
                    continue
        return getattr(np, name)


def parse_python(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the python release, unpickled without running code from it."""
    try:
        doc = _OfficialPickle(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means: not an official batch
        raise DataError(f"{name}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or b"data" not in doc or b"labels" not in doc:
        raise DataError(f"{name}: not a CIFAR-10 python batch (no data and labels)")
    images, labels = doc[b"data"], np.asarray(doc[b"labels"])
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape != (RECORDS, PIXELS) \
            or labels.shape != (RECORDS,) or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{name}: not a CIFAR-10 python batch (data {getattr(images, 'shape', None)}, "
                        f"labels {labels.shape})")
    return images.reshape(RECORDS, 3, 32, 32), labels.astype(np.uint8)


def _release_files(src: Path) -> tuple[str, dict[str, bytes], str]:
    """(release, {batch: raw bytes}, how it was checked) from an archive or an extracted folder."""
    if src.is_file():
        data = src.read_bytes()
        md5 = _md5(data)
        release = next((r for r, m in ARCHIVE_MD5.items() if m == md5), None)
        if release is None:
            raise DataError(f"{src}: MD5 {md5} is neither CIFAR-10 archive's (binary {ARCHIVE_MD5['binary']}, "
                            f"python {ARCHIVE_MD5['python']}); a corrupt, truncated or foreign file")
        files = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    stem = Path(member.name).name.removesuffix(".bin")
                    if stem in BATCHES and member.isfile():
                        files[stem] = tar.extractfile(member).read()
        except tarfile.TarError as e:
            raise DataError(f"{src}: unreadable archive ({e})") from None
        return release, files, f"archive MD5 {md5} as published"
    for release, folder in ARCHIVE_FOLDER.items():  # a folder holding an archive or an extracted folder
        for candidate in (src / f"cifar-10-{release}.tar.gz", src / folder):
            if candidate.exists() and candidate != src:
                return _release_files(candidate)
    if all((src / f"{b}.bin").is_file() for b in BATCHES):
        return "binary", {b: (src / f"{b}.bin").read_bytes() for b in BATCHES}, \
            "format of each batch (the binary release publishes no per-file checksums)"
    if all((src / b).is_file() for b in BATCHES):
        files = {b: (src / b).read_bytes() for b in BATCHES}
        for b, data in files.items():
            if _md5(data) != PYTHON_MD5[b]:
                raise DataError(f"{src / b}: MD5 {_md5(data)} is not the published {PYTHON_MD5[b]}; corrupt or foreign")
        return "python", files, "per-file MD5s as published"
    raise DataError(f"{src} holds no CIFAR-10 release: expected cifar-10-binary.tar.gz, cifar-10-python.tar.gz, "
                    f"or the extracted cifar-10-batches-bin/ (data_batch_1.bin … test_batch.bin) or "
                    f"cifar-10-batches-py/ (data_batch_1 … test_batch)")


def install(src: str | Path, root: Path, log=print) -> Path:
    """Check the release at ``src`` and install its six batches (binary layout) with a manifest, atomically."""
    src = Path(src).expanduser()
    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    release, files, checked = _release_files(src)
    missing = [b for b in BATCHES if b not in files]
    if missing:
        raise DataError(f"{src}: the {release} release lacks {', '.join(missing)}")
    parse = parse_binary if release == "binary" else parse_python
    batches = {b: to_binary(*parse(files[b], f"{src}:{b}")) for b in BATCHES}
    folder = root / NAME
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{NAME}.", dir=root))
    try:
        for b, data in batches.items():
            (staging / f"{b}.bin").write_bytes(data)
        manifest = {"files": {f"{b}.bin": hashlib.sha256(d).hexdigest() for b, d in batches.items()},
                    "release": release, "source": str(src), "checked": checked}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        old = root / f".{NAME}.old"
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{NAME}: installed in {folder} from the {release} release at {src} (checked: {checked})")
    return folder


def missing_message(folder: Path) -> str:
    return (f"CIFAR-10 is not in {folder}. Get it with `l2o data cifar10` (downloads the official binary "
            f"release where the internet is reachable), or `l2o data cifar10 --source PATH` with "
            f"cifar-10-binary.tar.gz, cifar-10-python.tar.gz or their extracted folder")


def status(root: Path) -> dict[str, str]:
    folder = root / NAME
    try:
        manifest = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return {f"{b}.bin": "missing" for b in BATCHES}
    out = {}
    for b in BATCHES:
        path = folder / f"{b}.bin"
        out[path.name] = "missing" if not path.is_file() else (
            "ok" if hashlib.sha256(path.read_bytes()).hexdigest() == manifest.get(path.name) else "corrupt")
    return out


def fetch(root: Path, source: str = "auto", *, timeout: float = 30.0, log=print) -> Path:
    """Make sure CIFAR-10 is installed in ``root``: from ``source`` (a file or folder), or downloaded."""
    if source in ("auto", "official"):
        if all(s == "ok" for s in status(root).values()):
            log(f"{NAME}: all files present and verified in {root / NAME}")
            return root / NAME
        with tempfile.TemporaryDirectory() as tmp:
            target = download(URL, Path(tmp) / "cifar-10-binary.tar.gz", timeout,
                              "If you have CIFAR-10, pass it: `l2o data cifar10 --source PATH` "
                              "(cifar-10-binary.tar.gz, cifar-10-python.tar.gz or their extracted folder)")
            return install(target, root, log)
    return install(source, root, log)


def load(root: Path) -> Images:
    """The installed batches, checked against the manifest; a clear error saying what to run otherwise."""
    folder = root / NAME
    if not (folder / MANIFEST).is_file():
        raise DataError(missing_message(folder))
    bad = {f: s for f, s in status(root).items() if s != "ok"}
    if bad:
        raise DataError(f"{folder}: " + ", ".join(f"{f} {s}" for f, s in bad.items()) +
                        "; reinstall with `l2o data cifar10 --source PATH` (or `l2o data cifar10`)")
    parts = [parse_binary((folder / f"{b}.bin").read_bytes(), str(folder / f"{b}.bin")) for b in BATCHES]
    return Images(np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in parts[:5]]),
                  parts[5][0], parts[5][1])
