"""Frozen features on disk: computed once per (backbone, dataset, preprocessing), reused by probes.

A linear probe only trains a head on what a frozen backbone outputs, so the backbone's forward
pass over a dataset is the same for every run, every seed and every later session. This module
keys that pass by the backbone's identity (name and weights), the exact dataset content (a hash
of its image tensor) and the preprocessing, and keeps the (N, D) result under
`TRANSFERLAB_HOME/features/`, with a small `<key>.json` beside it saying how long that pass
took here (`measured_passes`: the pages quote this server's own rate, not a guess). Not here:
choosing backbones or training anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from engine.core.store import home_dir, write_atomic

BATCH = 256  # images per forward pass when extracting


def tensor_digest(x: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes: the same images give the same digest."""
    x = x.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    digest.update(x.numpy().tobytes())
    return digest.hexdigest()


def feature_key(backbone_id: str, data_digest: str, preprocessing: dict) -> str:
    payload = json.dumps({"backbone": backbone_id, "data": data_digest, "prep": preprocessing},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def features_dir() -> Path:
    path = home_dir() / "features"
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract(model: nn.Module, x: torch.Tensor, device: torch.device,
            on_batch: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """(N, ...) images -> (N, D) features on the CPU, in batches, model in eval mode;
    `on_batch(images done, N)` after each batch."""
    model = model.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), BATCH):
            out.append(model(x[start:start + BATCH].to(device)).flatten(1).float().cpu())
            if on_batch is not None:
                on_batch(min(start + BATCH, len(x)), len(x))
    return torch.cat(out) if out else torch.empty(0, 0)


def cached_features(build_model: Callable[[], nn.Module], backbone_id: str, x: torch.Tensor,
                    preprocessing: dict, device: torch.device,
                    on_batch: Optional[Callable[[int, int], None]] = None) -> tuple[torch.Tensor, bool]:
    """(features (N, D), hit): read from disk when this backbone has seen these exact images with
    this preprocessing before; otherwise build the model, extract (`on_batch` as `extract`'s)
    and store atomically."""
    path = features_dir() / f"{feature_key(backbone_id, tensor_digest(x), preprocessing)}.pt"
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.shape[0] == len(x):
                return stored, True
        except Exception:  # a truncated or foreign file: compute again and replace it
            pass
    started = time.perf_counter()
    features = extract(build_model(), x, device, on_batch)
    seconds = time.perf_counter() - started
    write_atomic(path, lambda fh: torch.save(features, fh))
    facts = {"backbone": backbone_id, "images": len(x), "seconds": round(seconds, 2),
             "input": preprocessing.get("input"), "device": str(device)}
    write_atomic(path.with_suffix(".json"), lambda fh: fh.write(json.dumps(facts).encode()))
    return features, False


def measured_passes() -> list[dict]:
    """The feature passes this data directory has timed (backbone, images, seconds, input,
    device), oldest first; unreadable notes are skipped."""
    found = []
    for path in sorted(features_dir().glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            facts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(facts, dict) and isinstance(facts.get("seconds"), (int, float)):
            found.append(facts)
    return found
