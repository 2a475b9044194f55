"""``l2o stylize CONTENT STYLE --out OUT.png``: style a photo with a learned optimizer or a baseline.

The image is optimised directly (paper §3.4): θ = its pixels, f(θ) = α L_content + β L_style + γ L_tv over a
feature network (``l2o.tasks.art``), from IID Gaussian noise, for ``steps`` steps. Writes OUT.png (the pixels
clipped to [0, 1]) and OUT.json beside it: every setting, the feature network, and the loss at every step.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from l2o import checkpoint
from l2o.meta.unroll import unroll
from l2o.rules.baselines import BASELINES
from l2o.tasks.art import ArtConfig, ArtTask, describe_network, network
from l2o.tasks.base import split_generator


def read_image(path: str | Path, size: int) -> torch.Tensor:
    """(3, size, size) in [0, 1]: the image's central square, resized. A clear error for what is not an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            side = min(w, h)
            img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
            img = img.resize((size, size), Image.Resampling.LANCZOS)
            array = np.asarray(img, dtype=np.float32) / 255
    except FileNotFoundError:
        raise ValueError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def save_image(x: torch.Tensor, path: str | Path) -> None:
    from PIL import Image

    array = (x.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)


def stylize(content: str, style: str, out: str, cfg: ArtConfig, *, steps: int = 128, optimizer: str = "art",
            lr: float | None = None, seed: int = 0, device: str = "cpu", progress: bool = True) -> dict:
    """Run the optimisation and write OUT.png and OUT.json; returns the JSON's content."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not str(out).lower().endswith(".png"):
        raise ValueError(f"--out must name a .png file, got {out}")
    if optimizer in BASELINES:
        if lr is None or lr <= 0:
            raise ValueError(f"--optimizer {optimizer} needs a learning rate: --lr X (> 0)")
        rule = BASELINES[optimizer](lr=lr)
    else:
        if lr is not None:
            raise ValueError("--lr is for the baselines; a learned optimizer's update scale is its own")
        rule = checkpoint.load_rule(optimizer, device=device)
    c, s = read_image(content, cfg.size).unsqueeze(0), read_image(style, cfg.size)
    gen = split_generator("test", seed)
    theta0 = 0.5 + cfg.init_std * torch.randn(1, 3, cfg.size, cfg.size, generator=gen)
    task = ArtTask(cfg, network(cfg).to(device), c.to(device), s.to(device), theta0.to(device))
    if isinstance(rule, torch.nn.Module):
        rule.eval()
    with tqdm(total=steps + 1, desc="stylize", disable=not progress) as bar:
        run = unroll(rule, task, steps, callback=lambda i, loss: bar.update())
    params, losses = run.params, [float(v) for v in run.losses[:, 0]]
    save_image(params["image"][0], out)
    record = {"content": str(content), "style": str(style), "out": str(out), "optimizer": optimizer,
              "rule": rule.config(), "steps": steps, "seed": seed,
              "settings": {k: v for k, v in asdict(cfg).items() if k != "style"},  # the style is the file given
              "feature_network": describe_network(cfg),
              "loss": losses}
    checkpoint.atomic_write_text(Path(out).with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    return record
