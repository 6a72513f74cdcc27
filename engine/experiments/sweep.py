"""A sweep: one spec expanded into runs (strategy x labels per class x seed), trained and stored.

`SweepSpec` is the frozen, hashable description of an experiment and follows the experiment
protocol (`engine.experiments.protocol`): its units are its runs (`plan_runs`), each with a key
that identifies its numbers exactly, and its workbench is `SweepContext`, which holds what the
runs share and trains one run. `run_sweep` hands a spec to the one driver,
`protocol.run_experiment`, which trains the runs the store lacks and stores each the moment it
finishes. `SweepGroup` runs several sweeps as one job. Scheduling work across processes is not
this module's job.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine import ENGINE_VERSION
from engine.core.backbones import IMAGENET_INPUT, check_input_size, feature_blocks, get_backbone
from engine.core.datasets import (ALL_LABELS, SPLIT_SEED, TEST_FRACTION,
                                  adapt_images, get_dataset_info, labels_text, load_dataset,
                                  check_capacity, sample_labels, split_target)
from engine.core.device import autocast_dtype, precision_name
from engine.core.features import cached_features
from engine.core.pretrain import PretrainConfig, PretrainResult
from engine.core.store import ResultStore, records_frame
from engine.core.strategies import get_strategy, strategy_order
from engine.core.train import TrainBudget, accuracy, fit
from engine.experiments import protocol
from engine.experiments.protocol import UNTRAINED_SEED, LocalBackend, Progress, Unit, digest
from engine.experiments.stacked import train_stacked

DEFAULT_LABELS = (1, 2, 5, 10, 20, 50, ALL_LABELS)
MAX_SEEDS = 20
IMAGENET = "imagenet"  # source of an ImageNet backbone: its weights file
UNTRAINED = "untrained"  # source meaning "no pretraining": the backbone keeps its random init
# A random small CNN's features are about a hundred times smaller than a trained one's (mean
# |x| 0.016 on the UCI digits, against 1.9 for the MNIST-pretrained one's): a linear probe on
# them, at the lessons' rate and step
# budget, barely moves its logits and can end at chance (10.0% at 10 labels per class, seed 0),
# an optimisation failure rather than a measure of the features. So the untrained network's
# frozen features are divided by their standard deviation over the training pool (one number,
# no test image in it) before a probe reads them, as one would standardise any input; the
# name is part of the runs' keys, so runs made before the rescaling are never reused.
UNTRAINED_SCALE = "unit-std"


@dataclass(frozen=True)
class SweepSpec:
    source: str = "mnist5k"  # dataset the backbone is pretrained on, or IMAGENET or UNTRAINED
    target: str = "uci_digits"  # dataset the strategies are compared on
    backbone: str = "small_cnn"  # architecture, key in BACKBONES
    strategies: tuple[str, ...] = ("scratch", "probe", "finetune")  # names get_strategy knows
    labels_per_class: tuple[int, ...] = DEFAULT_LABELS  # sizes of the labelled set; 0 = all
    seeds: int = 5  # runs per point, seeds 0 .. seeds-1 (label draw, init, batch order); 5 so the
    # rule (no call under 3, Holm over the 7 default sizes) can call the default lesson's head start
    budget: TrainBudget = field(default_factory=TrainBudget)  # optimisation settings per run
    pretrain_epochs: int = 8  # passes over the source when pretraining the backbone
    # side of the square images an ImageNet backbone sees (IMAGENET_SIZES; 224 is native); the
    # small CNN always reads 28 x 28. Left out of keys at its default, so older keys stand.
    input_size: int = IMAGENET_INPUT

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
        check_input_size(self.input_size)
        if self.input_size != IMAGENET_INPUT and not info.imagenet:
            raise ValueError(f"{self.backbone} reads 28 x 28 images; only ImageNet backbones take "
                             "another input size")
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
        if self.source == UNTRAINED:  # its probes read features rescaled (`UNTRAINED_SCALE`)
            return f"{UNTRAINED}:{UNTRAINED_SEED}:{UNTRAINED_SCALE}"
        return self.pretrain_config().key()

    def key(self) -> str:
        """Hash of the whole spec: identifies an experiment (for jobs, URLs and packs)."""
        return digest(sized(asdict(self), self.input_size))

    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the backbone's features read (an ImageNet one resizes to this)."""
        shape = get_backbone(self.backbone).input_shape
        return (shape[0], self.input_size, self.input_size) if get_backbone(self.backbone).imagenet else shape

    def needs_pretraining(self) -> bool:
        """True when some strategy starts from weights the engine must pretrain (or load)."""
        return self.engine_pretrains() and any(get_strategy(s).uses_pretrained
                                               for s in self.strategies)

    def check_target_capacity(self) -> None:
        """Raise DatasetError when a labels-per-class value exceeds what the target holds."""
        check_capacity(self.target, self.labels_per_class)

    # the experiment protocol (engine.experiments.protocol)

    def check(self) -> None:
        self.check_target_capacity()

    def units(self) -> list[Unit]:
        return [Unit(plan.run_key, plan_label(plan), plan) for plan in plan_runs(self)]

    def pretraining(self) -> Optional[PretrainConfig]:
        return self.pretrain_config() if self.needs_pretraining() else None

    def workbench(self, device: torch.device, pretrained: Optional[PretrainResult]) -> "SweepContext":
        return SweepContext(self, device, pretrained)

    def finished_text(self, unit: Unit, record: dict) -> str:
        return f"{unit.label}: {record['test_accuracy']:.1f}%"


