"""Catastrophic forgetting: fine-tune on the target while measuring the source task.

The pretrained network keeps its source head (frozen) beside the target's new head, so after
every epoch of fine-tuning both tasks can be scored on held-out images: the source on the part
of the source the pretraining never trained on, the target on its fixed test split. Each *arm*
fine-tunes the same starting point in one way:

- `finetune`: every layer at the full learning rate (the plain recipe, and the one that forgets);
- `low_lr`: the pretrained layers at a fraction of it;
- `freeze`: the first blocks frozen;
- `ewc`: elastic weight consolidation, a penalty (lambda / 2) * sum_i F_i (theta_i - theta*_i)^2
  that holds each weight near its pretrained value theta*_i in proportion to its diagonal Fisher
  information F_i on the source task;
- `replay`: source images mixed into every batch, scored through the source head.

Every arm runs through `engine.core.train.fit` (EWC and replay through its `loss_fn` hook, the epoch
scores through `on_step`). A `ForgettingConfig` follows the experiment protocol
(`engine.experiments.protocol`): its units are its arms, run by the one driver, each stored in the
result store the moment it finishes under a key of everything that determines its numbers, so
changing lambda retrains only the EWC arm.

Not here: drawing (the page's business) and the generic training loop (`engine.core.train`).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from engine import ENGINE_VERSION
from engine.core.backbones import Classifier, count_parameters, get_backbone
from engine.core.datasets import (ALL_LABELS, SPLIT_SEED, TEST_FRACTION, adapt_images,
                             check_capacity, get_dataset_info, load_dataset, sample_labels,
                             split_target)
from engine.core.device import precision_name
from engine.core.pretrain import PretrainConfig, PretrainResult
from engine.core.store import ResultStore
from engine.core.train import accuracy, fit
from engine.experiments import protocol
from engine.experiments.protocol import Progress, Unit, digest, stored_units

ARMS = ("finetune", "low_lr", "freeze", "ewc", "replay")
ARM_LABELS = {
    "finetune": "Plain fine-tune",
    "low_lr": "Lower learning rate",
    "freeze": "Early layers frozen",
    "ewc": "EWC",
    "replay": "Replay",
}
KEY_PREFIX = "forgetting:"  # result-store keys of forgetting arms


def _positive_finite(name: str, value) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                       and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _positive_int(name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")


# ---- the two mitigations that change the loss ------------------------------------------------

def fisher_diagonal(model: nn.Module, x: torch.Tensor, *, seed: int = 0,
                    batch_size: int = 100) -> dict[str, torch.Tensor]:
    """Diagonal of the Fisher information of `model`'s predictive distribution on inputs x (N, ...):

        F_i = E_x E_{c ~ p(c | x)} [ (d log p(c | x) / d theta_i)^2 ]

    estimated with one class c_n per image drawn from the model's own prediction p(. | x_n)
    (seeded, so the estimate is reproducible): the Fisher of the model, not of the dataset's
    labels. Per-example gradients come from `torch.func` (vmap of grad), in float32. Returns one
    tensor per trainable parameter name, shaped like the parameter."""
    from torch.func import functional_call, grad, vmap

    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    was_training = model.training
    model.eval()

    def log_prob(trainable, xi, onehot):  # xi (...), onehot (n_classes,)
        out = functional_call(model, ({**params, **trainable}, buffers), (xi.unsqueeze(0),))
        return (F.log_softmax(out.float(), dim=-1)[0] * onehot).sum()

    per_example = vmap(grad(log_prob), in_dims=(None, 0, 0))
    trainable = {n: params[n] for n in names}
    fisher = {n: torch.zeros_like(params[n]) for n in names}
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]  # (B, ...)
        with torch.no_grad():
            probs = F.softmax(model(xb).float(), dim=-1)  # (B, n_classes)
        drawn = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(1)  # (B,)
        onehot = F.one_hot(drawn, probs.shape[1]).to(probs)  # (B, n_classes)
        grads = per_example(trainable, xb, onehot)
        for n in names:
            fisher[n] += grads[n].pow(2).sum(0)  # (B, *shape) -> shape
    model.train(was_training)
    return {n: f / x.shape[0] for n, f in fisher.items()}


def ewc_penalty(model: nn.Module, fisher: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor],
                lam: float) -> torch.Tensor:
    """(lam / 2) * sum_i F_i (theta_i - theta*_i)^2 over the parameters named in `fisher`;
    zero at the anchor (the pretrained weights theta*)."""
    params = dict(model.named_parameters())
    total = torch.zeros((), device=next(iter(params.values())).device)
    for name, f in fisher.items():
        total = total + (f * (params[name].float() - anchor[name]).pow(2)).sum()
    return 0.5 * lam * total


def replay_count(batch_size: int, fraction: float) -> int:
    """Source examples added to a batch of `batch_size` target examples, so that they make up
    `fraction` of the mixed batch (to the nearest whole example)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"the replay fraction must lie in [0, 1), got {fraction!r}")
    return int(round(fraction * batch_size / (1.0 - fraction)))


