"""Pick the compute device once (CUDA, then Apple's MPS, then the CPU) and the precision the
training core computes in there. Nothing here trains."""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from typing import Optional

import torch

PRECISION_ENV = "TRANSFERLAB_PRECISION"  # "fp32" forces float32 everywhere, "bf16" bfloat16
# where the hardware has it; unset, a CPU measures which is faster (`_cpu_bf16_is_faster`)
BF16_MARGIN = 0.85  # bfloat16 is chosen on a CPU when its step takes at most 85% of float32's
PRECISION_FILE = "cpu-precision.json"  # in the data directory: the measured choice, per CPU


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


def _time_conv_step(dtype: Optional[torch.dtype], rounds: int = 5) -> float:
    """Best seconds of a few training-sized convolution steps (the small CNN's middle block at
    batch 64, forward and backward) under autocast to `dtype` (None: float32)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 32, 14, 14, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 32, 3, 3, generator=gen, requires_grad=True)
    best = float("inf")
    # the first caller may be inside torch.no_grad() (a probe's feature pass, an evaluation):
    # the measured step needs its backward all the same
    with torch.enable_grad():
        for turn in range(rounds + 2):  # two warm-up rounds
            start = time.perf_counter()
            for _ in range(4):
                with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                    out = torch.nn.functional.conv2d(x, w, padding=1)
                out.float().sum().backward()
            if turn >= 2:
                best = min(best, time.perf_counter() - start)
    return best


def _measure_cpu_precision() -> dict:
    """float32 against bfloat16 on this CPU, alternated; bf16 wins only by BF16_MARGIN."""
    fp32 = bf16 = float("inf")
    for _ in range(2):
        fp32 = min(fp32, _time_conv_step(None))
        bf16 = min(bf16, _time_conv_step(torch.bfloat16))
    return {"fp32_s": fp32, "bf16_s": bf16, "bf16": bf16 <= BF16_MARGIN * fp32}


def _cpu_key() -> str:
    """This CPU and PyTorch, as the cached choice is valid for: model name, threads, version."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{model or platform.processor()} | {torch.get_num_threads()} threads | torch {torch.__version__}"


@functools.lru_cache(maxsize=1)
def _cpu_bf16_is_faster() -> bool:
    """Whether bfloat16 autocast trains faster than float32 on this CPU, measured once (about a
    second) and kept in the data directory, so every process sharing it computes alike. With
    AMX (or AMD's AVX512-BF16) bfloat16 is about twice as fast; with AVX512-BF16 alone, as on
    some Intel Xeons, it was measured slower than float32."""
    from engine.core.store import home_dir  # the data directory; imported late (pandas)

    key = _cpu_key()
    try:
        path = home_dir() / PRECISION_FILE
        saved = json.loads(path.read_text()) if path.exists() else {}
    except Exception:  # noqa: BLE001 - no data directory, an unreadable file: measured anew
        path, saved = None, {}
    if isinstance(saved, dict) and isinstance(saved.get(key), dict) and "bf16" in saved[key]:
        return bool(saved[key]["bf16"])
    measured = _measure_cpu_precision()
    if path is not None:
        try:  # atomically, so a process reading it never sees half a file
            tmp = path.with_name(f".{PRECISION_FILE}.{os.getpid()}")
            tmp.write_text(json.dumps({**(saved if isinstance(saved, dict) else {}), key: measured}))
            os.replace(tmp, path)
        except OSError:
            pass
    return bool(measured["bf16"])


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """bfloat16 where the hardware computes it natively and fast (CUDA GPUs that support it; x86
    CPUs with AVX512-BF16 or AMX where a measured step is faster in it), else None: float32.
    Matrix products and convolutions run in bfloat16 under autocast; weights, optimizer state and
    the loss stay float32. TRANSFERLAB_PRECISION=fp32 or =bf16 decides instead of measuring."""
    forced = os.environ.get(PRECISION_ENV, "").lower()
    if forced in ("fp32", "float32"):
        return None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 leftovers use TF32 tensor cores
        torch.backends.cudnn.allow_tf32 = True
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and _cpu_has_bf16():
        if forced in ("bf16", "bfloat16") or _cpu_bf16_is_faster():
            return torch.bfloat16
    return None


def precision_name(device: torch.device) -> str:
    dtype = autocast_dtype(device)
    return "bf16 autocast" if dtype == torch.bfloat16 else "fp32"
