"""How the art task's loss weights were chosen: by eye, with Adam (lr 0.05, 128 steps) on the task's own loss
(``l2o.tasks.art``, multi-scale random feature network), at content weights 0.03, 0.1 and 0.3 and the other
weights at their defaults. One row per (photo, style, size): a training photo with the training style at 64×64,
and a test photo with the new style at 128×128. Each row: style | the three results | the photo. Writes
content_weights.png beside this file and prints each result's loss terms.

    .venv/bin/python docs/art/weights/choose.py
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from l2o import stylize
from l2o.meta.unroll import unroll
from l2o.rules import Adam
from l2o.tasks.art import ArtConfig, ArtTask, network
from l2o.tasks.base import split_generator
from l2o.data import art_images

torch.set_num_threads(1)
HERE = Path(__file__).parent
WEIGHTS = (0.03, 0.1, 0.3)
ROWS = (("chelsea", "stained-glass", 64), ("rocket", "swirls", 128))


def pixels(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def row(photo: str, style_name: str, size: int) -> list[np.ndarray]:
    content = stylize.read_image(art_images.photo_files()[photo], size).unsqueeze(0)
    style = art_images.style_image(style_name, size)
    theta0 = 0.5 + 0.1 * torch.randn(1, 3, size, size, generator=split_generator("test", 0))
    images = [pixels(style)]
    for weight in WEIGHTS:
        cfg = replace(ArtConfig(size=size), content_weight=weight)
        task = ArtTask(cfg, network(cfg), content, style, theta0)
        image = unroll(Adam(lr=0.05), task, 128).params["image"]
        terms = {k: round(float(v[0]), 4) for k, v in task.losses({"image": image}).items()}
        print(f"{photo}, {style_name}, {size}×{size}, content weight {weight}: {terms}")
        images.append(pixels(image[0]))
    return images + [pixels(content[0])]


if __name__ == "__main__":
    rows = [row(*r) for r in ROWS]
    tile, gap = 160, 8
    canvas = Image.new("RGB", (len(rows[0]) * (tile + gap), len(rows) * (tile + gap)), "white")
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            canvas.paste(Image.fromarray(image).resize((tile, tile), Image.NEAREST), (c * (tile + gap), r * (tile + gap)))
    canvas.save(HERE / "content_weights.png")
