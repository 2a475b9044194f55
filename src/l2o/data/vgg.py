"""The data step for VGG-19's pretrained weights (neural art's feature network): torchvision's published file.

    l2o data vgg19                     download it where the internet is reachable
    l2o data vgg19 --source FILE       install a copy you have (vgg19-dcbb9e9d.pth, as torchvision names it)

torchvision names its weight files after the first 8 hex digits of their SHA-256 and checks downloads against them;
this step does the same, then checks that the file holds VGG-19's convolutional weights (read without unpickling
arbitrary objects: ``torch.load(weights_only=True)``), and installs it atomically with its full SHA-256 in a
manifest. Nothing is downloaded except by this step. ``ArtConfig(network="vgg19")`` without a weights file uses
the installed one.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from l2o.checkpoint import atomic_write_bytes, atomic_write_text
from l2o.data.download import download
from l2o.data.idx import DataError

NAME = "vgg19"
FILE = "vgg19-dcbb9e9d.pth"
URL = f"https://download.pytorch.org/models/{FILE}"
SHA256_PREFIX = "dcbb9e9d"  # torchvision's check: the file name's hash part
MANIFEST = "manifest.json"


def missing_message(folder: Path) -> str:
    return (f"VGG-19's weights are not in {folder}. Get them with `l2o data vgg19` (torchvision's file, where the "
            f"internet is reachable), or `l2o data vgg19 --source {FILE}`, or name a weights file "
            f"(--art-weights PATH); without pretrained weights use the random feature network (network='random')")


def status(root: Path) -> dict[str, str]:
    path = root / NAME / FILE
    if not path.is_file():
        return {FILE: "missing"}
    try:
        expected = json.loads((root / NAME / MANIFEST).read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        return {FILE: "corrupt"}
    return {FILE: "ok" if hashlib.sha256(path.read_bytes()).hexdigest() == expected else "corrupt"}


def installed(root: Path) -> Path:
    """The installed, verified weights file; a clear error saying what to run otherwise."""
    if status(root)[FILE] != "ok":
        raise DataError(missing_message(root / NAME))
    return root / NAME / FILE


def install(src: str | Path, root: Path, log=print) -> Path:
    """Check ``src`` (torchvision's vgg19 weights) and install it into ``root``/vgg19."""
    from l2o.tasks import features

    src = Path(src).expanduser()
    if not src.is_file():
        raise DataError(f"{src}: no such file; pass torchvision's {FILE}")
    data = src.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if not sha.startswith(SHA256_PREFIX):
        raise DataError(f"{src}: SHA-256 {sha[:16]}… does not start with {SHA256_PREFIX}, torchvision's {FILE}: a "
                        f"corrupt, truncated or different file. To use other VGG-19 weights, name the file with "
                        f"--art-weights PATH instead")
    try:
        features.vgg19(src)  # holds VGG-19's convolutions, readable without unpickling code
    except ValueError as e:
        raise DataError(str(e)) from None
    folder = root / NAME
    atomic_write_bytes(folder / FILE, data)
    atomic_write_text(folder / MANIFEST, json.dumps({"file": FILE, "sha256": sha, "source": str(src)}, indent=1) + "\n")
    log(f"{NAME}: installed {folder / FILE} (SHA-256 {sha[:16]}…)")
    return folder / FILE


def fetch(root: Path, source: str = "auto", *, timeout: float = 60.0, log=print) -> Path:
    if source not in ("auto", "official"):
        return install(source, root, log)
    if status(root)[FILE] == "ok":
        log(f"{NAME}: present and verified in {root / NAME}")
        return root / NAME / FILE
    with tempfile.TemporaryDirectory() as tmp:
        target = download(URL, Path(tmp) / FILE, timeout,
                          f"If you have the file, pass it: `l2o data vgg19 --source {FILE}`")
        return install(target, root, log)
