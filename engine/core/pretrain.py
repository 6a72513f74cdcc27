"""Pretraining a backbone on a source dataset, with a content-hashed checkpoint cache.

The checkpoint's file name is a hash of everything that determines its weights (architecture,
source dataset, pretraining settings, engine version), so a second request loads it instead of
training. Its metadata (source accuracy, time taken, device, the file's SHA-256) sits beside it
as JSON; a checkpoint whose bytes do not match is discarded and retrained. Weights are loaded
with `torch.load(..., weights_only=True)`. This module does not know about target tasks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from filelock import FileLock

from engine import ENGINE_VERSION
from engine.core.backbones import get_backbone
from engine.core.datasets import adapt_images, get_dataset_info, load_dataset, split_target
from engine.core.device import pick_device
from engine.core.store import home_dir
from engine.core.strategies import get_strategy
from engine.core.train import accuracy, fit


@dataclass(frozen=True)
class PretrainConfig:
    backbone: str = "small_cnn"  # key in BACKBONES
    source: str = "mnist5k"  # key in DATASETS: the source task
    epochs: int = 8  # passes over the source training split
    batch_size: int = 64  # examples per step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # initial weights and minibatch order
    holdout_fraction: float = 0.1  # share of the source held out to measure source accuracy

    def __post_init__(self):
        get_backbone(self.backbone)
        get_dataset_info(self.source)
        if not (isinstance(self.epochs, int) and self.epochs > 0):
            raise ValueError(f"pretraining epochs must be a positive integer, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise ValueError(f"pretraining batch size must be a positive integer, got "
                             f"{self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"pretraining learning rate must be a positive number, got {self.lr!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"the pretraining seed must be a whole number, 0 or more, got {self.seed!r}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError("holdout_fraction must lie strictly between 0 and 1")

    def key(self) -> str:
        """Content hash of everything that determines the pretrained weights."""
        payload = dict(asdict(self), arch=get_backbone(self.backbone).arch, engine=ENGINE_VERSION)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PretrainResult:
    config: PretrainConfig
    checkpoint: Path  # the .pt file holding the backbone's state dict
    source_accuracy: float  # percent, on the held-out part of the source
    seconds: float  # time the pretraining took when it ran
    device: str  # where it ran
    n_source_train: int
    created_at: float  # Unix time the checkpoint was written
    cached: bool  # True when this call loaded the checkpoint instead of training

    def load_state_dict(self) -> dict:
        return torch.load(self.checkpoint, map_location="cpu", weights_only=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_paths(config: PretrainConfig) -> tuple[Path, Path]:
    stem = f"{config.backbone}-{config.source}-{config.key()}"
    folder = home_dir() / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}.pt", folder / f"{stem}.json"


def load_cached(config: PretrainConfig) -> Optional[PretrainResult]:
    """The cached, verified pretraining result for `config`, or None; never trains."""
    ckpt, meta_path = checkpoint_paths(config)
    if not (ckpt.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("sha256") != _sha256(ckpt):
            return None
        torch.load(ckpt, map_location="cpu", weights_only=True)  # must also deserialize
    except Exception:  # a truncated or corrupt cache entry is retrained, never trusted
        return None
    return PretrainResult(config=config, checkpoint=ckpt, source_accuracy=meta["source_accuracy"],
                          seconds=meta["seconds"], device=meta["device"],
                          n_source_train=meta["n_source_train"], created_at=meta["created_at"],
                          cached=True)


def pretrain(config: PretrainConfig = PretrainConfig(), *, device: Optional[torch.device] = None,
             on_step: Optional[Callable[[int, int, float], None]] = None) -> PretrainResult:
    """Return the pretrained checkpoint for `config`, training it only if it is not cached."""
    cached = load_cached(config)
    if cached is not None:
        return cached
    ckpt, meta_path = checkpoint_paths(config)
    with FileLock(str(ckpt) + ".lock"):  # two processes asking at once train it once
        cached = load_cached(config)
        if cached is not None:
            return cached
        return _train_and_save(config, ckpt, meta_path, device or pick_device(), on_step)


def _train_and_save(config, ckpt: Path, meta_path: Path, device, on_step) -> PretrainResult:
    start = time.perf_counter()
    data = load_dataset(config.source)
    split = split_target(data.y, test_fraction=config.holdout_fraction)
    torch.manual_seed(config.seed)
    info = get_backbone(config.backbone)
    model = info.build(data.n_classes).to(device)
    groups = get_strategy("scratch").param_groups(model, config.lr, config.lr)
    x = adapt_images(data.x, info.input_shape)  # (N, C, H, W) as the backbone reads it
    x_train = x[split.pool_idx].to(device)
    y_train = data.y[split.pool_idx].to(device)
    per_epoch = -(-len(split.pool_idx) // config.batch_size)
    fit(model, groups, x_train, y_train, steps=config.epochs * per_epoch,
        batch_size=config.batch_size, seed=config.seed, on_step=on_step)
    source_acc = accuracy(model, x[split.test_idx].to(device), data.y[split.test_idx].to(device))
    seconds = time.perf_counter() - start

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = ckpt.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, ckpt)  # atomic: readers see the old file or the whole new one
    meta = {"config": asdict(config), "source_accuracy": source_acc, "seconds": seconds,
            "device": device.type, "n_source_train": int(len(split.pool_idx)),
            "created_at": time.time(), "sha256": _sha256(ckpt), "engine": ENGINE_VERSION}
    tmp_meta = meta_path.with_suffix(f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta, indent=2))
    os.replace(tmp_meta, meta_path)
    return PretrainResult(config=config, checkpoint=ckpt, source_accuracy=source_acc, seconds=seconds,
                          device=device.type, n_source_train=meta["n_source_train"],
                          created_at=meta["created_at"], cached=False)
