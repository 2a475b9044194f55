"""Feature networks for neural art (Gatys et al. 2015): the activations whose Gram matrices carry style and
whose values carry content.

    "vgg19"    VGG-19's convolutional layers with pretrained weights read from a file the user names (a
               state_dict of torchvision's ``vgg19``: ``features.<i>.weight`` / ``.bias``, as .safetensors or
               .pth read with ``weights_only=True``), optionally checked against a SHA-256. Style at conv1_1,
               conv2_1, conv3_1, conv4_1, conv5_1, content at conv4_2 (Gatys et al.). Inputs are normalised
               with ImageNet's mean and standard deviation, as the weights expect.
    "multiscale"  one layer of random filters at several kernel sizes and image scales (default): ``channels``
               seeded random filters of each size ``kernels`` applied, with ReLU, to the image average-pooled by
               each factor of ``scales`` (1, 2, 4 and 3, 5, 7 pixels: receptive fields of 3 to 28 pixels); every
               (scale, kernel) map is a layer, named "s{scale}k{kernel}", for style and for content. Random
               convolutional features suffice for texture and style synthesis, and a single layer of many random
               filters at several sizes is what does it (Ustyuzhaninov, Brendel, Gatys and Bethge, "What does it
               take to generate natural textures?", ICLR 2017). The default where no pretrained weights can be
               had: unlike the VGG-shaped random network below it gives styled images with no frame of saturated
               colour at the border (docs/art.md).
    "random"   VGG-19's layout of 3×3 convolutions, ReLU and 2×2 average pooling with a fixed, seeded draw of
               random filters (``widths`` channels per block) and no training (He, Wang and Hopcroft, "A powerful
               generative model using random weights for the deep image representation", NIPS 2016). Kept for
               comparison: with the art task's weights it carries a style's palette but little of its structure.

Pooling is average pooling throughout (Gatys et al. found it gives slightly better images than max pooling).
Padding: zeros for VGG-19 (as it was trained); the random network takes ``padding`` ("reflect" in the art task:
with zero padding, pixels near the border see different features and an optimised image grows a frame of
saturated colour there); the multi-scale network pads with reflection. A network is a fixed function: its
parameters never require gradients.

References:
    Gatys, Ecker and Bethge, "A neural algorithm of artistic style", 2015.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# VGG-19's convolutional part: channels per conv layer, "P" a 2×2 pooling (torchvision's layer indices follow)
VGG19 = (64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P", 512, 512, 512, 512, "P", 512, 512, 512, 512)
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_2"
PADDINGS = ("zeros", "reflect", "replicate")
SCALES, KERNELS = (1, 2, 4), (3, 5, 7)  # the multi-scale network's image scales (pooling factors) and kernel sizes
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def layer_names() -> list[str]:
    """Every conv layer of VGG-19 (and of the random network, which has its layout): conv1_1 … conv5_4."""
    return _names(VGG19)


def _names(layout) -> list[str]:
    """conv{block}_{index} for every conv layer of ``layout``."""
    names, block, index = [], 1, 0
    for item in layout:
        if item == "P":
            block, index = block + 1, 0
        else:
            index += 1
            names.append(f"conv{block}_{index}")
    return names


class FeatureNet(nn.Module):
    """A fixed VGG-style network; ``forward(x)`` returns the activations (after ReLU) of ``layers``."""

    def __init__(self, layout=VGG19, normalize: bool = False, padding: str = "zeros"):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.layout, self.normalize = tuple(layout), normalize
        self.names = _names(self.layout)
        convs, channels = [], 3
        for item in self.layout:
            if item != "P":
                convs.append(nn.Conv2d(channels, item, 3, padding=1, padding_mode=padding))
                channels = item
        self.convs = nn.ModuleList(convs)
        self.requires_grad_(False)

    def forward(self, x: Tensor, layers: tuple[str, ...]) -> dict[str, Tensor]:
        if self.normalize:
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            x = (x - mean) / x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        out, conv, last = {}, 0, max(self.names.index(name) for name in layers)
        for item in self.layout:
            if item == "P":
                x = F.avg_pool2d(x, 2)
                continue
            x = torch.relu(self.convs[conv](x))
            if self.names[conv] in layers:
                out[self.names[conv]] = x
            if conv == last:
                break
            conv += 1
        return out


def random_network(widths: tuple[int, ...] = (32, 64, 128, 256, 256), seed: int = 0,
                   padding: str = "zeros") -> FeatureNet:
    """VGG-19's layout with ``widths`` channels per block and random filters drawn from ``seed`` (He init), each
    convolution padded with ``padding``."""
    if len(widths) != 5 or min(widths) < 1:
        raise ValueError(f"widths: five positive channel counts (one per block), got {widths}")
    layout, block = [], 0
    for item in VGG19:
        if item == "P":
            block += 1
            layout.append("P")
        else:
            layout.append(widths[block])
    net = FeatureNet(layout, padding=padding)
    gen = torch.Generator().manual_seed(seed)
    for conv in net.convs:
        fan_in = conv.in_channels * 9
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
        conv.bias.zero_()
    return net


def multiscale_names(scales=SCALES, kernels=KERNELS) -> list[str]:
    """The layers of a multi-scale network: one per (scale, kernel size)."""
    return [f"s{s}k{k}" for s in scales for k in kernels]


class MultiScaleNet(nn.Module):
    """One layer of seeded random filters: ``channels`` filters of each size in ``kernels`` on the image average-
    pooled by each factor in ``scales``; ``forward(x)`` returns the ReLU maps of ``layers`` ("s{scale}k{kernel}").
    Pixels are centred on mid-grey first, so a filter's response does not depend on the image's mean alone."""

    def __init__(self, scales=SCALES, kernels=KERNELS, channels: int = 64, seed: int = 0,
                 padding: str = "reflect"):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if not scales or not kernels or min(scales) < 1 or channels < 1 or any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"scales >= 1, odd kernel sizes and channels >= 1, got scales={scales}, "
                             f"kernels={kernels}, channels={channels}")
        self.scales, self.kernels, self.padding = tuple(scales), tuple(kernels), padding
        self.names = multiscale_names(self.scales, self.kernels)
        self.shapes = dict(zip(self.names, ((s, k) for s in self.scales for k in self.kernels)))  # name: (scale, kernel)
        gen = torch.Generator().manual_seed(seed)
        for s in self.scales:
            for k in self.kernels:  # He-style scale: unit-variance responses to unit-variance pixels
                w = torch.randn(channels, 3, k, k, generator=gen) / (3 * k * k) ** 0.5
                self.register_buffer(f"s{s}k{k}", w)

    def forward(self, x: Tensor, layers: tuple[str, ...]) -> dict[str, Tensor]:
        x, out, pooled = x - 0.5, {}, {}
        mode = "constant" if self.padding == "zeros" else self.padding
        for name in layers:
            if name not in self.shapes:
                raise KeyError(f"no layer {name!r}; this network's layers are {', '.join(self.names)}")
            s, k = self.shapes[name]
            if s not in pooled:
                pooled[s] = F.avg_pool2d(x, s) if s > 1 else x
            out[name] = torch.relu(F.conv2d(F.pad(pooled[s], (k // 2,) * 4, mode=mode), getattr(self, name)))
        return out


def vgg19(weights: str | Path, sha256: str | None = None) -> FeatureNet:
    """VGG-19 with torchvision's pretrained weights from ``weights`` (checked against ``sha256`` if given)."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"VGG-19 weights not found at {path}; pass a file of torchvision's vgg19 weights, or "
                                f"use the random feature network (network='random')")
    data = path.read_bytes()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path}: SHA-256 {hashlib.sha256(data).hexdigest()} is not the expected {sha256}; a corrupt "
                         f"or different file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load

        state = load(data)
    else:  # a .pth state_dict, read without unpickling arbitrary objects
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure: not a weights file we can read
            raise ValueError(f"{path} is not a readable state_dict ({type(e).__name__}: {e})") from None
    net = FeatureNet(VGG19, normalize=True)
    try:
        for conv, i in zip(net.convs, _torchvision_indices()):
            conv.weight.copy_(state[f"features.{i}.weight"])
            conv.bias.copy_(state[f"features.{i}.bias"])
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"{path} does not hold torchvision's vgg19 weights ({type(e).__name__}: {e})") from None
    return net


def _torchvision_indices() -> list[int]:
    """The index in torchvision's ``vgg19().features`` of each conv layer (conv, ReLU, …, max-pool)."""
    out, i = [], 0
    for item in VGG19:
        if item == "P":
            i += 1
        else:
            out.append(i)
            i += 2
    return out


def gram(features: Tensor) -> Tensor:
    """(B, C, C) Gram matrices of (B, C, H, W) features, divided by C·H·W (so layers of any size weigh alike)."""
    B, C, H, W = features.shape
    flat = features.reshape(B, C, H * W)
    return flat @ flat.transpose(1, 2) / (C * H * W)