class ReplayMixer:
    """Draws source examples to mix into target batches: a seeded walk through a permutation
    of the source set, epoch after epoch, like `fit`'s own batching."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int):
        self.x, self.y, self.fraction = x, y, fraction  # (M, ...), (M,)
        self._gen = torch.Generator().manual_seed(seed + 7717)
        self._order, self._pos = torch.randperm(len(y), generator=self._gen), 0

    def draw(self, target_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = min(replay_count(target_batch, self.fraction), len(self.y))
        if self._pos + k > len(self.y):
            self._order, self._pos = torch.randperm(len(self.y), generator=self._gen), 0
        idx = self._order[self._pos:self._pos + k].to(self.x.device)
        self._pos += k
        return self.x[idx], self.y[idx]


# ---- the model: pretrained features, the target's new head, the source's head kept ------------

class TwoHeads(nn.Module):
    """forward(x) gives the target's logits; `source_logits(x)` the pretrained source head's."""

    def __init__(self, classifier: Classifier, source_head: nn.Linear):
        super().__init__()
        self.features = classifier.features
        self.head = classifier.head  # the target's new head
        self.source_head = source_head  # the pretrained head, frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.source_head(self.features(x))


class SourceView(nn.Module):
    """The source task as a classifier: shared features, then the kept source head."""

    def __init__(self, model: TwoHeads):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.source_logits(x)


# ---- the experiment -------------------------------------------------------------------------

@dataclass(frozen=True)
class ForgettingConfig:
    source: str = "mnist5k"  # the task pretrained on, whose accuracy is watched
    target: str = "uci_digits"  # the task fine-tuned on
    backbone: str = "small_cnn"  # an engine-pretrained backbone (not an ImageNet one)
    labels_per_class: int = ALL_LABELS  # target labels per class to fine-tune on; 0 = all
    epochs: int = 8  # passes over the target's labelled set; both tasks scored after each
    batch_size: int = 64  # target examples per step
    lr: float = 3e-3  # Adam learning rate of the new head, and of every layer in plain fine-tuning
    low_lr_mult: float = 0.1  # `low_lr` arm: pretrained layers train at lr * this
    freeze_blocks: int = 2  # `freeze` arm: the first this many blocks of the backbone stay fixed
    ewc_lambda: float = 1000.0  # `ewc` arm: strength lambda of the pull towards the pretrained weights
    fisher_samples: int = 500  # source training images the Fisher information is estimated on
    replay_fraction: float = 0.25  # `replay` arm: share of each batch that is source images
    seed: int = 0  # target label draw, the new head, batch order, replay draws
    pretrain_epochs: int = 8  # passes over the source when pretraining the backbone
    arms: tuple[str, ...] = ARMS  # which arms to run, in ARMS order

    def __post_init__(self):
        info = get_backbone(self.backbone)
        if info.imagenet:
            raise ValueError(f"{self.backbone} is an ImageNet backbone; forgetting is measured "
                             "on a backbone the engine pretrains on a source dataset")
        get_dataset_info(self.source)
        get_dataset_info(self.target)
        if isinstance(self.labels_per_class, bool) or not isinstance(self.labels_per_class, int) \
                or self.labels_per_class < 0:
            raise ValueError(f"labels per class must be a positive integer or 0 (all), got "
                             f"{self.labels_per_class!r}")
        for name in ("epochs", "batch_size", "fisher_samples", "pretrain_epochs"):
            _positive_int(name, getattr(self, name))
        _positive_int("seed", self.seed, low=0)
        for name in ("lr", "low_lr_mult"):
            _positive_finite(name, getattr(self, name))
        n_blocks = len(info.build_features())
        if isinstance(self.freeze_blocks, bool) or not isinstance(self.freeze_blocks, int) \
                or not 1 <= self.freeze_blocks < n_blocks:
            raise ValueError(f"freeze_blocks must be an integer from 1 to {n_blocks - 1} (the "
                             f"backbone has {n_blocks} blocks), got {self.freeze_blocks!r}")
        if isinstance(self.ewc_lambda, bool) or not (isinstance(self.ewc_lambda, (int, float))
                                                     and math.isfinite(self.ewc_lambda)
                                                     and self.ewc_lambda >= 0):
            raise ValueError(f"the EWC lambda must be a finite number >= 0, got {self.ewc_lambda!r}")
        if isinstance(self.replay_fraction, bool) or not (
                isinstance(self.replay_fraction, (int, float)) and 0 <= self.replay_fraction < 1):
            raise ValueError(f"the replay fraction must lie in [0, 1), got {self.replay_fraction!r}")
        arms = tuple(dict.fromkeys(self.arms))
        unknown = [a for a in arms if a not in ARMS]
        if unknown or not arms:
            raise ValueError(f"arms must be some of {', '.join(ARMS)}, got {self.arms!r}")
        object.__setattr__(self, "arms", tuple(a for a in ARMS if a in arms))
        object.__setattr__(self, "ewc_lambda", float(self.ewc_lambda))
        object.__setattr__(self, "replay_fraction", float(self.replay_fraction))

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(backbone=self.backbone, source=self.source, epochs=self.pretrain_epochs)

    def key(self) -> str:
        """Identifies the whole experiment (the job); each arm has its own `arm_key`."""
        return "forgetting-" + digest(asdict(self))

    def arm_settings(self, arm: str) -> dict:
        """The settings only `arm` depends on."""
        return {"finetune": {}, "low_lr": {"low_lr_mult": self.low_lr_mult},
                "freeze": {"freeze_blocks": self.freeze_blocks},
                "ewc": {"ewc_lambda": self.ewc_lambda, "fisher_samples": self.fisher_samples},
                "replay": {"replay_fraction": self.replay_fraction}}[arm]

    def arm_key(self, arm: str) -> str:
        common = {"source": self.source, "target": self.target, "backbone": self.backbone,
                  "pretrain": self.pretrain_config().key(), "labels_per_class": self.labels_per_class,
                  "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                  "seed": self.seed, "split": [SPLIT_SEED, TEST_FRACTION], "engine": ENGINE_VERSION}
        return KEY_PREFIX + digest(dict(common, arm=arm, **self.arm_settings(arm)))

    # the experiment protocol (engine.experiments.protocol)

    def check(self) -> None:
        check_capacity(self.target, (self.labels_per_class,))

    def units(self) -> list[Unit]:
        return [Unit(self.arm_key(arm), ARM_LABELS[arm], arm) for arm in self.arms]

    def pretraining(self) -> PretrainConfig:
        return self.pretrain_config()

    def workbench(self, device: torch.device, pretrained: PretrainResult) -> "_Setup":
        return _Setup(self, pretrained, device)

    def finished_text(self, unit: Unit, record: dict) -> str:
        return (f"{unit.label}: source {record['source_before']:.1f}% -> {record['source_after']:.1f}%, "
                f"target {record['target_after']:.1f}%")


@dataclass(frozen=True)
class ForgettingResult:
    records: dict[str, dict]  # arm -> its stored record (every arm the store holds)
    trained: int  # arms trained by this call
    cancelled: bool


def stored_arms(config: ForgettingConfig, store: ResultStore) -> dict[str, dict]:
    """The config's arms that the store holds, arm -> record, in ARMS order."""
    found = stored_units(config, store)
    return {u.spec: found[u.key] for u in config.units() if u.key in found}