def sized(payload: dict, input_size: int) -> dict:
    """`payload` with the input size in it only when it is not the default (keys made before
    the size was a setting stay the same)."""
    payload = {k: v for k, v in payload.items() if k != "input_size"}
    return payload if input_size == IMAGENET_INPUT else dict(payload, input_size=input_size)


@dataclass(frozen=True)
class RunPlan:
    strategy: str
    labels_per_class: int  # as requested; ALL_LABELS (0) means the whole pool
    seed: int
    run_key: str  # hash of everything that determines this run's numbers


def plan_runs(spec: SweepSpec) -> list[RunPlan]:
    """All runs of a spec, seed-major so every curve gains a point early in a sweep."""
    common = sized({
        "backbone": spec.backbone, "source": spec.source, "target": spec.target,
        "pretrain": spec.source_key(), "budget": asdict(spec.budget),
        "split": [SPLIT_SEED, TEST_FRACTION], "engine": ENGINE_VERSION,
    }, spec.input_size)
    return [
        RunPlan(s, k, seed, digest(dict(common, strategy=s, labels_per_class=k, seed=seed)))
        for seed in range(spec.seeds) for k in spec.labels_per_class for s in spec.strategies
    ]


def plan_label(plan: RunPlan) -> str:
    """'probe, 5 labels/class, seed 1': a run as progress lines and failure messages name it."""
    return f"{plan.strategy}, {labels_text(plan.labels_per_class)} labels/class, seed {plan.seed}"


@dataclass(frozen=True)
class SweepResult:
    records: pd.DataFrame  # every run of the spec that the store holds, new and old
    trained: int  # runs trained by this call
    reused: int  # runs found in the store
    cancelled: bool
    pretrain: Optional[PretrainResult]


@dataclass(frozen=True)
class PreparedRun:
    """One run of a sweep ready to train (`SweepContext.prepare`)."""

    idx: torch.Tensor  # (n,) the run's labelled examples, indices into the target
    groups: list  # the optimizer's parameter groups, as the strategy chose them
    trained: nn.Module  # what trains: the model, its head alone, or the blocks above a frozen prefix
    evaluated: nn.Module  # what the test set goes through (reads `inputs` like `trained`)
    inputs: torch.Tensor  # (N, ...) what `trained` reads for every target image
    steps: int  # optimizer steps the budget gives this labelled-set size
    schedule: Optional[Callable[[int, int], None]]  # the strategy's before_step hook, if any
    start: float  # time.perf_counter() when preparation began (the record's train_seconds)


