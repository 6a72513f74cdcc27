"""The LoRA lab's merge check as an experiment: train one LoRA run of the lesson exactly as a
sweep trains it, fold (alpha/r) B A into W, and record how far the outputs moved and what each
part of the model weighs on disk.

`MergeCheckConfig` follows the experiment protocol (`engine.experiments.protocol`): it has one
unit, stored in the result store under a key of everything that determines its numbers (the
sweep run it trains, whose key already hashes the data, the pretrained backbone, the budget and
the engine version), so the job manager runs it like any sweep and the page shows the stored
check. `MergeCheck` reads a stored record back with named fields.

Not here: drawing (the LoRA lab page), the LoRA layers and the merge itself (`engine.core.lora`),
the training loop (`engine.core.train`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Optional

import torch

from engine import ENGINE_VERSION
from engine.core.datasets import sample_labels
from engine.core.lora import LoraError, adapter_tensors, merge_lora, safetensors_bytes
from engine.core.pretrain import PretrainConfig, PretrainResult
from engine.core.store import ResultStore
from engine.core.strategies import get_strategy
from engine.core.train import fit
from engine.experiments.protocol import Say, Unit, digest
from engine.experiments.sweep import RunPlan, SweepContext, SweepSpec, plan_runs

KEY_PREFIX = "lora-merge:"  # result-store keys of merge checks


@dataclass(frozen=True)
class MergeCheck:
    """What one merge check measured (one stored record)."""

    strategy: str  # the LoRA strategy trained, e.g. "lora:r4@conv3+fc"
    labels_per_class: int  # the run's labelled set, as requested
    seed: int  # the run's seed
    accuracy: float  # test accuracy (%) of the trained model, adapter beside W (fp32)
    merged_accuracy: float  # the same after folding (alpha/r) B A into W
    max_abs_diff: float  # the largest |logit difference| between the two over the test images
    test_images: int  # images of the target's test split the outputs were compared on
    lora_bytes: int  # safetensors file of every A and B, fp32
    lora_bytes_fp16: int  # the same file in fp16
    head_bytes: int  # safetensors file of the new head, fp32
    full_bytes: int  # safetensors file of the whole merged model, fp32
    lora_params: int  # numbers in every A and B together
    seconds: float  # wall time of the training and the check

    @classmethod
    def from_record(cls, record: dict) -> "MergeCheck":
        return cls(**{f.name: record[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class MergeCheckConfig:
    strategy: str = "lora:r4"  # a LoRA strategy name: lora:r<rank>, optionally @<layer>+<layer>
    labels_per_class: int = 10  # labelled examples per class of the run (as in the trade-off)
    seed: int = 0  # label draw, adapter initialisation and batch order of the run

    def __post_init__(self):
        if not hasattr(get_strategy(self.strategy), "rank"):  # StrategyError for unknown names
            raise LoraError(f"'{self.strategy}' is not a LoRA strategy")
        for name, low in (("labels_per_class", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")

    def sweep(self) -> SweepSpec:
        """The sweep whose run this check trains (seeds up to this one; the run is the last)."""
        return SweepSpec(strategies=(self.strategy,), labels_per_class=(self.labels_per_class,),
                         seeds=self.seed + 1)

    def plan(self) -> RunPlan:
        return next(p for p in plan_runs(self.sweep()) if p.seed == self.seed)

    def key(self) -> str:
        return "lora-merge-" + digest(asdict(self))

    def unit_key(self) -> str:
        return KEY_PREFIX + digest({"run": self.plan().run_key, "check": "merge",
                                    "engine": ENGINE_VERSION})

    # the experiment protocol (engine.experiments.protocol)

    def check(self) -> None:
        self.sweep().check_target_capacity()

    def units(self) -> list[Unit]:
        return [Unit(self.unit_key(), f"{get_strategy(self.strategy).label}, merged", self.plan())]

    def pretraining(self) -> PretrainConfig:
        return self.sweep().pretrain_config()

    def workbench(self, device: torch.device, pretrained: Optional[PretrainResult]) -> "_MergeBench":
        return _MergeBench(self, device, pretrained)

    def finished_text(self, unit: Unit, record: dict) -> str:
        return (f"{unit.label}: largest output difference {record['max_abs_diff']:.2e}, "
                f"accuracy {record['accuracy']:.1f}% -> {record['merged_accuracy']:.1f}%")


def stored_check(config: MergeCheckConfig, store: ResultStore) -> Optional[MergeCheck]:
    """The stored check of `config`, or None (no training)."""
    found = store.get_many([config.unit_key()])
    return MergeCheck.from_record(found[0]) if found else None


def _percent(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean().item() * 100.0)


class _MergeBench:
    """The check's workbench: the sweep's own (data, pretrained weights, model preparation), so
    the run trains exactly as the sweep's run of the same key."""

    concurrency = 1  # one unit

    def __init__(self, config: MergeCheckConfig, device: torch.device,
                 pretrained: Optional[PretrainResult]):
        self.config, self.device = config, device
        self.ctx = SweepContext(config.sweep(), device, pretrained)

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        return todo

    def train(self, unit: Unit, should_stop: Callable[[], bool], say: Say) -> Optional[dict]:
        start, ctx, plan = time.perf_counter(), self.ctx, unit.spec
        idx = torch.as_tensor(sample_labels(ctx.data.y, ctx.split, plan.labels_per_class, plan.seed),
                              device=self.device)
        model, groups = ctx.prepared_model(plan.strategy, plan.seed)  # as the sweep builds a run's
        budget = ctx.spec.budget
        steps = budget.steps_for(len(idx))
        say(f"{unit.label}: training {steps} steps")
        stats = fit(model, groups, ctx.x[idx], ctx.y[idx], steps=steps, batch_size=budget.batch_size,
                    seed=plan.seed, should_stop=should_stop,
                    before_step=get_strategy(plan.strategy).schedule(
                        model, steps, budget.steps_per_epoch(len(idx))))
        if stats.stopped:
            return None
        check = measure_merge(model, ctx.x[ctx.test_idx], ctx.y[ctx.test_idx], self.config,
                              time.perf_counter() - start)
        return dict(asdict(check), run_key=unit.key, device=self.device.type,
                    code_version=ENGINE_VERSION)


def measure_merge(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                  config: MergeCheckConfig, seconds: float) -> MergeCheck:
    """Merge a trained LoRA model and compare its outputs on x (N, C, H, W) with the unmerged
    model's; the sizes of the adapter, the head and the merged model as safetensors files."""
    merged = merge_lora(model).eval()
    model.eval()
    with torch.no_grad():  # float32, no autocast: the difference is the merge's alone
        before, after = model(x), merged(x)  # (N, n_classes) logits
    lora = adapter_tensors(model)
    return MergeCheck(
        strategy=config.strategy, labels_per_class=config.labels_per_class, seed=config.seed,
        accuracy=_percent(before, y), merged_accuracy=_percent(after, y),
        max_abs_diff=(before - after).abs().max().item(), test_images=len(y),
        lora_bytes=safetensors_bytes(lora), lora_bytes_fp16=safetensors_bytes(lora, torch.float16),
        head_bytes=safetensors_bytes(dict(merged.head.state_dict())),
        full_bytes=safetensors_bytes(dict(merged.state_dict())),
        lora_params=sum(t.numel() for t in lora.values()), seconds=round(seconds, 4))