MAX_SEEDS = 5  # the most seeds a forgetting experiment runs


@dataclass(frozen=True)
class ForgettingSeeds:
    """The forgetting experiment at several seeds (config.seed, config.seed + 1, ...), run as
    one job: each seed draws its own target labels, new head and batch order, and every arm of
    one seed starts from the same draw, so the arms compare seed by seed."""

    config: ForgettingConfig  # the experiment at its first seed
    seeds: int = 3  # how many seeds, from config.seed up

    def __post_init__(self):
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) \
                or not 1 <= self.seeds <= MAX_SEEDS:
            raise ValueError(f"seeds must be a whole number from 1 to {MAX_SEEDS}, got {self.seeds!r}")

    def key(self) -> str:
        return "forgetting-seeds-" + digest({"config": asdict(self.config), "seeds": self.seeds})

    def check(self) -> None:
        self.config.check()

    def parts(self) -> tuple[ForgettingConfig, ...]:
        return tuple(replace(self.config, seed=self.config.seed + i) for i in range(self.seeds))


def stored_seeds(group: ForgettingSeeds, store: ResultStore) -> dict[str, list[dict]]:
    """arm -> its stored records, one per seed that has it (each with its `seed`), in ARMS
    order; arms with no stored seed left out."""
    out: dict[str, list[dict]] = {}
    for part in group.parts():
        for arm, record in stored_arms(part, store).items():
            out.setdefault(arm, []).append(dict(record, seed=part.seed))
    return out


