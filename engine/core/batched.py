"""Many runs of one architecture trained as one stacked model: the GPU's way to train a sweep.

A run of the small CNN is far too small to fill a GPU: its kernels are launched one after
another and each finishes in microseconds. Here R runs that share an architecture train as one
model whose every parameter has a leading run axis, (R, ...) (`stacked_parameters`, as
`torch.func.stack_module_state` stacks them); `torch.func.vmap` over `functional_call` runs
the R forward passes as one batched kernel per layer (a convolution becomes a grouped one, a
linear head a `bmm`), and the sum of the R losses gives each run exactly its own gradient
(run r's loss depends on run r's slice alone). Adam is elementwise, so one step over the
stacked tensors is each run's own step.

Each run keeps everything that makes it itself:
- its own init (the models given, built from its seed) and data order (`train.batch_order`
  with its own n, batch size and seed, exactly as `train.fit` walks it);
- its own learning rate per parameter (its parameter groups, discriminative rates included:
  a (R,) rate per stacked parameter) and its own frozen parameters, which never change;
- its own step count: a run that has taken its steps stops updating (its update is masked).
Runs whose batch size B = min(batch_size, n) differs train in separate stacks, one per B (no
padding: a 1-label run would otherwise pay for 64 examples a step).

Every parameter that some run trains lives in one flat buffer, parameter after parameter
(`FlatStack`: each stacked parameter is a view of it, its gradient a view of one flat gradient
buffer), and the stacked Adam steps each run's slice of it with the project's one Adam step
(`engine.core.train.adam_step`, PyTorch's fused kernel), one kernel call per distinct rate, so
a run's weights are what `engine.core.train.Adam` gives it alone. Only models whose layers
behave alike in training and evaluation and keep no buffers (no BatchNorm, no dropout) can be
stacked: `can_stack` says which.

One step (`StackStep`) is a function of device tensors only: the step counter is a tensor,
nothing reads a value back to the host. On CUDA it is captured once per stack as a CUDA graph
and replayed (`stepper`), so a step costs one launch instead of a few hundred; the capture's
warm-up steps are undone, so the numbers are the eager step's. TRANSFERLAB_CUDA_GRAPHS=0 (or a
failed capture, said once in the log) keeps the eager step.

Not here: which runs a sweep stacks or what it stores (`engine.experiments.stacked`), the
per-thread path the CPU keeps (`engine.core.parallel`).
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import time
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from engine.core.backbones import Classifier
from engine.core.device import autocast_dtype
from engine.core.lora import LoRAConv2d, LoRALinear
from engine.core.train import FitStats, adam_step, batch_order

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
    """Adam over one flat buffer holding every trained stacked parameter (`FlatStack.flat`):
    each run's slice of each parameter is a tensor of its own, stepped by the project's one Adam
    step (`engine.core.train.adam_step`, PyTorch's fused kernel) at the run's rate for that
    parameter, with the run's own step count; a slice a run keeps frozen (rate 0) is never
    stepped. Slices are batched into one kernel call per distinct rate, fixed when the stack is
    built, so a step's work does not depend on any value on the device.

    A run that has taken its steps (`active` false) must not move: the kernel steps every
    slice, so its parameters and moments are put back from a copy taken before the step, an
    elementwise choice on the device (`run`, each flat element's run). So each run's weights
    are exactly what `engine.core.train.Adam` gives it alone."""

    def __init__(self, flat: torch.Tensor, grad: torch.Tensor,
                 slices: Sequence[tuple[int, int, int, float]], run: torch.Tensor, runs: int):
        self.flat, self.grad = flat, grad  # (E,) the parameters and their gradients
        self.run = run  # (E,) each element's run, 0 .. runs - 1
        self.count = torch.zeros(runs, dtype=torch.float32, device=flat.device)  # steps, per run
        self.avg, self.sq = torch.zeros_like(flat), torch.zeros_like(flat)  # first, second moment
        # (start, size, run, rate) of each trained slice -> per rate, the kernel's tensor lists
        self.calls: dict[float, tuple[list, ...]] = {}
        for start, size, r, rate in slices:
            lists = self.calls.setdefault(rate, ([], [], [], [], []))
            for into, whole in zip(lists[:4], (flat, grad, self.avg, self.sq)):
                into.append(whole[start:start + size])
            lists[4].append(self.count[r])

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """One Adam step of every run where `active` (R,) is true; the others stay as they are.
        Device tensors only: nothing here waits for the device."""
        self.count += active.float()
        kept = ~active[self.run]  # (E,) elements of runs that do not step
        before = [t.clone() for t in (self.flat, self.avg, self.sq)]
        for rate, (params, grads, avgs, sqs, steps) in self.calls.items():
            adam_step(params, grads, avgs, sqs, steps, rate)
        for now, was in zip((self.flat, self.avg, self.sq), before):
            now.copy_(torch.where(kept, was, now))


class FlatStack:
    """Stacked parameters (name -> (R, ...)) with every one that some run trains moved into one
    flat buffer, parameter after parameter (each a (R, ...) view of it, a leaf whose gradient
    is a view of one flat gradient buffer), so the optimizer steps one tensor. Parameters no run
    trains stay apart, without gradients."""

    def __init__(self, stacked: dict[str, torch.Tensor], rates: dict[str, Sequence[float]]):
        trained = [n for n in stacked if any(rate > 0 for rate in rates[n])]
        device = next(iter(stacked.values())).device
        runs = len(next(iter(rates.values())))
        self.flat = torch.cat([stacked[n].flatten() for n in trained])  # (E,)
        self.grad = torch.zeros_like(self.flat)  # (E,)
        self.params = dict(stacked)  # name -> (R, ...)
        slices, run, offset = [], [], 0
        for name in trained:
            shape, size = stacked[name].shape, stacked[name].numel()
            view = self.flat[offset:offset + size].view(shape).requires_grad_()
            view.grad = self.grad[offset:offset + size].view(shape)  # backward adds into it
            self.params[name] = view
            per_run = size // runs
            slices += [(offset + r * per_run, per_run, r, float(rate))
                       for r, rate in enumerate(rates[name]) if rate > 0]
            run.append(torch.arange(runs).repeat_interleave(per_run))
            offset += size
        self.optimizer = StackedAdam(self.flat, self.grad, slices, torch.cat(run).to(device), runs)


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
    """`fit_batched` for runs of one batch size: one stacked model, stepped together (replaying
    a CUDA graph of the step on a GPU, `stepper`)."""
    start = time.perf_counter()
    step = StackStep(models, groups, xs, ys, steps, batch_size, seeds)
    run, every = stepper(step)
    taken = 0
    for _ in range(max(steps)):
        if taken % every == 0 and stop():
            break
        run()
        taken += 1
    _write_back(models, step.flat.params)
    seconds = time.perf_counter() - start
    finals = step.last_loss.tolist()
    return [FitStats(steps=min(s, taken), final_loss=loss, seconds=seconds, stopped=taken < s)
            for s, loss in zip(steps, finals)]


class StackStep:
    """One training step of a stack as a function of device tensors only, so that a CUDA graph
    can capture it: the step counter lives on the device, the (R, B) minibatch indices are
    gathered from the precomputed order with it, a run past its last step is masked by
    `counter < wanted`; no `.item()`, no Python branch on a tensor's value, no host sync."""

    def __init__(self, models, groups, xs, ys, steps: list[int], batch_size: int, seeds: list[int]):
        device = xs[0].device
        rates = [run_rates(m, g) for m, g in zip(models, groups)]
        params = stacked_parameters(models)  # name -> (R, ...)
        self.flat = FlatStack(params, {n: [r[n] for r in rates] for n in params})
        self.forward = _stacked_forward(models[0])
        self.x_all, self.y_all = torch.cat(list(xs)), torch.cat(list(ys))  # every run's examples
        self.order = _stacked_order([x.shape[0] for x in xs], batch_size, steps, seeds, device)
        self.wanted = torch.tensor(steps, device=device)  # (R,) steps each run takes
        self.counter = torch.zeros((), dtype=torch.long, device=device)  # steps taken so far
        self.last_loss = torch.full((len(models),), float("nan"), device=device)  # (R,)
        self.device, self.dtype = device, autocast_dtype(device)

    def state(self) -> list[torch.Tensor]:
        """Every tensor a step changes (the gradients aside: each step starts them at zero)."""
        adam = self.flat.optimizer
        return [self.flat.flat, adam.avg, adam.sq, adam.count, self.counter, self.last_loss]

    def __call__(self) -> None:
        idx = self.order.index_select(1, self.counter.view(1)).squeeze(1)  # (R, B)
        active = self.counter < self.wanted  # (R,)
        dtype = self.dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32,
                            enabled=dtype is not None, cache_enabled=False):
            logits = self.forward(self.flat.params, self.x_all[idx])  # (R, B, n_classes)
        losses = F.cross_entropy(logits.float().flatten(0, 1), self.y_all[idx].flatten(),
                                 reduction="none").view(idx.shape).mean(1)  # (R,)
        self.flat.grad.zero_()
        (losses * active).sum().backward()
        self.flat.optimizer.step(active)
        with torch.no_grad():
            self.last_loss.copy_(torch.where(active, losses, self.last_loss))
            self.counter += 1


GRAPHS_ENV = "TRANSFERLAB_CUDA_GRAPHS"  # "0" trains stacks with the eager step on CUDA too
STOP_EVERY = 25  # steps between two looks at `should_stop` while a CUDA graph replays
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as PyTorch's recipe does


def stepper(step: StackStep, capture: Optional[Callable] = None) -> tuple[Callable[[], None], int]:
    """(what takes one step, steps between two looks at `should_stop`): on CUDA the step
    captured once as a CUDA graph and replayed, elsewhere (or with TRANSFERLAB_CUDA_GRAPHS=0,
    or when capture fails) the step itself, looking every step. `capture(step) -> replay` may
    take steps (warm-up); whatever they change is put back, so the graph starts from the
    state the eager step would."""
    if capture is None:
        if step.device.type != "cuda" or os.environ.get(GRAPHS_ENV, "1") == "0":
            return step, 1
        capture = _cuda_graph
    saved = [t.clone() for t in step.state()]
    try:
        replay = capture(step)
    except Exception as error:  # noqa: BLE001 - any failure: train with the eager step
        first_line = (str(error).splitlines() or [""])[0]
        _say_once(f"CUDA graph capture failed ({type(error).__name__}: {first_line}); "
                  "stacks train with the eager step")
        replay = None
    with torch.no_grad():
        for tensor, value in zip(step.state(), saved):
            tensor.copy_(value)
    return (step, 1) if replay is None else (replay, STOP_EVERY)


def _cuda_graph(step: StackStep) -> Callable[[], None]:
    """The CUDA-only part: warm-up steps on a side stream, then one step captured."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step()
    finally:
        torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


@functools.lru_cache(maxsize=None)
def _say_once(message: str) -> None:
    logging.getLogger(__name__).warning(message)


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
