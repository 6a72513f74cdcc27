"""Where fine-tuning changed the network: per-layer linear probes and linear CKA.

Two measurements of each block of a backbone's feature layers, before and after fine-tuning:

- **Linear probe accuracy**: a linear classifier trained on that block's (flattened,
  standardised) outputs for the target's training images and scored on its test split. It says
  how much of the target task a block's representation makes linearly readable.
- **Linear CKA** (centred kernel alignment, Kornblith et al. 2019) between the block's outputs
  for the same images before and after fine-tuning: 1 when the representation is unchanged up
  to a rotation and a uniform scale, lower the more fine-tuning rewrote it.

A `DiagnosticsConfig` follows the experiment protocol (`engine.experiments.protocol`) with one unit
per model: the pretrained network and an untrained one (`baseline`, probes only), and one
fine-tune per backbone learning rate (probes and CKA). The one driver stores every unit in the
result store as it finishes.
Probes train through `engine.core.train.fit`; nothing here draws.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from engine import ENGINE_VERSION
from engine.core.backbones import Classifier, get_backbone
from engine.core.datasets import (SPLIT_SEED, TEST_FRACTION, adapt_images,
                             check_capacity, get_dataset_info, load_dataset, sample_labels,
                             split_target)
from engine.core.pretrain import PretrainConfig, PretrainResult
from engine.core.store import ResultStore
from engine.core.strategies import get_strategy
from engine.core.train import accuracy, fit
from engine.experiments import protocol
from engine.experiments.protocol import UNTRAINED_SEED, Progress, Unit, digest

KEY_PREFIX = "diagnostics:"  # result-store keys of diagnostics units
PIXELS = "pixels"  # the name of the input, probed as a reference layer
BASELINE = "baseline"  # the unit holding the pretrained and untrained networks' probes


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two representations of the same n examples, x (n, d1) and y (n, d2):

        CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F * ||Yc^T Yc||_F),  Xc, Yc column-centred,

    computed through the n x n Gram matrices in float64. It is 1 for x against itself, and
    unchanged when either side is multiplied by an orthogonal matrix or a positive scalar."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs (n, d) matrices of the same n, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if x.shape[0] < 2:
        raise ValueError("CKA needs at least two examples")
    xc = x.double() - x.double().mean(0, keepdim=True)
    yc = y.double() - y.double().mean(0, keepdim=True)
    k, l = xc @ xc.T, yc @ yc.T  # (n, n) Gram matrices of the centred representations
    hsic_kl, hsic_kk, hsic_ll = (k * l).sum(), (k * k).sum(), (l * l).sum()
    if hsic_kk <= 0 or hsic_ll <= 0:
        raise ValueError("CKA is undefined for a constant representation")
    return float(hsic_kl / (hsic_kk.sqrt() * hsic_ll.sqrt()))


def block_names(features: nn.Module) -> list[str]:
    """'block 1: conv, 16 channels', ... one name per block of a sequential feature extractor."""
    names = []
    for i, block in enumerate(features, start=1):
        layer = next((m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
        if isinstance(layer, nn.Conv2d):
            names.append(f"block {i}: conv, {layer.out_channels} channels")
        elif isinstance(layer, nn.Linear):
            names.append(f"block {i}: dense, {layer.out_features} units")
        else:
            names.append(f"block {i}")
    return names


@torch.no_grad()
def block_outputs(features: nn.Sequential, x: torch.Tensor, batch_size: int = 512) -> list[torch.Tensor]:
    """Each block's output for inputs x (N, C, H, W), flattened to (N, d_block), in float32."""
    features.eval()
    outs: list[list[torch.Tensor]] = [[] for _ in features]
    for i in range(0, x.shape[0], batch_size):
        h = x[i:i + batch_size]
        for j, block in enumerate(features):
            h = block(h)
            outs[j].append(h.flatten(1).float())
    return [torch.cat(o) for o in outs]