class _Setup:
    """The experiment's workbench: what every arm shares (the pretrained weights, both tasks'
    images on the device, the Fisher information once computed) and `train`, one arm at a time."""

    concurrency = 1  # arms share the Fisher cache and the replay source: one at a time

    def __init__(self, config: ForgettingConfig, pretrained: PretrainResult, device: torch.device):
        self.config, self.device = config, device
        self.state = pretrained.load_state_dict()
        self.source_accuracy_at_pretraining = pretrained.source_accuracy
        info = get_backbone(config.backbone)
        self.info = info
        source = load_dataset(config.source)
        # the pretraining's own split: its pool trained the backbone, its held-out part did not
        source_split = split_target(source.y, test_fraction=pretrained.config.holdout_fraction)
        xs = adapt_images(source.x, info.input_shape)  # (M, C, H, W)
        self.source_classes = source.n_classes
        self.xs_test = xs[source_split.test_idx].to(device)
        self.ys_test = source.y[source_split.test_idx].to(device)
        pool = torch.as_tensor(source_split.pool_idx)
        self.xs_pool, self.ys_pool = xs[pool].to(device), source.y[pool].to(device)
        target = load_dataset(config.target)
        split = split_target(target.y)
        xt = adapt_images(target.x, info.input_shape)
        idx = torch.as_tensor(sample_labels(target.y, split, config.labels_per_class, config.seed))
        self.target_classes = target.n_classes
        self.xt_train, self.yt_train = xt[idx].to(device), target.y[idx].to(device)
        self.xt_test = xt[split.test_idx].to(device)
        self.yt_test = target.y[split.test_idx].to(device)
        self._fisher: Optional[dict] = None

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        return todo

    def train(self, unit: Unit, should_stop: Callable[[], bool], say: Callable[[str], None]) -> Optional[dict]:
        def on_epoch(epoch: int, epochs: int) -> None:
            say(f"{unit.label}: epoch {epoch} of {epochs}")
        return train_arm(self, unit.spec, should_stop, on_epoch)

    def model(self) -> TwoHeads:
        """The pretrained network with its source head kept and a new target head (from seed)."""
        torch.manual_seed(self.config.seed)
        classifier = self.info.build(self.source_classes)
        classifier.load_state_dict(self.state)
        source_head = copy.deepcopy(classifier.head)
        for p in source_head.parameters():
            p.requires_grad_(False)
        classifier.replace_head(self.target_classes)  # drawn from the seed
        return TwoHeads(classifier, source_head).to(self.device)

    def fisher(self) -> dict[str, torch.Tensor]:
        """Diagonal Fisher of the source task, on the first `fisher_samples` images of a seeded
        shuffle of the source's training pool; computed once per experiment."""
        if self._fisher is None:
            source_model = SourceView(self.model())
            for p in source_model.model.head.parameters():
                p.requires_grad_(False)
            gen = torch.Generator().manual_seed(SPLIT_SEED)
            pick = torch.randperm(len(self.ys_pool), generator=gen)[:self.config.fisher_samples]
            fisher = fisher_diagonal(source_model, self.xs_pool[pick.to(self.device)],
                                     seed=self.config.seed)
            prefix = "model.features."  # only the shared layers can be held; the heads are separate
            self._fisher = {n[len("model."):]: f for n, f in fisher.items() if n.startswith(prefix)}
        return self._fisher


def _param_groups(model: TwoHeads, config: ForgettingConfig, arm: str) -> list[dict]:
    for p in model.parameters():
        p.requires_grad_(True)
    for p in model.source_head.parameters():
        p.requires_grad_(False)
    feature_lr = config.lr * (config.low_lr_mult if arm == "low_lr" else 1.0)
    if arm == "freeze":
        for block in list(model.features)[:config.freeze_blocks]:
            for p in block.parameters():
                p.requires_grad_(False)
    features = [p for p in model.features.parameters() if p.requires_grad]
    return [{"params": features, "lr": feature_lr, "name": "pretrained layers"},
            {"params": list(model.head.parameters()), "lr": config.lr, "name": "target head"}]


