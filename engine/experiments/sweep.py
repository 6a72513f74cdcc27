"""A sweep: one spec expanded into runs (strategy x labels per class x seed), trained and stored.

`SweepSpec` is the frozen, hashable description of an experiment. `plan_runs` expands it into
runs, each with a key that identifies its numbers exactly; `run_sweep` trains the runs the store
does not hold yet, writes each one to the store the moment it finishes, and reports through an
`on_progress` callback. Scheduling work across processes is not this module's job.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine import ENGINE_VERSION
from engine.core.backbones import feature_blocks, get_backbone
from engine.core.datasets import (ALL_LABELS, adapt_images, SPLIT_SEED, TEST_FRACTION, DatasetError, get_dataset_info,
                             load_dataset, max_labels_per_class, sample_labels, split_target)
from engine.core.device import autocast_dtype, pick_device, precision_name
from engine.core.features import cached_features
from engine.core.parallel import default_concurrency, run_concurrently
from engine.core.pretrain import PretrainConfig, PretrainResult, load_cached, pretrain
from engine.core.store import ResultStore, records_frame
from engine.core.strategies import get_strategy, strategy_order
from engine.core.train import TrainBudget, accuracy, fit

DEFAULT_LABELS = (1, 2, 5, 10, 20, 50, ALL_LABELS)
MAX_SEEDS = 20
IMAGENET = "imagenet"  # source of an ImageNet backbone: its weights file
UNTRAINED = "untrained"  # source meaning "no pretraining": the backbone keeps its random init
UNTRAINED_SEED = 0  # the one random backbone every run of an untrained source shares


@dataclass(frozen=True)
class SweepSpec:
    source: str = "mnist5k"  # dataset the backbone is pretrained on, or IMAGENET or UNTRAINED
    target: str = "uci_digits"  # dataset the strategies are compared on
    backbone: str = "small_cnn"  # architecture, key in BACKBONES
    strategies: tuple[str, ...] = ("scratch", "probe", "finetune")  # names get_strategy knows
    labels_per_class: tuple[int, ...] = DEFAULT_LABELS  # sizes of the labelled set; 0 = all
    seeds: int = 3  # runs per point, with seeds 0 .. seeds-1 (label draw, init, batch order)
    budget: TrainBudget = field(default_factory=TrainBudget)  # optimisation settings per run
    pretrain_epochs: int = 8  # passes over the source when pretraining the backbone

    def __post_init__(self):
        info = get_backbone(self.backbone)
        if self.source == IMAGENET and not info.imagenet:
            raise ValueError(f"{self.backbone} has no ImageNet weights; pretrain it on a dataset")
        if info.imagenet and self.source not in (IMAGENET, UNTRAINED):
            raise ValueError(f"{self.backbone} comes pretrained on ImageNet: use source "
                             f"'{IMAGENET}' (or '{UNTRAINED}' for random weights)")
        if self.source not in (IMAGENET, UNTRAINED):
            get_dataset_info(self.source)
        get_dataset_info(self.target)
        strategies = tuple(dict.fromkeys(self.strategies))
        if not strategies:
            raise ValueError("choose at least one strategy")
        for s in strategies:
            get_strategy(s)
        # canonical order (the registry's), so the same set in any order is the same experiment
        strategies = tuple(sorted(strategies, key=strategy_order))
        labels = tuple(self.labels_per_class)
        if not labels:
            raise ValueError("choose at least one labelled-set size")
        for k in labels:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise ValueError(f"labels per class must be positive integers or 'all', got {k!r}")
        labels = tuple(sorted({int(k) for k in labels}, key=lambda k: (k == ALL_LABELS, k)))
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= MAX_SEEDS:
            raise ValueError(f"seeds must be an integer from 1 to {MAX_SEEDS}, got {self.seeds!r}")
        if not isinstance(self.budget, TrainBudget):
            raise ValueError("budget must be a TrainBudget")
        object.__setattr__(self, "strategies", strategies)
        object.__setattr__(self, "labels_per_class", labels)
        if self.engine_pretrains():
            self.pretrain_config()  # validates pretrain_epochs

    def engine_pretrains(self) -> bool:
        """True when the source is a dataset the engine pretrains the backbone on."""
        return self.source not in (IMAGENET, UNTRAINED)

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(backbone=self.backbone, source=self.source, epochs=self.pretrain_epochs)

    def source_key(self) -> str:
        """What determines the starting weights: the pretraining's key, the ImageNet file, or
        the fixed seed of the untrained backbone."""
        if self.source == IMAGENET:
            from engine.core.imagenet import get_imagenet_model

            return f"{IMAGENET}:{get_imagenet_model(self.backbone).file_name}"
        if self.source == UNTRAINED:
            return f"{UNTRAINED}:{UNTRAINED_SEED}"
        return self.pretrain_config().key()

    def key(self) -> str:
        """Hash of the whole spec: identifies an experiment (for jobs, URLs and packs)."""
        return _digest(asdict(self))

    def needs_pretraining(self) -> bool:
        """True when some strategy starts from weights the engine must pretrain (or load)."""
        return self.engine_pretrains() and any(get_strategy(s).uses_pretrained
                                               for s in self.strategies)

    def check_target_capacity(self) -> None:
        """Raise DatasetError when a labels-per-class value exceeds what the target holds."""
        data = load_dataset(self.target)
        limit = max_labels_per_class(data, split_target(data.y))
        too_many = [k for k in self.labels_per_class if k > limit]
        if too_many:
            raise DatasetError(
                f"{self.target} holds at most {limit} training labels per class outside its test "
                f"split; {max(too_many)} is too many (use 'all' for every label)")


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class RunPlan:
    strategy: str
    labels_per_class: int  # as requested; ALL_LABELS (0) means the whole pool
    seed: int
    run_key: str  # hash of everything that determines this run's numbers


def plan_runs(spec: SweepSpec) -> list[RunPlan]:
    """All runs of a spec, seed-major so every curve gains a point early in a sweep."""
    common = {
        "backbone": spec.backbone, "source": spec.source, "target": spec.target,
        "pretrain": spec.source_key(), "budget": asdict(spec.budget),
        "split": [SPLIT_SEED, TEST_FRACTION], "engine": ENGINE_VERSION,
    }
    return [
        RunPlan(s, k, seed, _digest(dict(common, strategy=s, labels_per_class=k, seed=seed)))
        for seed in range(spec.seeds) for k in spec.labels_per_class for s in spec.strategies
    ]


@dataclass(frozen=True)
class Progress:
    stage: str  # "pretrain" while the backbone trains on the source, then "run"
    done: int  # finished units of this stage (steps when pretraining, runs afterwards)
    total: int
    message: str
    record: Optional[dict] = None  # the run just finished (stage "run")


def run_finished(plan: "RunPlan", record: dict, done: int, total: int) -> Progress:
    """The progress event of a run just stored (the local pool's and Ray's alike)."""
    return Progress("run", done, total,
                    f"{plan.strategy}, {plan.labels_per_class or 'all'} labels/class, seed {plan.seed}: "
                    f"{record['test_accuracy']:.1f}%", record)


@dataclass(frozen=True)
class SweepResult:
    records: pd.DataFrame  # every run of the spec that the store holds, new and old
    trained: int  # runs trained by this call
    reused: int  # runs found in the store
    cancelled: bool
    pretrain: Optional[PretrainResult]


class SweepContext:
    """Everything a sweep's runs share: the target on the device, its split, the pretrained
    weights and, for frozen-feature strategies, the features computed once."""

    def __init__(self, spec: SweepSpec, device: torch.device, pretrained: Optional[PretrainResult]):
        self.spec = spec
        self.device = device
        self.data = load_dataset(spec.target)
        self.split = split_target(self.data.y)
        shape = get_backbone(spec.backbone).input_shape
        # ImageNet backbones resize inside their features; the small CNN reads 1 x 28 x 28
        x = (self.data.x if get_backbone(spec.backbone).imagenet
             else adapt_images(self.data.x, shape)).to(device)  # (N, C, H, W)
        # channels-last: the layout the CPU's (oneDNN) and the GPU's convolution and pooling
        # kernels are fastest in; the numbers are the same, only the memory order differs
        self.x = x.contiguous(memory_format=torch.channels_last)
        self.y = self.data.y.to(device)  # (N,)
        self.test_idx = torch.as_tensor(self.split.test_idx, device=device)
        self.pretrained_state = pretrained.load_state_dict() if pretrained else None
        self._features: Optional[torch.Tensor] = None
        self._block_outputs: dict[tuple, torch.Tensor] = {}
        # model construction draws from torch's global generator: one run at a time seeds it
        self._init_lock = threading.Lock()

    def new_model(self, strategy_name: str, seed: int):
        with self._init_lock:
            model = self._build_model(strategy_name, seed)
        return model.to(self.device, memory_format=torch.channels_last)

    def prepared_model(self, strategy_name: str, seed: int):
        """(model, parameter groups) for one run. The strategy prepares the model right after
        it is built, under the same lock, so whatever it draws at random (a re-initialised
        layer, a LoRA matrix) comes from `seed` alone, whichever thread runs it."""
        budget = self.spec.budget
        with self._init_lock:
            model = self._build_model(strategy_name, seed)
            groups = get_strategy(strategy_name).param_groups(
                model, budget.lr, budget.lr * budget.backbone_lr_mult)
        # moving keeps each Parameter object, so the groups still point at the model's weights
        return model.to(self.device, memory_format=torch.channels_last), groups

    def _build_model(self, strategy_name: str, seed: int):
        info = get_backbone(self.spec.backbone)
        torch.manual_seed(seed)
        strategy = get_strategy(strategy_name)
        if strategy.uses_pretrained and self.spec.source == IMAGENET:
            model = info.build_imagenet(self.data.n_classes)  # the head is drawn from `seed`
        elif strategy.uses_pretrained and self.spec.source == UNTRAINED:
            torch.manual_seed(UNTRAINED_SEED)  # one fixed random backbone for every run
            model = info.build(self.data.n_classes)
            torch.manual_seed(seed)
            model.replace_head(self.data.n_classes)
        elif strategy.uses_pretrained:
            model = info.build(load_dataset(self.spec.source).n_classes)
            model.load_state_dict(self.pretrained_state)
            model.replace_head(self.data.n_classes)  # the new head is drawn from `seed`
        else:
            model = info.build(self.data.n_classes)
        return model

    def features(self) -> torch.Tensor:
        """Pretrained features of every target image, (N, D), computed once per sweep."""
        if self._features is None:
            if self.spec.source == IMAGENET:  # a big network: its features are kept on disk
                features, _ = cached_features(
                    lambda: self.new_model("probe", 0).features, f"{self.spec.backbone}@"
                    f"{self.spec.source_key()}", self.data.x, {"input": get_backbone(
                        self.spec.backbone).input_shape}, self.device)
                self._features = features.to(self.device)
            else:
                model = self.new_model("probe", 0)
                self._features = self._over_all_images(model.features, autocast=False)
        return self._features

    def block_outputs(self, model: nn.Module, k: int) -> torch.Tensor:
        """Outputs of the model's first k feature blocks for every target image, computed once
        per sweep for each distinct set of those blocks' weights (the pretrained blocks that
        `partial:` and `copy-frozen:` runs all share), in the precision training computes in."""
        prefix = nn.Sequential(*list(model.features)[:k])
        key = (k, _weights_digest(prefix))
        with self._init_lock:
            if key not in self._block_outputs:
                self._block_outputs[key] = self._over_all_images(prefix, autocast=True)
            return self._block_outputs[key]

    @torch.no_grad()
    def _over_all_images(self, module: nn.Module, autocast: bool) -> torch.Tensor:
        """`module` (in evaluation mode) over every target image, 1024 at a time; in the
        precision training computes in when `autocast`, else in float32."""
        module.eval()
        dtype = autocast_dtype(self.device) if autocast else None
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return torch.cat([module(self.x[i:i + 1024]) for i in range(0, len(self.x), 1024)])

    def longest_first_by_seed(self, plans: list[RunPlan]) -> list[RunPlan]:
        """Seed after seed as planned, but within a seed the longest runs first.

        Runs trained side by side finish together when the long ones start first; the short
        ones then fill the gaps instead of leaving a core idle at the end of each seed. The
        cost of a run is the examples it pushes through the network (steps x batch), tiny for
        strategies that train only a head on cached features."""
        budget = self.spec.budget
        pool = len(self.split.pool_idx)

        def cost(plan: RunPlan) -> float:
            n = pool if plan.labels_per_class == ALL_LABELS else min(
                pool, plan.labels_per_class * self.data.n_classes)
            examples = budget.steps_for(n) * min(budget.batch_size, n)
            return examples * (0.01 if get_strategy(plan.strategy).frozen_features else 1.0)

        order = {seed: i for i, seed in enumerate(dict.fromkeys(p.seed for p in plans))}
        return sorted(plans, key=lambda p: (order[p.seed], -cost(p)))

    def run(self, plan: RunPlan, should_stop: Optional[Callable[[], bool]] = None) -> Optional[dict]:
        """Train and evaluate one run; None when cancelled part-way."""
        start = time.perf_counter()
        strategy = get_strategy(plan.strategy)
        idx = torch.as_tensor(sample_labels(self.data.y, self.split, plan.labels_per_class, plan.seed),
                              device=self.device)
        model, groups = self.prepared_model(plan.strategy, plan.seed)
        budget = self.spec.budget
        steps = budget.steps_for(len(idx))
        schedule = strategy.schedule(model, steps, budget.steps_per_epoch(len(idx)))
        frozen = 0 if schedule or strategy.frozen_features else frozen_prefix(model)
        if strategy.frozen_features:  # identical maths, but the frozen layers run once per sweep
            inputs, trained, evaluated = self.features(), model.head, model.head
        elif frozen:  # the same for the frozen first blocks: their outputs are computed once
            inputs = self.block_outputs(model, frozen)
            trained = evaluated = nn.Sequential(*list(model.features)[frozen:], model.head)
        else:
            inputs, trained, evaluated = self.x, model, model
        stats = fit(trained, groups, inputs[idx], self.y[idx], steps=steps,
                    batch_size=budget.batch_size, seed=plan.seed, should_stop=should_stop,
                    before_step=schedule)
        if stats.stopped:
            return None
        test_acc = accuracy(evaluated, inputs[self.test_idx], self.y[self.test_idx])
        n_classes = self.data.n_classes
        return {
            "strategy": plan.strategy,
            "labels_per_class": (round(len(idx) / n_classes) if plan.labels_per_class == ALL_LABELS
                                 else plan.labels_per_class),
            "all_labels": plan.labels_per_class == ALL_LABELS,
            "seed": plan.seed,
            "test_accuracy": round(test_acc, 4),
            "train_seconds": round(time.perf_counter() - start, 4),
            "device": self.device.type,
            "precision": precision_name(self.device),
            "n_train": int(len(idx)),
            "steps": stats.steps,
            "backbone": self.spec.backbone,
            "source": self.spec.source,
            "target": self.spec.target,
            "code_version": ENGINE_VERSION,
            "run_key": plan.run_key,
        }


# layers whose output depends only on their input and weights, in training as in evaluation
# (no batch statistics, no dropout): a frozen stack of them can be computed ahead of time
_STATELESS = (nn.Sequential, nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Identity)


def frozen_prefix(model: nn.Module) -> int:
    """How many of the model's first feature blocks are frozen for good and can be computed once:
    0 unless the features are a plain stack of blocks (the small CNN) made of layers that
    behave alike in training and evaluation."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or list(features) != feature_blocks(features):
        return 0
    k = 0
    for block in features:
        if any(p.requires_grad for p in block.parameters()) or not all(
                type(m) in _STATELESS for m in block.modules()):
            break
        k += 1
    return k


