"""What every dataset loader returns, and the error a dataset raises: shared by the built-ins
(`engine.datasets`), the downloads (`engine.remote`) and uploads (`engine.userdata`).

A leaf module: it imports nothing from the engine. Not here: loading, splitting or sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

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
