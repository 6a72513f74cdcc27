"""Many runs of one architecture trained as one stacked model: the GPU's way to train a sweep.

A run of the small CNN is far too small to fill a GPU: its kernels are launched one after
another and each finishes in microseconds. Here R runs that share an architecture train as one
model whose every parameter has a leading run axis, (R, ...) (`stacked_parameters`, as
`torch.func.stack_module_state` stacks them); `torch.func.vmap` over `functional_call` runs
the R forward passes as one batched kernel per layer (a convolution becomes a grouped one, a linear head a `bmm`), and the sum of
the R losses gives each run exactly its own gradient (run r's loss depends on run r's slice
alone). Adam is elementwise, so one step over the stacked tensors is each run's own step.

Each run keeps everything that makes it itself:
- its own init (the models given, built from its seed) and data order (`train.batch_order`
  with its own n, batch size and seed, exactly as `train.fit` walks it);
- its own learning rate per parameter (its parameter groups, discriminative rates included:
  a (R,) rate per stacked parameter) and its own frozen parameters, which never change;
- its own step count: a run that has taken its steps stops updating (its update is masked).
Runs whose batch size B = min(batch_size, n) differs train in separate stacks, one per B (no
padding: a 1-label run would otherwise pay for 64 examples a step).

The stacked Adam follows `engine.core.train.Adam`'s maths (PyTorch's fused kernel: betas 0.9,
0.999, eps 1e-8, no weight decay), written out elementwise because the fused kernel takes one
scalar rate per tensor. Only models whose layers behave alike in training and evaluation and
keep no buffers (no BatchNorm, no dropout) can be stacked: `can_stack` says which.

Not here: which runs a sweep stacks or what it stores (`engine.experiments.stacked`), the
per-thread path the CPU keeps (`engine.core.parallel`).
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from engine.core.backbones import Classifier
from engine.core.device import autocast_dtype
from engine.core.lora import LoRAConv2d, LoRALinear
from engine.core.train import Adam, FitStats, batch_order

# layers whose output depends only on their input and weights, with no buffers and no randomness
STACKABLE = (Classifier, nn.Sequential, nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.Flatten,
             nn.Identity, LoRAConv2d, LoRALinear)


def can_stack(model: nn.Module) -> bool:
    """True when runs of `model`'s architecture may train as one stacked model: every layer is
    one of STACKABLE, and nothing keeps buffers or hooks."""
    return (all(type(m) in STACKABLE for m in model.modules())
            and next(model.buffers(), None) is None
            and not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()))


def architecture(model: nn.Module) -> tuple:
    """What must be equal for two models to stack: every module's type and settings (a
    convolution's stride and padding, a LoRA layer's scaling) and every parameter's name, shape
    and dtype."""
    return (tuple((name, type(m).__name__, m.extra_repr(), getattr(m, "scaling", None))
                  for name, m in model.named_modules()),
            tuple((name, tuple(p.shape), p.dtype) for name, p in model.named_parameters()))


class StackedAdam:
    """Adam over stacked parameters (name -> (R, ...)), each run with its own rate per
    parameter, its own step count and its own frozen parameters: the update of
    `engine.core.train.Adam` (PyTorch's fused kernel), run by run."""

    BETAS, EPS = Adam.BETAS, Adam.EPS

    def __init__(self, params: dict[str, torch.Tensor], lrs: dict[str, torch.Tensor]):
        self.params = params  # name -> (R, ...) leaf tensor
        self.lrs = lrs  # name -> (R,) rate of that parameter in each run; 0 where it is frozen
        runs = next(iter(params.values())).shape[0]
        device = next(iter(params.values())).device
        self.count = torch.zeros(runs, dtype=torch.float64, device=device)  # steps taken, per run
        self.moments = {n: (torch.zeros_like(p), torch.zeros_like(p))
                        for n, p in params.items() if bool((lrs[n] > 0).any())}

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One Adam step of every run where `active` (R,) is true; the others stay as they are."""
        beta1, beta2 = self.BETAS
        self.count += active.double()
        steps = self.count.clamp(min=1)  # a run that never stepped is masked below
        # bias corrections in float64, as the fused kernel computes them from its step count
        correction1, correction2_sqrt = 1 - beta1 ** steps, (1 - beta2 ** steps).sqrt()  # (R,)
        for name, (avg, sq) in self.moments.items():
            p = self.params[name]
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)  # (R, 1, ..., 1): broadcast one value per run
            on = (active & (self.lrs[name] > 0)).view(shape)
            grad = p.grad
            new_avg = avg.lerp(grad, 1 - beta1)
            new_sq = sq * beta2 + grad * grad * (1 - beta2)
            denom = new_sq.sqrt() / correction2_sqrt.float().view(shape) + self.EPS
            step_size = (self.lrs[name].double() / correction1).float().view(shape)
            moved = p - step_size * new_avg / denom
            avg.copy_(torch.where(on, new_avg, avg))
            sq.copy_(torch.where(on, new_sq, sq))
            p.copy_(torch.where(on, moved, p))

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None


def stacked_parameters(models: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """name -> (R, ...) copy of every run's parameter, stacked along a leading run axis (what
    `torch.func.stack_module_state` gives, without its rule that every run freezes the same
    parameters: here a parameter may train in one run and stay frozen in another)."""
    per_run = [dict(m.named_parameters()) for m in models]
    return {name: torch.stack([run[name].detach() for run in per_run])
            for name in per_run[0]}


def run_rates(model: nn.Module, groups: list[dict]) -> dict[str, float]:
    """Parameter name -> the learning rate one run trains it at: its group's rate when it is in
    a group and requires a gradient, else 0 (frozen)."""
    rate = {id(p): float(g["lr"]) for g in groups for p in g["params"]}
    return {name: rate.get(id(p), 0.0) if p.requires_grad else 0.0
            for name, p in model.named_parameters()}


def fit_batched(models: Sequence[nn.Module], groups_per_model: Sequence[list[dict]],
                xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor],
                steps_per_model: Sequence[int], batch_size: int, seeds: Sequence[int], *,
                should_stop: Optional[Callable[[], bool]] = None) -> list[FitStats]:
    """Train R runs of one architecture as stacked models; each ends as `train.fit` would leave
    it (within float rounding). Run r is `models[r]` with its parameter groups, its inputs
    xs[r] (n_r, ...) and labels ys[r] (n_r,) on the device, `steps_per_model[r]` steps of
    min(batch_size, n_r) examples in the order of `batch_order(n_r, batch_size, steps, seeds[r])`.
    The models are updated in place (the same Parameter objects) and one FitStats per run is
    returned; when `should_stop()` ends training, the runs that had not taken all their steps
    say `stopped` and their weights are part-way."""
    runs = len(models)
    if not (len(groups_per_model) == len(xs) == len(ys) == len(steps_per_model) == len(seeds) == runs):
        raise ValueError("fit_batched needs one group list, input, label set, step count and seed per model")
    if runs and len({architecture(m) for m in models}) > 1:
        raise ValueError("fit_batched stacks runs of one architecture; these models differ")
    if not all(can_stack(m) for m in models):
        raise ValueError("these models keep buffers, hooks or layers that cannot be stacked")
    stats: list[Optional[FitStats]] = [None] * runs
    by_size: dict[int, list[int]] = {}
    for r, x in enumerate(xs):
        by_size.setdefault(min(batch_size, x.shape[0]), []).append(r)
    stop = should_stop or (lambda: False)
    for members in by_size.values():
        if stop():  # stacks not started count as stopped before their first step
            for r in members:
                stats[r] = FitStats(steps=0, final_loss=float("nan"), seconds=0.0, stopped=True)
            continue
        done = _fit_stack([models[r] for r in members], [groups_per_model[r] for r in members],
                          [xs[r] for r in members], [ys[r] for r in members],
                          [steps_per_model[r] for r in members], batch_size,
                          [seeds[r] for r in members], stop)
        for r, s in zip(members, done):
            stats[r] = s
    return stats


def _stacked_order(sizes: list[int], batch_size: int, steps: list[int], seeds: list[int],
                   device: torch.device) -> torch.Tensor:
    """(R, max steps, B) rows into the runs' concatenated examples: run r's `batch_order`,
    shifted by the examples of the runs before it; steps past a run's last repeat row 0."""
    offsets = [sum(sizes[:r]) for r in range(len(sizes))]
    longest = max(steps)
    rows = []
    for n, s, seed, offset in zip(sizes, steps, seeds, offsets):
        order = batch_order(n, batch_size, s, seed) + offset  # (s, B)
        rows.append(torch.cat([order, order[:1].expand(longest - s, -1)]))
    return torch.stack(rows).to(device)


