"""Backbone registry: models with a feature extractor and a replaceable linear head.

Every model the engine trains is a `Classifier`: `features` maps an input batch to a feature
vector, `head` maps features to class logits. Transfer means keeping `features` from a source
task and attaching a fresh `head` for the target. Two kinds of backbone: the engine's own small
CNN, which `engine.core.pretrain` trains on a source dataset, and ImageNet models whose weights come
from a file (`engine.core.imagenet`); their features start with `ImageNetInput`, so they read the
engine's (B, C, H, W) images in [0, 1] like the small CNN does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from engine.core.imagenet import (IMAGENET_MODELS, ImageNetInput, build_imagenet_model,
                             split_classifier)

IMAGENET_INPUT = 96  # side the lessons feed ImageNet backbones by default (224 is their native size)
IMAGENET_SIZES = (96, 160, 224)  # sides a sweep may feed them: the default, a middle one, native


class Classifier(nn.Module):
    """features (B, C, H, W) -> (B, D), then head (B, D) -> (B, n_classes)."""

    def __init__(self, features: nn.Module, feature_dim: int, n_classes: int):
        super().__init__()
        self.features = features
        self.feature_dim = feature_dim
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def replace_head(self, n_classes: int) -> None:
        """A new, randomly initialised head (uses the global torch RNG: seed before calling)."""
        self.head = nn.Linear(self.feature_dim, n_classes).to(self.head.weight.device)


def small_cnn_features(channels: tuple[int, int, int] = (16, 32, 64), dim: int = 128) -> nn.Sequential:
    """Four blocks for 1 x 28 x 28 digits: three conv blocks, then a fully connected one.

    No BatchNorm, so many runs can later be batched together without running statistics.
    Each conv block pools before its ReLU: max-pooling and ReLU commute exactly (both are
    monotone, and a window whose maximum is negative gets no gradient either way), so the values
    and gradients are those of conv-ReLU-pool, with the ReLU on a quarter of the elements.
    """
    c1, c2, c3 = channels
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()),   # (B, c1, 14, 14)
        nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()),  # (B, c2, 7, 7)
        nn.Sequential(nn.Conv2d(c2, c3, 3, padding=1), nn.MaxPool2d(2), nn.ReLU()),  # (B, c3, 3, 3)
        nn.Sequential(nn.Flatten(), nn.Linear(c3 * 9, dim), nn.ReLU()),              # (B, dim)
    )


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    title: str
    description: str
    input_shape: tuple[int, int, int]  # (C, H, W) the backbone expects
    feature_dim: int
    build_features: Callable[[], nn.Module]
    arch: str  # a short architecture signature, part of the pretrained checkpoint's key
    imagenet: bool = False  # weights come from an ImageNet file, not from engine pretraining

    def build(self, n_classes: int, input_size: int = IMAGENET_INPUT) -> Classifier:
        """A randomly initialised classifier (seed torch's RNG first for reproducibility);
        an ImageNet architecture resizes its input to `input_size` x `input_size`."""
        features = self.build_features(input_size) if self.imagenet else self.build_features()
        return Classifier(features, self.feature_dim, n_classes)

    def build_imagenet(self, n_classes: int, input_size: int = IMAGENET_INPUT) -> Classifier:
        """The ImageNet-trained features, reading `input_size` x `input_size` images, with a
        new head (raises WeightsUnavailable offline)."""
        if not self.imagenet:
            raise BackboneError(f"{self.name} has no ImageNet weights")
        return Classifier(imagenet_features(self.name, input_size, pretrained=True),
                          self.feature_dim, n_classes)


def check_input_size(size: int) -> int:
    """`size` when it is one of IMAGENET_SIZES, else a ValueError naming them."""
    if isinstance(size, bool) or size not in IMAGENET_SIZES:
        raise ValueError(f"ImageNet backbones read images of {', '.join(map(str, IMAGENET_SIZES))} "
                         f"pixels, not {size!r}")
    return size


def imagenet_features(name: str, input_size: int, pretrained: bool) -> nn.Module:
    """An ImageNet network's features: its input resized to `input_size` (B, 3, S, S) and
    normalised, then the network without its classifier, (B, D)."""
    body, _ = split_classifier(build_imagenet_model(name, pretrained=pretrained))
    resize = ImageNetInput(check_input_size(input_size), IMAGENET_MODELS[name].interpolation)
    return nn.Sequential(resize, body)


def _imagenet_features(name: str) -> Callable[..., nn.Module]:
    def build(input_size: int = IMAGENET_INPUT) -> nn.Module:  # random weights (the "untrained" source)
        return imagenet_features(name, input_size, pretrained=False)
    return build


BACKBONES: dict[str, BackboneInfo] = {
    "small_cnn": BackboneInfo(
        name="small_cnn",
        title="Small CNN (3 conv + 1 dense block)",
        description="The engine's own convolutional network: three 3x3 conv blocks (16, 32, 64 "
                    "channels, each with max-pooling), a 128-unit fully connected block and a linear "
                    "head. Pretrained here on a source dataset.",
        input_shape=(1, 28, 28),
        feature_dim=128,
        build_features=small_cnn_features,
        arch="conv3x3[16,32,64]-maxpool-fc128",
    ),
    **{m.name: BackboneInfo(
        name=m.name, title=m.title, description=m.description,
        input_shape=(3, IMAGENET_INPUT, IMAGENET_INPUT), feature_dim=m.feature_dim,
        build_features=_imagenet_features(m.name), arch=f"{m.name}-imagenet", imagenet=True,
    ) for m in IMAGENET_MODELS.values()},
}


class BackboneError(ValueError):
    """An unknown or unusable backbone."""


def get_backbone(name: str) -> BackboneInfo:
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone '{name}'; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name]


@functools.lru_cache(maxsize=None)
def feature_weights(name: str) -> int:
    """Exact number of weights in a backbone's feature layers (head excluded); built once."""
    return count_parameters(get_backbone(name).build(10).features)[1]


SMALL_CNN_BLOCKS = ("conv1", "conv2", "conv3", "fc")  # the small CNN's feature blocks, bottom up


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def feature_blocks(features: nn.Module) -> list[nn.Module]:
    """The feature extractor's blocks from the input up: what "freeze the first k" and "train
    the last k" count. The small CNN has four (three conv blocks and the dense one). For other
    networks: the top-level children that hold weights, looking through single-child wrappers
    and opening a container of stages (timm's `blocks`, torchvision's `features`) into them."""
    children = [m for m in features.children() if _has_params(m)]
    if len(children) == 1 and any(True for _ in children[0].children()):
        return feature_blocks(children[0])
    blocks: list[nn.Module] = []
    for child in children:
        stages = [m for m in child.children() if _has_params(m)]
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(stages) > 1 and len(children) > 1:
            blocks.extend(stages)
        else:
            blocks.append(child)
    return blocks


@functools.lru_cache(maxsize=None)
def block_count(name: str) -> int:
    """Number of feature blocks of a backbone (its architecture built once on the meta device)."""
    with torch.device("meta"):
        return len(feature_blocks(get_backbone(name).build_features()))


def count_parameters(model: nn.Module | Iterable[nn.Parameter]) -> tuple[int, int]:
    """(trainable, total) parameter counts of a model, or of some parameters (an optimizer
    group), each shared tensor once; formatting is the caller's business."""
    params = model.parameters() if isinstance(model, nn.Module) else model
    params = list({id(p): p for p in params}.values())  # a tensor two layers share counts once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
