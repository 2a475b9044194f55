"""Exploratory (not part of the suite): style synthesis and style transfer with a multi-scale, single-layer random
feature network (Ustyuzhaninov et al., ICLR 2017): 128 random filters at each of the kernel sizes 3, 5, 7, 11, 15
(reflect padding, ReLU), Gram-matrix style loss and a feature content loss, each normalised by its target's size;
Adam (lr 0.02) on the pixels of a 64×64 image from N(0.5, 0.1²), clamped to [0, 1]. Chelsea (scikit-image) in
the drawn "stained-glass" style. Writes the two PNGs beside it.

    .venv/bin/python docs/art/explore/multiscale.py
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from l2o import stylize
from l2o.data import art_images

torch.set_num_threads(1)
HERE = Path(__file__).parent
SIZES, CHANNELS = (3, 5, 7, 11, 15), 128
gen = torch.Generator().manual_seed(0)
FILTERS = [torch.randn(CHANNELS, 3, k, k, generator=gen) / (3 * k * k) ** 0.5 for k in SIZES]


def features(x):
    x = x - 0.45
    return [F.relu(F.conv2d(F.pad(x, (k // 2,) * 4, mode="reflect"), w)) for k, w in zip(SIZES, FILTERS)]


def gram(f):
    f = f.flatten(2)
    return f @ f.transpose(1, 2) / f.shape[-1]


def run(content_weight: float, steps: int, style_grams, content_feats) -> np.ndarray:
    x = (0.5 + 0.1 * torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))).requires_grad_()
    opt = torch.optim.Adam([x], lr=0.02)
    for _ in range(steps):
        f = features(x)
        style = sum((gram(a) - b).pow(2).mean() / b.pow(2).mean() for a, b in zip(f, style_grams))
        content = sum((a - b).pow(2).mean() / b.pow(2).mean() for a, b in zip(f, content_feats))
        opt.zero_grad()
        (style + content_weight * content).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    print(f"content weight {content_weight}, {steps} steps: style loss {float(style):.4f}, content loss {float(content):.3f}")
    return (x[0].detach().permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def strip(images, path):
    tiles = [Image.fromarray(a).resize((160, 160)) for a in images]
    canvas = Image.new("RGB", (170 * len(tiles), 160), "white")
    for i, t in enumerate(tiles):
        canvas.paste(t, (i * 170, 0))
    canvas.save(path)


if __name__ == "__main__":
    style = art_images.style_image("stained-glass", 64)[None]
    photo = art_images.photo_files()["chelsea"]
    content = stylize.read_image(photo, 64)[None]
    grams = [gram(f).detach() for f in features(style)]
    feats = [f.detach() for f in features(content)]
    strip([run(0.0, 128, grams, feats), run(0.0, 500, grams, feats), run(1.0, 128, grams, feats)],
          HERE / "multiscale_style_only.png")  # style alone, 128 and 500 steps; content weight 1
    strip([run(w, 128, grams, feats) for w in (0.003, 0.01, 0.03)], HERE / "multiscale_content_weights.png")