def _loss_fn(setup: _Setup, arm: str, model: TwoHeads):
    """`fit`'s loss for an arm: cross-entropy on the target batch, plus the EWC penalty, or over
    the batch with source images mixed in (those scored by the source head)."""
    config = setup.config
    if arm == "ewc":
        fisher = setup.fisher()
        anchor = {n: p.detach().float().clone() for n, p in model.named_parameters() if n in fisher}

        def loss(m, xb, yb, step):
            return F.cross_entropy(m(xb).float(), yb) + ewc_penalty(m, fisher, anchor, config.ewc_lambda)
        return loss
    if arm == "replay" and config.replay_fraction > 0:
        mixer = ReplayMixer(setup.xs_pool, setup.ys_pool, config.replay_fraction, config.seed)

        def loss(m, xb, yb, step):
            xs, ys = mixer.draw(xb.shape[0])
            z = m.features(torch.cat([xb, xs]))  # (B + k, D): one pass over the mixed batch
            b = xb.shape[0]
            total = (F.cross_entropy(m.head(z[:b]).float(), yb, reduction="sum")
                     + F.cross_entropy(m.source_head(z[b:]).float(), ys, reduction="sum"))
            return total / z.shape[0]
        return loss
    return None


def train_arm(setup: _Setup, arm: str, should_stop: Optional[Callable[[], bool]] = None,
              on_epoch: Optional[Callable[[int, int], None]] = None) -> Optional[dict]:
    """Fine-tune one arm, scoring both tasks before training and after every epoch; None when
    stopped part-way."""
    config, start = setup.config, time.perf_counter()
    model = setup.model()
    groups = _param_groups(model, config, arm)
    n = len(setup.yt_train)
    per_epoch = math.ceil(n / min(config.batch_size, n))
    steps = config.epochs * per_epoch
    source_view = SourceView(model)
    curve = {"epoch": [], "source_accuracy": [], "target_accuracy": []}

    def score(epoch: int) -> None:
        curve["epoch"].append(epoch)
        curve["source_accuracy"].append(round(accuracy(source_view, setup.xs_test, setup.ys_test), 4))
        curve["target_accuracy"].append(round(accuracy(model, setup.xt_test, setup.yt_test), 4))
        model.train()  # `accuracy` left it in eval mode
        if on_epoch is not None:
            on_epoch(epoch, config.epochs)

    score(0)
    loss_fn = _loss_fn(setup, arm, model)  # EWC's Fisher is computed here, once
    stats = fit(model, groups, setup.xt_train, setup.yt_train, steps=steps,
                batch_size=config.batch_size, seed=config.seed, should_stop=should_stop,
                on_step=lambda step, _steps, _loss: score(step // per_epoch) if step % per_epoch == 0
                else None, loss_fn=loss_fn)
    if stats.stopped:
        return None
    trainable = count_parameters(p for g in groups for p in g["params"])[0]
    return {
        "run_key": config.arm_key(arm), "arm": arm, "label": ARM_LABELS[arm],
        "settings": config.arm_settings(arm), **curve,
        "source_before": curve["source_accuracy"][0], "source_after": curve["source_accuracy"][-1],
        "target_after": curve["target_accuracy"][-1],
        "trainable_parameters": trainable, "steps": stats.steps, "n_train": n,
        "n_source_test": len(setup.ys_test), "n_target_test": len(setup.yt_test),
        "train_seconds": round(time.perf_counter() - start, 4),
        "source": config.source, "target": config.target, "backbone": config.backbone,
        "device": setup.device.type, "precision": precision_name(setup.device),
        "code_version": ENGINE_VERSION,
    }


def run_forgetting(config: ForgettingConfig, store: Optional[ResultStore] = None, *,
                   device: Optional[torch.device] = None,
                   on_progress: Optional[Callable[[Progress], None]] = None,
                   should_stop: Optional[Callable[[], bool]] = None) -> ForgettingResult:
    """Train every arm the store lacks, storing each as it finishes (the one driver)."""
    store = store or ResultStore()
    outcome = protocol.run_experiment(config, store, device=device, on_progress=on_progress,
                             should_stop=should_stop)
    return ForgettingResult(records=stored_arms(config, store), trained=outcome.trained,
                            cancelled=outcome.cancelled)
