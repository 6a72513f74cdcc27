"""Runs trained as stacked models against the same runs one per thread, on one device.

    python bench/batched.py            # the default sweep's 63 runs
    python bench/batched.py --quick    # 3 strategies x labels (1, 5, 20) x 2 seeds = 18 runs

Both sides train every run of the spec from one `SweepContext` (pretraining cached, frozen
features computed before either is timed, one untimed warm-up of each first): the per-run path
as the driver takes it on the CPU (`run_concurrently`, one run per CPU thread or a few CUDA
streams), and `SweepContext.train_stacked`, the driver's path on CUDA (`engine.core.batched`).
It prints both times and mean accuracies, and ends with the lines
`alone_s=X batched_s=Y batched_speedup=Z batched_accuracy_gap=W` (W in points, batched minus
alone) and `ops_per_step=N ops_per_step_probe=M`: the aten operations one stacked step asks of
PyTorch (those called from Python or from the autograd engine, counted with torch.profiler on
the CPU in float32: 6 fine-tuning runs of the small CNN, and 6 probes' linear heads). On a GPU
each is at least one kernel launch, unless the step is replayed as a CUDA graph.
`gpu_check.sh` imports `compare`, `compare_graphs` and `ops_per_step` from here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import replace

from common import quick_run


def _timed(label: str, train) -> tuple[float, list[float]]:
    start = time.perf_counter()
    accuracies = [record["test_accuracy"] for _, record in train() if record is not None]
    seconds = time.perf_counter() - start
    print(f"# {label}: {seconds:.2f} s, {len(accuracies)} runs, mean test accuracy "
          f"{_mean(accuracies):.2f}%")
    return seconds, accuracies


def _mean(xs: list[float]) -> float:
    return sum(xs) / max(1, len(xs))


class Bench:
    """`spec`'s runs on `device`, ready to time: pretraining done, frozen features computed,
    one small warm-up of each path taken."""

    def __init__(self, spec, device):
        from engine.core.pretrain import pretrain
        from engine.experiments.sweep import SweepContext

        pretrained = pretrain(spec.pretrain_config(), device=device) if spec.engine_pretrains() else None
        self.ctx, self.device, self.units = SweepContext(spec, device, pretrained), device, spec.units()
        self.ctx.order(self.units, 1)  # every frozen-feature view computed before timing
        warm = replace(spec, labels_per_class=spec.labels_per_class[:1], seeds=1).units()
        list(self.alone(warm)), list(self.stacked(warm))

    def alone(self, units):
        from engine.core.parallel import default_concurrency, run_concurrently

        workers = default_concurrency(self.device)
        return run_concurrently(self.ctx.order(units, workers), lambda u: self.ctx.train(u, _never),
                                workers=workers, device=self.device)

    def stacked(self, units):
        return self.ctx.train_stacked(units, _never, lambda message: None)

    def time(self, label: str, train) -> tuple[float, list[float]]:
        """Seconds and accuracies of `train(self.units)`, the GPU's queued work included."""
        import torch

        def run():
            out = list(train(self.units))
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return out
        return _timed(label, run)


def _never() -> bool:
    return False


@contextlib.contextmanager
def _env(name: str, value: str):
    """The environment variable `name` set to `value` inside the block, as it was after."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def compare(spec, device) -> dict[str, float]:
    """Seconds and mean accuracy of `spec`'s runs one per thread and stacked, on `device`."""
    bench = Bench(spec, device)
    alone_s, alone_acc = bench.time("one run per thread", bench.alone)
    stacked_s, stacked_acc = bench.time("stacked", bench.stacked)
    return {"alone_s": alone_s, "batched_s": stacked_s, "batched_speedup": alone_s / stacked_s,
            "batched_accuracy_gap": _mean(stacked_acc) - _mean(alone_acc)}


def compare_graphs(spec, device) -> dict[str, float]:
    """Seconds and mean accuracy of `spec`'s runs stacked, with the step replayed as a CUDA
    graph and with the eager step (TRANSFERLAB_CUDA_GRAPHS=0); the same on a device without
    CUDA graphs."""
    from engine.core.batched import GRAPHS_ENV

    bench = Bench(spec, device)
    with _env(GRAPHS_ENV, "1"):
        graphs_s, graphs_acc = bench.time("stacked, CUDA graphs", bench.stacked)
    with _env(GRAPHS_ENV, "0"):
        eager_s, eager_acc = bench.time("stacked, eager step", bench.stacked)
    return {"batched_graphs_s": graphs_s, "batched_eager_s": eager_s,
            "graphs_speedup": eager_s / graphs_s, "batched_graphs_accuracy": _mean(graphs_acc),
            "batched_eager_accuracy": _mean(eager_acc),
            "graphs_accuracy_gap": _mean(graphs_acc) - _mean(eager_acc)}


def _top_level_ops(fit_batched, probe: bool, steps: int, runs: int = 6) -> int:
    """aten operations called from Python or the autograd engine while `fit_batched` trains
    `runs` fine-tuning runs of the small CNN (or their linear heads) for `steps` steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from engine.core.backbones import get_backbone
    from engine.core.strategies import get_strategy

    models, groups = [], []
    for seed in range(runs):
        torch.manual_seed(seed)
        model = get_backbone("small_cnn").build(10)
        model = model.head if probe else model
        models.append(model)
        groups.append(get_strategy("scratch" if probe else "finetune").param_groups(model, 3e-3, 3e-4))
    shape = (128,) if probe else (1, 28, 28)
    xs = [torch.randn(100, *shape) for _ in models]
    ys = [torch.randint(0, 10, (100,)) for _ in models]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit_batched(models, groups, xs, ys, [steps] * runs, 64, list(range(runs)))

    def top(event) -> bool:
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        return event.name.startswith("aten::") and parent is None
    return sum(map(top, prof.events()))


def ops_per_step(fit_batched=None) -> dict[str, float]:
    """Top-level aten operations per stacked step (the difference of 12 and 4 steps, so the
    set-up does not count), in float32 on the CPU; `fit_batched` defaults to the engine's."""
    from engine.core.batched import fit_batched as engine_fit
    from engine.core.device import PRECISION_ENV

    fit_batched = fit_batched or engine_fit
    with _env(PRECISION_ENV, "fp32"):
        return {name: (_top_level_ops(fit_batched, probe, 12) - _top_level_ops(fit_batched, probe, 4)) / 8
                for name, probe in (("ops_per_step", False), ("ops_per_step_probe", True))}


def main() -> int:
    quick = quick_run(__doc__, "3 strategies x labels (1, 5, 20) x 2 seeds", "transferlab-batched-")
    import torch

    from engine.core.device import describe_device, pick_device
    from engine.experiments.sweep import SweepSpec

    device = pick_device()
    spec = SweepSpec(labels_per_class=(1, 5, 20), seeds=2) if quick else SweepSpec()
    print(f"# device: {describe_device(device)}, torch {torch.__version__}, "
          f"{len(spec.units())} runs")
    result = compare(spec, device)
    print(" ".join(f"{k}={v:.2f}" if k != "batched_accuracy_gap" else f"{k}={v:+.2f}"
                   for k, v in result.items()))
    print(" ".join(f"{k}={v:.0f}" for k, v in ops_per_step().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