def _weights_digest(module: nn.Module) -> str:
    """Exact fingerprint of a module's weights (their bytes), to share cached outputs safely."""
    digest = hashlib.sha256()
    for p in module.parameters():
        digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def stored_records(spec: SweepSpec, store: ResultStore) -> pd.DataFrame:
    """The spec's runs that the store already holds (no training)."""
    return records_frame(store.get_many(p.run_key for p in plan_runs(spec)))


def run_sweep(spec: SweepSpec, store: Optional[ResultStore] = None, *,
              device: Optional[torch.device] = None,
              on_progress: Optional[Callable[[Progress], None]] = None,
              should_stop: Optional[Callable[[], bool]] = None,
              concurrency: Optional[int] = None) -> SweepResult:
    """Train every run of `spec` the store lacks, persisting each as it finishes.

    `concurrency` runs train at once (`engine.core.parallel`; default: one per CPU thread, a few per
    GPU); each run's numbers are the same whatever it is."""
    store = store or ResultStore()
    device = device or pick_device()
    spec.check_target_capacity()
    plans = plan_runs(spec)
    have = {r["run_key"] for r in store.get_many(p.run_key for p in plans)}
    todo = [p for p in plans if p.run_key not in have]
    notify = on_progress or (lambda event: None)

    pretrained = None
    if todo and spec.needs_pretraining():
        def pretrain_step(step: int, steps: int, loss: float) -> None:
            if step == steps or step % 20 == 0:
                notify(Progress("pretrain", step, steps, f"pretraining on {spec.source}: loss {loss:.3f}"))
        pretrained = pretrain(spec.pretrain_config(), device=device, on_step=pretrain_step)
    elif spec.needs_pretraining():
        pretrained = load_cached(spec.pretrain_config())

    done = len(have)
    notify(Progress("run", done, len(plans), f"{done} of {len(plans)} runs already stored"))
    context = SweepContext(spec, device, pretrained) if todo else None
    if context is not None and any(get_strategy(p.strategy).frozen_features for p in todo):
        context.features()  # once, before the runs that share it start
    stop = should_stop or (lambda: False)
    workers = default_concurrency(device) if concurrency is None else concurrency
    if context is not None and workers > 1:
        todo = context.longest_first_by_seed(todo)
    for plan, record in run_concurrently(todo, lambda plan: context.run(plan, stop),
                                         workers=workers, device=device, should_stop=stop):
        if record is None:  # stopped part-way
            continue
        store.put(record)
        done += 1
        notify(run_finished(plan, record, done, len(plans)))
    cancelled = done < len(plans)
    return SweepResult(records=stored_records(spec, store), trained=done - len(have), reused=len(have),
                       cancelled=cancelled, pretrain=pretrained)