class SweepContext:
    """A sweep's workbench: everything its runs share (the target on the device, its split, the
    pretrained weights and, for frozen-feature strategies, the features computed once), and
    `train`, which trains one run. Runs may train side by side (`concurrency` None)."""

    concurrency = None  # any number of runs may train at once: each has its own model and generator

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
        self._features: dict[str, torch.Tensor] = {}  # frozen features by strategy view
        # the driver's progress line (`LocalBackend` sets it): the feature pass reports on it
        self.say: Optional[Callable[[str], None]] = None
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
        size = self.spec.input_size
        if strategy.uses_pretrained and self.spec.source == IMAGENET:
            model = info.build_imagenet(self.data.n_classes, size)  # the head is drawn from `seed`
        elif strategy.uses_pretrained and self.spec.source == UNTRAINED:
            torch.manual_seed(UNTRAINED_SEED)  # one fixed random backbone for every run
            model = info.build(self.data.n_classes, size)
            torch.manual_seed(seed)
            model.replace_head(self.data.n_classes)
        elif strategy.uses_pretrained:
            model = info.build(load_dataset(self.spec.source).n_classes)
            model.load_state_dict(self.pretrained_state)
            model.replace_head(self.data.n_classes)  # the new head is drawn from `seed`
        else:
            model = info.build(self.data.n_classes, size)
        return model

    def _feature_progress(self) -> Optional[Callable[[int, int], None]]:
        """What the feature pass says as it goes: its stage, images done of all (at most about
        every tenth of the pass, so a long pass is seen moving without flooding the job)."""
        say = self.say
        if say is None:
            return None
        backbone, said = get_backbone(self.spec.backbone).title, [-1]

        def on_batch(done: int, total: int) -> None:
            tenth = done * 10 // total
            if tenth != said[0]:
                said[0] = tenth
                say(f"Feature extraction: {done:,} of {total:,} target images through "
                    f"{backbone} (once; kept on disk for every later run)")
        return on_batch

    def features(self, strategy_name: str = "probe") -> torch.Tensor:
        """Frozen features of every target image that `strategy_name`'s head reads, (N, D),
        computed once per sweep for each view (`Strategy.features_view`)."""
        view = get_strategy(strategy_name).features_view()
        if view not in self._features:
            name = strategy_name if view else "probe"
            if self.spec.source == IMAGENET:  # a big network: its features are kept on disk
                prep = {"input": self.spec.input_shape(), **({"view": view} if view else {})}
                features, _ = cached_features(
                    lambda: self.prepared_model(name, 0)[0].features, f"{self.spec.backbone}@"
                    f"{self.spec.source_key()}", self.data.x, prep, self.device,
                    self._feature_progress())
                self._features[view] = features.to(self.device)
            else:
                model = self.prepared_model(name, 0)[0]
                features = self._over_all_images(model.features, autocast=False)  # (N, D)
                if self.spec.source == UNTRAINED:
                    pool = torch.as_tensor(self.split.pool_idx, device=features.device)
                    features = features / features[pool].std().clamp_min(1e-12)
                self._features[view] = features
        return self._features[view]

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

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        """Seed after seed; with several workers, the longest runs of a seed first."""
        for name in dict.fromkeys(u.spec.strategy for u in todo):
            if get_strategy(name).frozen_features:
                self.features(name)  # once per view, before the runs that share it start
        if workers <= 1:
            return todo
        by_plan = {u.spec: u for u in todo}
        return [by_plan[p] for p in self.longest_first_by_seed(list(by_plan))]

    def train(self, unit: Unit, should_stop: Callable[[], bool], say=None) -> Optional[dict]:
        return self.run(unit.spec, should_stop)

    def train_stacked(self, todo: list[Unit], should_stop: Callable[[], bool], say=None):
        """On a GPU (the driver's `LocalBackend` calls it there): runs that share an architecture
        train as one stacked model (`engine.experiments.stacked`), the others one by one."""
        return train_stacked(self, todo, should_stop, say or (lambda message: None))

    def run(self, plan: RunPlan, should_stop: Optional[Callable[[], bool]] = None) -> Optional[dict]:
        """Train and evaluate one run; None when cancelled part-way."""
        run = self.prepare(plan)
        stats = fit(run.trained, run.groups, run.inputs[run.idx], self.y[run.idx], steps=run.steps,
                    batch_size=self.spec.budget.batch_size, seed=plan.seed,
                    should_stop=should_stop, before_step=run.schedule)
        return None if stats.stopped else self.finish(plan, run, stats.steps)

    def prepare(self, plan: RunPlan) -> PreparedRun:
        """One run ready to train: its labelled examples, model, groups and step count."""
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
            inputs, trained, evaluated = self.features(plan.strategy), model.head, model.head
        elif frozen:  # the same for the frozen first blocks: their outputs are computed once
            inputs = self.block_outputs(model, frozen)
            trained = evaluated = nn.Sequential(*list(model.features)[frozen:], model.head)
        else:
            inputs, trained, evaluated = self.x, model, model
        return PreparedRun(idx=idx, groups=groups, trained=trained, evaluated=evaluated,
                           inputs=inputs, steps=steps, schedule=schedule, start=start)

    def finish(self, plan: RunPlan, run: PreparedRun, steps: int) -> dict:
        """A trained run's record: its test accuracy and what it was."""
        idx, start = run.idx, run.start
        test_acc = accuracy(run.evaluated, run.inputs[self.test_idx], self.y[self.test_idx])
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
            "steps": steps,
            "lr": self.spec.budget.lr,
            "backbone_lr": self.spec.budget.lr * self.spec.budget.backbone_lr_mult,
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
    """The spec's runs that the store already holds (no training), each saying what it was
    trained with beside its strategy: `lr` (the head's) and `backbone_lr` (the pretrained
    layers'), from the spec whose run keys found them (runs stored before records held them
    included), so two sweeps that differ only in learning rate never read as one."""
    records = records_frame(store.get_many(p.run_key for p in plan_runs(spec)))
    budget = spec.budget
    return records.assign(lr=budget.lr, backbone_lr=budget.lr * budget.backbone_lr_mult)


