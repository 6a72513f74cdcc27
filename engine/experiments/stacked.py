"""A sweep's runs trained as stacked models: what `SweepContext.train_stacked` does on a GPU.

Each run is prepared exactly as the per-run path prepares it (`SweepContext.prepare`: its
labelled examples, its model from its seed, its strategy's groups, the cached features of a
probe or the cached outputs of a frozen prefix), then the runs whose trained part has one
architecture and no schedule train together through `engine.core.batched.fit_batched`: every
probe of a feature view as stacked linear heads, the scratch and fine-tuning runs as stacked
CNNs, each `partial:<k>` as the stacked blocks above its frozen prefix. Runs with a schedule
(gradual unfreezing, LP-FT) and networks that cannot be stacked (BatchNorm, dropout: the
ImageNet backbones) train as before, side by side (`engine.core.parallel`). Each finished run is evaluated and
recorded by `SweepContext.finish`, so its record is the per-run path's, its numbers equal
within float rounding; a stack stopped part-way yields None for its unfinished runs.

Not here: the stacked training itself (`engine.core.batched`), when it is used (the driver's
`LocalBackend`: CUDA only; the CPU keeps one run per thread, which is faster there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from engine.core.backbones import get_backbone
from engine.core.batched import architecture, can_stack, fit_batched
from engine.core.parallel import default_concurrency, run_concurrently
from engine.core.strategies import get_strategy
from engine.experiments.protocol import Say, Unit


@dataclass(frozen=True)
class StackPlan:
    stacks: dict[tuple, list[Unit]]  # (architecture, input shape) -> the units that stack
    alone: list[Unit]  # units that train one per thread (a schedule, layers that cannot stack)
    prepared: dict[Unit, Any]  # each stacked unit's `PreparedRun`


def stack_plan(bench, todo: list[Unit]) -> StackPlan:
    """Which of `todo` stack with which on `bench` (a `SweepContext`), each stacked one prepared."""
    imagenet = get_backbone(bench.spec.backbone).imagenet
    plan = StackPlan(stacks={}, alone=[], prepared={})
    for unit in todo:
        if imagenet and not get_strategy(unit.spec.strategy).frozen_features:
            plan.alone.append(unit)  # BatchNorm and dropout: never stacked, not even prepared here
            continue
        run = bench.prepare(unit.spec)
        if run.schedule is not None or not can_stack(run.trained):
            plan.alone.append(unit)  # prepared again from its seed when it trains alone
            continue
        plan.prepared[unit] = run
        key = (architecture(run.trained), tuple(run.inputs.shape[1:]))
        plan.stacks.setdefault(key, []).append(unit)
    return plan


def train_stacked(bench, todo: list[Unit], should_stop: Callable[[], bool],
                  say: Say) -> Iterator[tuple[Unit, Optional[dict]]]:
    """(unit, record) for every unit of `todo` on `bench` (a `SweepContext`), stacked where it
    can be; record None for a unit stopped part-way (nothing half-trained is returned)."""
    plan = stack_plan(bench, todo)
    batch_size = bench.spec.budget.batch_size
    for units in plan.stacks.values():
        if should_stop():
            return
        names = ", ".join(dict.fromkeys(u.spec.strategy for u in units))
        say(f"training {len(units)} runs ({names}) as one stacked model")
        runs = [plan.prepared[u] for u in units]
        stats = fit_batched([r.trained for r in runs], [r.groups for r in runs],
                            [r.inputs[r.idx] for r in runs], [bench.y[r.idx] for r in runs],
                            [r.steps for r in runs], batch_size, [u.spec.seed for u in units],
                            should_stop=should_stop)
        for unit, run, fitted in zip(units, runs, stats):
            yield unit, None if fitted.stopped else bench.finish(unit.spec, run, fitted.steps)
    if plan.alone and not should_stop():  # side by side, as the driver trains them elsewhere
        workers = default_concurrency(bench.device)
        yield from run_concurrently(bench.order(plan.alone, workers),
                                    lambda unit: bench.train(unit, should_stop),
                                    workers=workers, device=bench.device, should_stop=should_stop)
