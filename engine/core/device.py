"""Pick the compute device once (CUDA, then Apple's MPS, then the CPU) and the precision the
training core computes in there. Nothing here trains."""

from __future__ import annotations

import functools
import os
from typing import Optional

import torch

PRECISION_ENV = "TRANSFERLAB_PRECISION"  # "fp32" forces float32 everywhere


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


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    """x86 CPUs with AVX512-BF16 or AMX compute bfloat16 natively (read from /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """bfloat16 where the hardware computes it natively (CUDA GPUs that support it, x86 CPUs with
    AVX512-BF16 or AMX), else None: float32. Matrix products and convolutions run in bfloat16
    under autocast; weights, optimizer state and the loss stay float32."""
    if os.environ.get(PRECISION_ENV, "").lower() in ("fp32", "float32"):
        return None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 leftovers use TF32 tensor cores
        torch.backends.cudnn.allow_tf32 = True
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and _cpu_has_bf16():
        return torch.bfloat16
    return None


def precision_name(device: torch.device) -> str:
    dtype = autocast_dtype(device)
    return "bf16 autocast" if dtype == torch.bfloat16 else "fp32"