def run_sweep(spec: SweepSpec, store: Optional[ResultStore] = None, *,
              device: Optional[torch.device] = None,
              on_progress: Optional[Callable[[Progress], None]] = None,
              should_stop: Optional[Callable[[], bool]] = None,
              concurrency: Optional[int] = None) -> SweepResult:
    """Train every run of `spec` the store lacks, persisting each as it finishes, in this process.

    `concurrency` runs train at once (`engine.core.parallel`; default: one per CPU thread, a few
    per GPU); each run's numbers are the same whatever it is."""
    store = store or ResultStore()
    outcome = protocol.run_experiment(spec, store, device=device, on_progress=on_progress,
                             should_stop=should_stop, backend=LocalBackend(concurrency))
    return sweep_result(spec, store, outcome)


def sweep_result(spec: SweepSpec, store: ResultStore, outcome) -> SweepResult:
    """The driver's outcome of a sweep with the records the store now holds."""
    return SweepResult(records=stored_records(spec, store), trained=outcome.trained,
                       reused=outcome.reused, cancelled=outcome.cancelled, pretrain=outcome.pretrained)


@dataclass(frozen=True)
class SweepGroup:
    """Several sweeps run one after another as one job (one worker, one progress bar), e.g.
    one sweep per severity of a domain shift. The driver runs its `parts()` in order."""

    specs: tuple[SweepSpec, ...]  # in the order they run

    def __post_init__(self):
        object.__setattr__(self, "specs", tuple(self.specs))
        if not self.specs or not all(isinstance(s, SweepSpec) for s in self.specs):
            raise ValueError("a sweep group needs at least one SweepSpec")

    def key(self) -> str:
        return hashlib.sha256(" ".join(s.key() for s in self.specs).encode()).hexdigest()[:20]

    def check(self) -> None:
        for spec in self.specs:
            spec.check_target_capacity()

    def parts(self) -> tuple[SweepSpec, ...]:
        return self.specs
