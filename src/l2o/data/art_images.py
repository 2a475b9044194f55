"""Images for neural art that need no download: photographs bundled in installed packages, and style images
drawn by code.

Content: colour photographs shipped inside the scikit-image and scikit-learn wheels (only files present on
disk; some of ``skimage.data``'s images are fetched from the internet and are never used here), split by
photograph so that no training, validation and test content come from one photo:

    train        astronaut.png (NASA, public domain), chelsea.png (S. van der Walt, CC0),
                 coffee.png (R. Michetti, CC0), china.jpg (danielbuechele on Flickr, CC BY 2.0)
    validation   flower.jpg (vultilion on Flickr, CC BY 2.0)
    test         rocket.jpg (SpaceX, public domain), retina.jpg (Wikimedia Commons, CC0)

A problem's content image is a random square crop (side between a third of the photo's shorter side and all
of it) resized to the problem's size, so each photograph gives many different content images.

Style: no painting ships in an installed package, so the two styles are drawn by code, seeded, and named as
such wherever they are used: "stained-glass" (the training style: a Voronoi mosaic of saturated colours with
dark leading) and "swirls" (the new test style: bands of colour bent by a smooth random flow).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from l2o.data.idx import DataError

SPLITS = {"train": ("astronaut", "chelsea", "coffee", "china"), "validation": ("flower",),
          "test": ("rocket", "retina")}
FILES = {"astronaut": ("skimage", "data/astronaut.png"), "chelsea": ("skimage", "data/chelsea.png"),
         "coffee": ("skimage", "data/coffee.png"), "rocket": ("skimage", "data/rocket.jpg"),
         "retina": ("skimage", "data/retina.jpg"), "china": ("sklearn", "datasets/images/china.jpg"),
         "flower": ("sklearn", "datasets/images/flower.jpg")}
STYLES = ("stained-glass", "swirls")


def photo_files() -> dict[str, Path]:
    """The bundled photographs present on this machine: name -> file (without importing the packages)."""
    found = {}
    for name, (package, relative) in FILES.items():
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin:
            path = Path(spec.origin).parent / relative
            if path.is_file():
                found[name] = path
    return found


def load_photo(path: Path) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]."""
    from PIL import Image

    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def check_photos(splits=tuple(SPLITS), files: dict[str, Path] | None = None) -> dict[str, Path]:
    """The photographs of ``splits`` (name -> file); a clear error saying what to install when any is missing."""
    files = photo_files() if files is None else files
    missing = [name for split in splits for name in SPLITS[split] if name not in files]
    if missing:
        raise DataError(f"the photographs {', '.join(missing)} are not on this machine: they ship in the "
                        f"scikit-image and scikit-learn wheels (`pip install scikit-image scikit-learn`, or "
                        f"`pip install 'l2o[art]'`)")
    return files


def photos(split: str, files: dict[str, Path] | None = None) -> list[torch.Tensor]:
    """The photographs of ``split``; a clear error saying what to install when they are missing."""
    files = check_photos((split,), files)
    return [load_photo(files[name]) for name in SPLITS[split]]


def crops(images: list[torch.Tensor], n: int, size: int, seed: int) -> torch.Tensor:
    """(n, 3, size, size): random square crops of random photographs of ``images``, resized (antialiased)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        img = images[int(torch.randint(0, len(images), (1,), generator=gen))]
        h, w = img.shape[1:]
        short = min(h, w)
        side = int(torch.randint(max(short // 3, 1), short + 1, (1,), generator=gen))
        top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
        patch = img[:, top:top + side, left:left + side].unsqueeze(0)
        out.append(F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0])
    return torch.stack(out).clamp_(0, 1)


def style_image(name: str, size: int, seed: int = 0) -> torch.Tensor:
    """(3, size, size) in [0, 1]: one of the drawn styles, the same for the same (name, size, seed)."""
    gen = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    if name == "stained-glass":
        cells = 24
        centres = torch.rand(cells, 2, generator=gen)
        palette = torch.rand(cells, 3, generator=gen) ** 0.5  # saturated, bright
        d = (y.reshape(-1, 1) - centres[:, 0]) ** 2 + (x.reshape(-1, 1) - centres[:, 1]) ** 2
        two = d.topk(2, largest=False).values
        edge = (two[:, 1].sqrt() - two[:, 0].sqrt()).reshape(size, size)  # small near a border between cells
        colour = palette[d.argmin(1)].reshape(size, size, 3).permute(2, 0, 1)
        return (colour * (edge > 0.012).float()).clamp(0, 1)  # dark leading between the panes
    if name == "swirls":
        flow = sum(torch.sin(6.28 * (3 * f[0] * x + 3 * f[1] * y) + f[2] * 6.28) * f[3]
                   for f in torch.rand(8, 4, generator=gen))
        phase = 12 * (x + 0.3 * y) + 6 * flow
        colours = torch.stack([0.5 + 0.5 * torch.sin(phase + k * 2.1) for k in range(3)])
        return colours.clamp(0, 1)
    raise ValueError(f"unknown style {name!r}; the drawn styles are {', '.join(STYLES)}")