class LinearProbes(nn.Module):
    """One linear classifier per representation, side by side: input (B, d_1 + ... + d_L) is the
    representations concatenated, output (L, B, n_classes). Trained together in one `fit` (the
    loss is the sum of their cross-entropies, and no parameter is shared, so each probe learns
    exactly as it would alone on the same batches)."""

    def __init__(self, dims: list[int], n_classes: int):
        super().__init__()
        self.dims = list(dims)
        self.heads = nn.ModuleList(nn.Linear(d, n_classes) for d in dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([h(part) for h, part in zip(self.heads, x.split(self.dims, dim=1))])


@contextlib.contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run a block on one CPU thread (the process-wide setting is restored afterwards). A linear
    probe's steps are far too small to split: on a busy two-core machine, handing each one
    between two threads cost ten times the work itself."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def probe_accuracies(train: list[torch.Tensor], train_y: torch.Tensor, test: list[torch.Tensor],
                     test_y: torch.Tensor, n_classes: int, *, steps: int = 300, lr: float = 1e-2,
                     batch_size: int = 128, seed: int = 0) -> list[float]:
    """Test accuracy (percent) of a linear probe on each representation: train[i] (N, d_i) and
    test[i] (M, d_i), every feature standardised with the training set's mean and deviation."""
    stats = [(a.mean(0, keepdim=True), a.std(0, keepdim=True).clamp_min(1e-6)) for a in train]
    x_train = torch.cat([(a - m) / s for a, (m, s) in zip(train, stats)], dim=1)  # (N, sum d)
    x_test = torch.cat([(a - m) / s for a, (m, s) in zip(test, stats)], dim=1)  # (M, sum d)
    torch.manual_seed(seed)
    probes = LinearProbes([a.shape[1] for a in train], n_classes).to(x_train.device)

    def loss(model, xb, yb, step):  # the probes' cross-entropies, summed
        return sum(F.cross_entropy(o.float(), yb) for o in model(xb))
    with one_cpu_thread(x_train.device):
        fit(probes, [{"params": list(probes.parameters()), "lr": lr}], x_train, train_y,
            steps=steps, batch_size=batch_size, seed=seed, loss_fn=loss)
        probes.eval()
        with torch.no_grad():
            hits = (probes(x_test).argmax(-1) == test_y).float().mean(1) * 100.0  # (L,)
    return [round(float(h), 4) for h in hits]


