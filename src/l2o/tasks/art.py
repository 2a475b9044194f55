"""Neural art as an optimization problem (paper §3.4): θ = an image's pixels, f(θ) = α L_content + β L_style +
γ L_tv + δ L_range, each problem one content image with one style image (Gatys et al. 2015); the last two are
the paper's L_reg.

    L_content = mean over the content layers of mean (F(θ) − F(c))² / mean F(c)²
    L_style   = mean over the style layers of mean (G(F(θ)) − G(F(s)))² / mean G(F(s))², G the Gram matrix
    L_tv      = mean of the squared differences between neighbouring pixels (total variation)
    L_range   = mean of the squared distance of each pixel value from [0, 1] (0 inside it)

Each layer's term is divided by its target's mean square, so layers of any size and scale weigh alike and the
weights mean the same for any feature network. The layers are the network's (``features``): every map of the
multi-scale network for both terms; conv1_1 … conv5_1 for style and conv4_2 for content with VGG-19 (Gatys et
al.), conv3_2 for content with the VGG-shaped random network (its conv4_2 keeps too little of a 64×64 photo).

Pixels are on a [0, 1] scale (torchvision's convention), channels first, θ of shape (3, size, size). No
optimizer clips them; L_range keeps them in range, and a saved image is clipped. Initialisation: IID Gaussian,
as the paper, N(0.5, init_std²) per pixel. Several problems side by side: the B images go through the feature
network as one batch, each with its own content image, its own targets and its own noise.

The feature network is a setting (``network``): "multiscale" (default: one layer of seeded random filters at
several sizes and scales; no pretrained weights needed), "random" (VGG-19's layout with random filters) or
"vgg19" (pretrained weights from a file, ``weights=PATH``, or from ``l2o data vgg19``); every result says which.
The default weights were chosen by eye for the multi-scale network (docs/art.md); another network needs its own.
The registered family "art" draws its content images from ``data.art_images`` (crops of bundled photographs,
split by photograph) and its style image by code (``style``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from l2o.data import art_images
from l2o.tasks import features as feat
from l2o.tasks.base import Params, split_generator
from l2o.tasks.registry import register_family

POOL = {"train": 512, "validation": 64, "test": 64}  # content crops per split (distinct crops of its photographs)


@dataclass(frozen=True)
class ArtConfig:
    size: int = 64  # image side in pixels (the paper trains at 64, tests at 128)
    network: str = "multiscale"  # "multiscale" or "random": seeded random filters; "vgg19": pretrained weights
    weights: str = ""  # VGG-19 weights file (torchvision's vgg19 state_dict, .safetensors or .pth); "": `l2o data vgg19`'s
    weights_sha256: str = ""  # checked against the weights file when given
    network_seed: int = 0  # the random networks' filters
    content_layer: str = "auto"  # "auto": the network's (every map of multiscale; conv4_2 of vgg19; conv3_2 of random)
    content_weight: float = 0.1  # α (chosen by eye with Adam on training and test photos: styled, the layout legible)
    style_weight: float = 1.0  # β
    tv_weight: float = 0.1  # γ (smooth patches of colour rather than speckle)
    range_weight: float = 10.0  # δ (pixels stay within about 0.05 of [0, 1])
    padding: str = "auto"  # the feature network's: "auto" = zeros for vgg19 (as trained), else reflect
    init_std: float = 0.1  # θ_0 ~ N(0.5, init_std²) per pixel
    style: str = "stained-glass"  # the registered family's style image, drawn by code (data.art_images.STYLES)

    def __post_init__(self):
        if self.size < 16:
            raise ValueError(f"size must be >= 16 pixels (four poolings), got {self.size}")
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {self.network!r}")
        if min(self.content_weight, self.style_weight, self.tv_weight, self.range_weight) < 0 or self.init_std <= 0:
            raise ValueError("the loss weights must be >= 0 and init_std > 0")
        layers = network_layers(self.network)
        if self.content_layer != "auto" and self.content_layer not in layers:
            raise ValueError(f"content_layer must be 'auto' or a layer of the {self.network} network "
                             f"({layers[0]} … {layers[-1]}), got {self.content_layer!r}")
        if self.padding != "auto" and self.padding not in feat.PADDINGS:
            raise ValueError(f"padding must be 'auto' or one of {feat.PADDINGS}, got {self.padding!r}")
        if self.network == "vgg19" and padding(self) != "zeros":
            raise ValueError(f"VGG-19 was trained with zero padding; padding={self.padding!r} needs network='random'")
        if self.network == "random" and padding(self) == "reflect" and self.size < 32:
            raise ValueError(f"reflect padding needs conv5_1's maps to be at least 2 pixels wide: size >= 32, got "
                             f"{self.size} (or padding='zeros')")
        if self.style not in art_images.STYLES:
            raise ValueError(f"style must be one of the drawn styles {art_images.STYLES}, got {self.style!r}")


NETWORKS = ("multiscale", "random", "vgg19")


def network_layers(network: str) -> tuple[str, ...]:
    """Every layer of the feature network ``network`` (the VGG-shaped ones share VGG-19's names)."""
    return tuple(feat.multiscale_names()) if network == "multiscale" else tuple(feat.layer_names())


def content_layers(cfg: ArtConfig) -> tuple[str, ...]:
    if cfg.content_layer != "auto":
        return (cfg.content_layer,)
    if cfg.network == "multiscale":
        return network_layers(cfg.network)
    return (feat.CONTENT_LAYER,) if cfg.network == "vgg19" else ("conv3_2",)


def style_layers(cfg: ArtConfig) -> tuple[str, ...]:
    return network_layers(cfg.network) if cfg.network == "multiscale" else feat.STYLE_LAYERS


def describe_network(cfg: ArtConfig) -> str:
    """The feature network in words, as every result names it."""
    if cfg.network == "vgg19":
        source = Path(cfg.weights).name if cfg.weights else "`l2o data vgg19`"
        return f"VGG-19 (pretrained weights from {source})"
    shape = (f"one layer at kernel sizes {', '.join(map(str, feat.KERNELS))} and image scales "
             f"{', '.join('1' if s == 1 else f'1/{s}' for s in feat.SCALES)}" if cfg.network == "multiscale"
             else "VGG-19's layout")
    return f"random filters ({shape}; seed {cfg.network_seed}, no pretrained weights)"


def padding(cfg: ArtConfig) -> str:
    if cfg.padding != "auto":
        return cfg.padding
    return "zeros" if cfg.network == "vgg19" else "reflect"


def network(cfg: ArtConfig, data_dir=None) -> feat.FeatureNet:
    if cfg.network == "vgg19":
        if cfg.weights:
            return feat.vgg19(cfg.weights, cfg.weights_sha256 or None)
        from l2o.data import datasets, vgg

        return feat.vgg19(vgg.installed(datasets.data_dir(data_dir)), cfg.weights_sha256 or None)
    if cfg.network == "multiscale":
        return feat.MultiScaleNet(seed=cfg.network_seed, padding=padding(cfg))
    return feat.random_network(seed=cfg.network_seed, padding=padding(cfg))


def normalised_error(x: Tensor, target: Tensor) -> Tensor:
    """(B,) mean squared difference of (B, ...) ``x`` from ``target`` (B or 1, ...), over the target's mean square."""
    return (x - target).pow(2).flatten(1).mean(1) / target.pow(2).flatten(1).mean(1).clamp_min(1e-12)


def out_of_range(x: Tensor) -> Tensor:
    """(B,) mean squared distance of each pixel value from [0, 1]."""
    return (torch.relu(x - 1).pow(2) + torch.relu(-x).pow(2)).flatten(1).mean(1)


def total_variation(x: Tensor) -> Tensor:
    """(B,) mean squared difference between vertically and horizontally neighbouring pixels."""
    dv = (x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).mean(1)
    dh = (x[..., :, 1:] - x[..., :, :-1]).pow(2).flatten(1).mean(1)
    return dv + dh


class ArtTask:
    """``num_problems`` images to style: content images (B, 3, S, S) and one style image (3, S', S')."""

    def __init__(self, cfg: ArtConfig, net: feat.FeatureNet, content: Tensor, style: Tensor, theta0: Tensor):
        self.cfg, self.net, self.content, self.style = cfg, net, content, style
        self.theta0 = {"image": theta0}
        self.num_problems = content.shape[0]
        self.content_layers, self.style_layers = content_layers(cfg), style_layers(cfg)
        with torch.no_grad():
            self.content_target = net(content, self.content_layers)
            style_features = net(style.unsqueeze(0), self.style_layers)
            self.style_target = {k: feat.gram(v) for k, v in style_features.items()}  # (1, C, C) each

    def to(self, device) -> "ArtTask":
        return ArtTask(self.cfg, self.net.to(device), self.content.to(device), self.style.to(device),
                       self.theta0["image"].to(device))

    def init_params(self) -> Params:
        return {"image": self.theta0["image"].clone()}

    def narrow(self, start: int, length: int) -> "ArtTask":
        end = start + length
        return ArtTask(self.cfg, self.net, self.content[start:end], self.style, self.theta0["image"][start:end])

    def losses(self, params: Params) -> dict[str, Tensor]:
        """Each problem's four terms, (B,) each."""
        x = params["image"]
        out = self.net(x, tuple(dict.fromkeys(self.style_layers + self.content_layers)))
        content = sum(normalised_error(out[k], self.content_target[k]) for k in self.content_layers)
        style = sum(normalised_error(feat.gram(out[k]), self.style_target[k]) for k in self.style_layers)
        return {"content": content / len(self.content_layers), "style": style / len(self.style_layers),
                "tv": total_variation(x), "range": out_of_range(x)}

    def loss(self, params: Params, step: int = 0) -> Tensor:
        terms = self.losses(params)
        c = self.cfg
        return (c.content_weight * terms["content"] + c.style_weight * terms["style"] + c.tv_weight * terms["tv"]
                + c.range_weight * terms["range"])


class ArtFamily:
    """Style transfer problems: content images per split ({split: (n, 3, S, S)}, any mapping, read when a split is
    first sampled) with one style image. A sample of at most a split's pool holds distinct content images."""

    name = "art"

    def __init__(self, config: ArtConfig | None = None, *, contents: dict[str, Tensor], style: Tensor,
                 net: feat.FeatureNet | None = None, **overrides):
        self.cfg = config if config is not None else ArtConfig(**overrides)
        if isinstance(contents, dict):
            for split, images in contents.items():
                self._check(split, images)
        if style.ndim != 3 or style.shape[0] != 3:
            raise ValueError(f"the style image must be (3, H, W), got {tuple(style.shape)}")
        self.contents, self.style = contents, style
        self.net = net if net is not None else network(self.cfg)

    def _check(self, split: str, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1:] != (3, self.cfg.size, self.cfg.size):
            raise ValueError(f"{split} content images must be (n, 3, {self.cfg.size}, {self.cfg.size}), got "
                             f"{tuple(images.shape)}")
        return images

    def config(self) -> dict:
        return {"name": self.name, **asdict(self.cfg)}

    def sample(self, split: str, seed: int, num_problems: int) -> ArtTask:
        gen = split_generator(split, seed)
        pool = self._check(split, self.contents[split])
        if num_problems <= pool.shape[0]:
            pick = torch.randperm(pool.shape[0], generator=gen)[:num_problems]
        else:
            pick = torch.randint(0, pool.shape[0], (num_problems,), generator=gen)
        size = self.cfg.size
        theta0 = 0.5 + self.cfg.init_std * torch.randn(num_problems, 3, size, size, generator=gen)
        return ArtTask(self.cfg, self.net, pool[pick], self.style, theta0)


@register_family("art", config=ArtConfig, flag_prefix="art-",
                 description="neural art (paper §3.4): content crops of bundled photographs, a drawn style; needs "
                             "scikit-image and scikit-learn (their bundled photographs)")
def _art(config: ArtConfig, data_dir=None) -> ArtFamily:
    art_images.check_photos()
    return ArtFamily(config, contents=_Crops(config.size), style=art_images.style_image(config.style, config.size),
                     net=network(config, data_dir))


class _Crops(dict):
    """{split: its POOL[split] crops at ``size``}, each split cropped when first read (128-pixel crops of every
    split would take 130 MB)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __missing__(self, split: str) -> Tensor:
        if split not in POOL:
            raise KeyError(f"unknown split {split!r}; the art family has {', '.join(POOL)}")
        self[split] = art_images.crops(art_images.photos(split), POOL[split], self.size, seed=list(POOL).index(split))
        return self[split]