def _fit_stack(models, groups, xs, ys, steps: list[int], batch_size: int, seeds: list[int],
               stop: Callable[[], bool]) -> list[FitStats]:
    """`fit_batched` for runs of one batch size: one stacked model, stepped together."""
    start = time.perf_counter()
    device = xs[0].device
    params = stacked_parameters(models)  # name -> (R, ...)
    rates = [run_rates(m, g) for m, g in zip(models, groups)]
    lrs = {n: torch.tensor([r[n] for r in rates], dtype=torch.float32, device=device) for n in params}
    for n, p in params.items():  # a gradient only where some run trains the parameter
        p.requires_grad_(bool((lrs[n] > 0).any()))
    optimizer = StackedAdam(params, lrs)
    forward = _stacked_forward(models[0])
    x_all, y_all = torch.cat(list(xs)), torch.cat(list(ys))  # every run's examples, run after run
    order = _stacked_order([x.shape[0] for x in xs], batch_size, steps, seeds, device)
    wanted = torch.tensor(steps, device=device)  # (R,)
    last_loss = torch.full((len(models),), float("nan"), device=device)
    dtype = autocast_dtype(device)
    taken = 0
    for step in range(max(steps)):
        if stop():
            break
        idx = order[:, step]  # (R, B)
        active = step < wanted  # (R,)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = forward(params, x_all[idx])  # (R, B, n_classes)
        losses = F.cross_entropy(logits.float().flatten(0, 1), y_all[idx].flatten(),
                                 reduction="none").view(idx.shape).mean(1)  # (R,)
        optimizer.zero_grad()
        (losses * active).sum().backward()
        optimizer.step(active)
        last_loss = torch.where(active, losses.detach(), last_loss)
        taken = step + 1
    _write_back(models, params)
    seconds = time.perf_counter() - start
    finals = last_loss.tolist()
    return [FitStats(steps=min(s, taken), final_loss=loss, seconds=seconds, stopped=taken < s)
            for s, loss in zip(steps, finals)]


def _stacked_forward(model: nn.Module) -> Callable[[dict, torch.Tensor], torch.Tensor]:
    """params (name -> (R, ...)), x (R, B, ...) -> logits (R, B, n_classes): a linear head as
    one batched matrix product, any other model through vmap over its stateless forward."""
    if type(model) is nn.Linear:
        def heads(params, x):
            return torch.baddbmm(params["bias"].unsqueeze(1), x, params["weight"].transpose(1, 2))
        return heads
    skeleton = copy.deepcopy(model).to("meta")  # the architecture; weights come from `params`

    def one(params, x):  # one run: (B, ...) -> (B, n_classes)
        return functional_call(skeleton, params, (x,))
    return vmap(one)


@torch.no_grad()
def _write_back(models, params: dict[str, torch.Tensor]) -> None:
    """Each run's slice back into its own model's parameters (the same Parameter objects)."""
    for r, model in enumerate(models):
        for name, p in model.named_parameters():
            p.copy_(params[name][r])
