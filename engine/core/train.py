"""The one training core every strategy shares, and evaluation.

`fit` trains whatever parameters a strategy left trainable, with the parameter groups it chose,
on tensors already resident on the device, for a fixed number of steps, in bfloat16 autocast
where the hardware computes it natively (`engine.core.device.autocast_dtype`). It reports through an
optional `on_step(step, steps, loss)` callback and stops early when `should_stop()` is true; it
knows nothing about pages, stores or sweeps.

Two hooks let other lessons reuse this one loop instead of writing their own:
- `before_step(step, steps)` runs before each step: a schedule that changes which parameters
  train (gradual unfreezing, LP-FT) sets `requires_grad` there; Adam skips a parameter whose
  gradient is None, so a frozen parameter stays bit-identical.
- `loss_fn(model, xb, yb, step)` replaces the default `cross_entropy(model(xb), yb)`: a penalty
  (EWC) or extra examples (replay) are added there. It runs inside the autocast region.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.device import autocast_dtype


@dataclass(frozen=True)
class TrainBudget:
    lr: float = 3e-3  # Adam learning rate of the head (and of every layer when training from scratch)
    backbone_lr_mult: float = 0.1  # fine-tuning: pretrained layers train at lr * this
    batch_size: int = 64  # examples per step (the whole labelled set when it is smaller)
    epochs: int = 30  # passes over the labelled set, before clipping to [min_steps, max_steps]
    min_steps: int = 60  # tiny labelled sets still get this many steps
    max_steps: int = 150  # large labelled sets stop here, so a sweep's cost stays bounded

    def __post_init__(self):
        for name in ("lr", "backbone_lr_mult"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("batch_size", "epochs", "min_steps", "max_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.min_steps > self.max_steps:
            raise ValueError("min_steps must not exceed max_steps")

    def steps_per_epoch(self, n_train: int) -> int:
        return math.ceil(n_train / min(self.batch_size, n_train))

    def steps_for(self, n_train: int) -> int:
        return max(self.min_steps, min(self.max_steps, self.epochs * self.steps_per_epoch(n_train)))


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """(steps, B) indices of each step's minibatch, B = min(batch_size, n): a random permutation
    of the n examples from `seed`, walked B at a time, and a fresh one (same generator) whenever
    fewer than B examples are left in it."""
    bs = min(batch_size, n)
    per_permutation = n // bs
    gen = torch.Generator().manual_seed(seed)
    permutations = [torch.randperm(n, generator=gen)[:per_permutation * bs]
                    for _ in range(max(1, math.ceil(steps / per_permutation)))]
    return torch.cat(permutations).view(-1, bs)[:steps]


BETAS, EPS = (0.9, 0.999), 1e-8  # Adam's, as torch.optim.Adam's defaults


def adam_step(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
              avgs: Sequence[torch.Tensor], sqs: Sequence[torch.Tensor],
              steps: Sequence[torch.Tensor], lr: float) -> None:
    """The one Adam step of the project, in place: PyTorch's fused kernel (what
    `torch.optim.Adam(fused=True)` runs: betas 0.9 and 0.999, eps 1e-8, no weight decay, bias
    corrections computed from each tensor's step count), at one rate, on tensors of one device
    and dtype. `steps` holds each tensor's step count (a 0-dim float32 tensor on the device,
    already counting this step; tensors may share one); the kernel only reads it, so nothing
    waits for the device and a CUDA graph can capture the call. `Adam` steps a model with it,
    `engine.core.batched.StackedAdam` a stack of runs."""
    torch._fused_adam_(list(params), list(grads), list(avgs), list(sqs), [], list(steps),
                       amsgrad=False, lr=lr, beta1=BETAS[0], beta2=BETAS[1], weight_decay=0.0,
                       eps=EPS, maximize=False)


class Adam:
    """Adam over parameter groups (each a dict with "params" and "lr"; other keys ignored),
    stepped by PyTorch's fused kernel directly (`adam_step`): the same update as
    `torch.optim.Adam(groups, fused=True)` (betas 0.9 and 0.999, eps 1e-8, no weight decay),
    with state made for a parameter the first time it has a gradient, and a parameter whose
    gradient is None left untouched. Without `torch.optim`'s bookkeeping a step costs less, and
    a fresh process does not import the compiler stack (about a second) on its first step.
    Devices without the fused kernel (MPS, others) use `torch.optim.Adam` itself."""

    BETAS, EPS = BETAS, EPS

    def __init__(self, param_groups: list[dict]):
        self.groups = [(list(g["params"]), float(g["lr"])) for g in param_groups]
        self.state: dict[nn.Parameter, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        devices = {p.device.type for params, _ in self.groups for p in params}
        self._fallback = None
        if not devices <= {"cpu", "cuda"}:
            self._fallback = torch.optim.Adam(
                [{"params": params, "lr": lr} for params, lr in self.groups], fused=True)

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    def _state_of(self, p: nn.Parameter) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if p not in self.state:  # step count, first and second moment, as torch.optim keeps them
            self.state[p] = (torch.zeros((), dtype=torch.float32, device=p.device),
                             torch.zeros_like(p, memory_format=torch.preserve_format),
                             torch.zeros_like(p, memory_format=torch.preserve_format))
        return self.state[p]

    @torch.no_grad()
    def step(self) -> None:
        if self._fallback is not None:
            self._fallback.step()
            return
        for params, lr in self.groups:
            batches: dict[tuple, list[nn.Parameter]] = {}
            for p in params:
                if p.grad is not None:
                    batches.setdefault((p.device, p.dtype), []).append(p)
            for batch in batches.values():
                steps, avgs, sqs = zip(*(self._state_of(p) for p in batch))
                torch._foreach_add_(steps, 1)
                adam_step(batch, [p.grad for p in batch], avgs, sqs, steps, lr)


@dataclass(frozen=True)
class FitStats:
    steps: int  # optimizer steps taken
    final_loss: float  # training loss of the last step
    seconds: float
    stopped: bool  # True when should_stop() ended training early


def fit(model: nn.Module, param_groups: list[dict], x: torch.Tensor, y: torch.Tensor, *,
        steps: int, batch_size: int, seed: int,
        on_step: Optional[Callable[[int, int, float], None]] = None,
        should_stop: Optional[Callable[[], bool]] = None,
        before_step: Optional[Callable[[int, int], None]] = None,
        loss_fn: Optional[Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor]] = None,
        ) -> FitStats:
    """Train `model` with Adam over `param_groups` for `steps` minibatch steps.

    x (N, ...) and y (N,) must already be on the model's device. Minibatches walk through a
    seeded random permutation of the N examples, epoch after epoch, so a run is reproducible.
    """
    start = time.perf_counter()
    model.train()
    optimizer = Adam(param_groups)
    dtype = autocast_dtype(x.device)  # bfloat16 where the hardware has it natively
    # every step's minibatch at once, moved to the device in one copy: on a GPU a copy per step
    # would make the host wait for the device at every step
    batches = batch_order(x.shape[0], batch_size, steps, seed).to(x.device)
    loss_value, taken = float("nan"), 0
    for step in range(steps):
        if should_stop is not None and should_stop():
            break
        idx = batches[step]
        if before_step is not None:
            before_step(step, steps)
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if loss_fn is not None:
                loss = loss_fn(model, x[idx], y[idx], step).float()
            else:
                logits = model(x[idx])  # (B, n_classes)
        if loss_fn is None:
            loss = F.cross_entropy(logits.float(), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        taken = step + 1
        if on_step is not None:
            loss_value = loss.item()
            on_step(taken, steps, loss_value)
    if on_step is None and taken:
        loss_value = loss.item()
    return FitStats(steps=taken, final_loss=loss_value, seconds=time.perf_counter() - start,
                    stopped=taken < steps)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Class predictions (N,) for inputs x (N, ...) on the model's device."""
    model.eval()
    dtype = autocast_dtype(x.device)
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        return torch.cat([model(x[i:i + batch_size]).argmax(1)
                          for i in range(0, x.shape[0], batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((predict(model, x) == y).float().mean().item() * 100.0)