@dataclass(frozen=True)
class DiagnosticsConfig:
    source: str = "mnist5k"  # the dataset the backbone is pretrained on
    target: str = "uci_digits"  # the task fine-tuned on and probed on
    backbone: str = "small_cnn"  # an engine-pretrained backbone with sequential blocks
    labels_per_class: int = 20  # target labels per class the fine-tunes train on; 0 = all
    epochs: int = 10  # passes over that labelled set, at least 60 steps
    lr: float = 3e-3  # Adam learning rate of the new head
    backbone_lrs: tuple[float, ...] = (3e-4, 3e-3)  # one fine-tune per learning rate of the pretrained layers
    probe_labels_per_class: int = 10  # target labels per class the linear probes train on; 0 = all
    probe_steps: int = 300  # training steps of the linear probes
    seed: int = 0  # label draw, heads, batch order
    pretrain_epochs: int = 8  # passes over the source when pretraining the backbone

    def __post_init__(self):
        if get_backbone(self.backbone).imagenet:
            raise ValueError(f"{self.backbone} is an ImageNet backbone; the diagnostics use one "
                             "the engine pretrains")
        get_dataset_info(self.source)
        get_dataset_info(self.target)
        for name in ("labels_per_class", "probe_labels_per_class"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a positive integer or 0 (all), got {value!r}")
        for name in ("epochs", "probe_steps", "pretrain_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for value in (self.lr, *self.backbone_lrs):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"learning rates must be positive finite numbers, got {value!r}")
        if not self.backbone_lrs:
            raise ValueError("choose at least one learning rate for the pretrained layers")
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "backbone_lrs", tuple(sorted({float(v) for v in self.backbone_lrs})))

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(backbone=self.backbone, source=self.source, epochs=self.pretrain_epochs)

    def key(self) -> str:
        return "diagnostics-" + digest(asdict(self))

    def unit_names(self) -> list[str]:
        return [BASELINE, *(f"lr={lr:g}" for lr in self.backbone_lrs)]

    def unit_key(self, unit: str) -> str:
        common = {"source": self.source, "target": self.target, "backbone": self.backbone,
                  "pretrain": self.pretrain_config().key(), "probe_steps": self.probe_steps,
                  "probe_labels_per_class": self.probe_labels_per_class,
                  "seed": self.seed, "split": [SPLIT_SEED, TEST_FRACTION], "engine": ENGINE_VERSION}
        if unit != BASELINE:  # a fine-tune also depends on how it was trained
            common.update(labels_per_class=self.labels_per_class, epochs=self.epochs, lr=self.lr)
        return KEY_PREFIX + digest(dict(common, unit=unit))

    # the experiment protocol (engine.experiments.protocol)

    def check(self) -> None:
        check_capacity(self.target, (self.labels_per_class, self.probe_labels_per_class))

    def units(self) -> list[Unit]:
        lrs = (None, *self.backbone_lrs)  # the baseline, then one fine-tune per learning rate
        return [Unit(self.unit_key(name), name, lr) for name, lr in zip(self.unit_names(), lrs)]

    def pretraining(self) -> PretrainConfig:
        return self.pretrain_config()

    def workbench(self, device: torch.device, pretrained: PretrainResult) -> "_Setup":
        return _Setup(self, pretrained, device)

    def finished_text(self, unit: Unit, record: dict) -> str:
        return f"{unit.label} done"


def stored_by_name(config: DiagnosticsConfig, store: ResultStore) -> dict[str, dict]:
    """The config's units that the store holds, by unit name (`protocol.stored_units` keys them
    by unit key)."""
    found = protocol.stored_units(config, store)
    return {u.label: found[u.key] for u in config.units() if u.key in found}


class _Setup:
    """The experiment's workbench: what every unit shares (the pretrained weights and the
    images, on the device) and `train`, one unit at a time."""

    concurrency = 1  # units train one after another (each probe already uses the whole device)

    def __init__(self, config: DiagnosticsConfig, pretrained: PretrainResult, device: torch.device):
        self.config, self.device = config, device
        self.info = get_backbone(config.backbone)
        self.state = pretrained.load_state_dict()
        self.source_classes = load_dataset(config.source).n_classes
        target = load_dataset(config.target)
        split = split_target(target.y)
        x = adapt_images(target.x, self.info.input_shape)  # (N, C, H, W)
        self.n_classes = target.n_classes

        def subset(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.as_tensor(sample_labels(target.y, split, k, config.seed))
            return x[idx].to(device), target.y[idx].to(device)
        self.x_train, self.y_train = subset(config.labels_per_class)  # the fine-tunes' labels
        self.x_probe, self.y_probe = subset(config.probe_labels_per_class)  # the probes' labels
        test = torch.as_tensor(split.test_idx)
        self.x_test, self.y_test = x[test].to(device), target.y[test].to(device)
        source = load_dataset(config.source)
        held_out = split_target(source.y, test_fraction=pretrained.config.holdout_fraction).test_idx
        self.x_source = adapt_images(source.x[torch.as_tensor(held_out)],
                                     self.info.input_shape).to(device)  # never trained on
        self.layers = [PIXELS, *block_names(self.pretrained().features)]  # names for the records

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        return todo

    def train(self, unit: Unit, should_stop: Callable[[], bool], say: Callable[[str], None]) -> Optional[dict]:
        """The baseline's probes, or one fine-tune (unit.spec: its backbone learning rate)."""
        say(f"{unit.label}: probing each layer" if unit.spec is None
            else f"fine-tuning with the pretrained layers at {unit.label}")
        start = time.perf_counter()
        body = _baseline(self) if unit.spec is None else _finetuned(self, unit.spec, should_stop)
        if body is None:
            return None
        return {"run_key": unit.key, "unit": unit.label,
                "layers": self.layers, **body,
                "seconds": round(time.perf_counter() - start, 4), "device": self.device.type,
                "source": self.config.source, "target": self.config.target,
                "backbone": self.config.backbone, "code_version": ENGINE_VERSION}

    def pretrained(self) -> Classifier:
        torch.manual_seed(self.config.seed)
        model = self.info.build(self.source_classes)
        model.load_state_dict(self.state)
        model.replace_head(self.n_classes)
        return model.to(self.device)

    def probes(self, features: Optional[nn.Sequential]) -> list[float]:
        """Probe accuracy of every block's output; of the pixels themselves when None."""
        if features is None:
            train, test = [self.x_probe.flatten(1)], [self.x_test.flatten(1)]
        else:
            train, test = block_outputs(features, self.x_probe), block_outputs(features, self.x_test)
        return probe_accuracies(train, self.y_probe, test, self.y_test, self.n_classes,
                                steps=self.config.probe_steps, seed=self.config.seed)


def _baseline(setup: _Setup) -> dict:
    """Probes of the pixels, of an untrained network and of the pretrained one."""
    torch.manual_seed(UNTRAINED_SEED)
    untrained = setup.info.build(setup.n_classes).to(setup.device)
    return {"pixels_probe": setup.probes(None)[0], "untrained_probe": setup.probes(untrained.features),
            "pretrained_probe": setup.probes(setup.pretrained().features)}


@torch.no_grad()
def relative_change(after: nn.Module, before: nn.Module) -> float:
    """||theta - theta*|| / ||theta*|| over a module's parameters."""
    moved = sum((a - b).pow(2).sum() for a, b in zip(after.parameters(), before.parameters()))
    size = sum(b.pow(2).sum() for b in before.parameters())
    return float((moved / size).sqrt())


def _finetuned(setup: _Setup, backbone_lr: float, should_stop) -> Optional[dict]:
    """Fine-tune a copy of the pretrained network; probe it and compare it with the original."""
    config = setup.config
    before, model = setup.pretrained(), setup.pretrained()
    groups = get_strategy("finetune").param_groups(model, config.lr, backbone_lr)
    n = len(setup.y_train)
    steps = max(60, config.epochs * math.ceil(n / min(64, n)))
    stats = fit(model, groups, setup.x_train, setup.y_train, steps=steps, batch_size=64,
                seed=config.seed, should_stop=should_stop)
    if stats.stopped:
        return None

    def cka(x: torch.Tensor) -> list[float]:
        return [round(linear_cka(a, b), 6) for a, b in
                zip(block_outputs(before.features, x), block_outputs(model.features, x))]
    return {"backbone_lr": backbone_lr, "finetuned_probe": setup.probes(model.features),
            "cka_target": cka(setup.x_test), "cka_source": cka(setup.x_source),
            "relative_change": [round(relative_change(a, b), 6)
                                for a, b in zip(model.features, before.features)],
            "target_accuracy": round(accuracy(model, setup.x_test, setup.y_test), 4),
            "steps": stats.steps, "n_train": n}


def run_diagnostics(config: DiagnosticsConfig, store: Optional[ResultStore] = None, *,
                    device: Optional[torch.device] = None,
                    on_progress: Optional[Callable[[Progress], None]] = None,
                    should_stop: Optional[Callable[[], bool]] = None) -> int:
    """Compute every unit the store lacks, storing each as it finishes (the one driver);
    returns how many it computed."""
    return protocol.run_experiment(config, store, device=device, on_progress=on_progress,
                          should_stop=should_stop).trained
