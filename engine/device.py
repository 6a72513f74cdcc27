"""Pick the compute device once: CUDA, then Apple's MPS, then the CPU. Nothing here trains."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=1)
def pick_device() -> torch.device:
    """The best device this process can use; every engine entry point defaults to it."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """A short human description, e.g. 'CUDA (NVIDIA H100)' or 'CPU (2 threads)'."""
    device = device or pick_device()
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"
