"""What every dataset loader returns, the error a dataset raises, and the one conversion of any
image file's pixels to RGB: shared by the built-ins (`engine.core.datasets`), the downloads
(`engine.core.remote`), uploads (`engine.core.userdata`) and single photos (`engine.core.imagenet`).

A leaf module: it imports nothing from the engine. Not here: loading, splitting or sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

DIGIT_NAMES = tuple(str(i) for i in range(10))


class DatasetError(ValueError):
    """A dataset that is unknown, unavailable, or cannot satisfy a request."""


@dataclass(frozen=True)
class DatasetData:
    name: str
    title: str
    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1], C = 1 or 3
    y: torch.Tensor  # (N,) int64 in [0, n_classes)
    class_names: tuple[str, ...]
    preprocessing: dict = field(default_factory=dict)  # facts shown to the learner

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def sixteen_bit_to_8(img: Image.Image) -> Image.Image:
    """16/32-bit grey ('I;16*', 'I', 'F') to 8-bit 'L': /257 for the 16-bit range, else stretch."""
    a = np.asarray(img).astype(np.float64)  # (H, W)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if img.mode != "F" and lo >= 0 and hi <= 65535:
        a = a / 257.0  # 65535 -> 255, 32896 -> 128: the full 16-bit range onto 8 bits
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        a = a * 255.0
    else:
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited onto white."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return sixteen_bit_to_8(img).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")
