"""Runs trained as stacked models against the same runs one per thread, on one device.

    python bench/batched.py            # the default sweep's 63 runs
    python bench/batched.py --quick    # 3 strategies x labels (1, 5, 20) x 2 seeds = 18 runs

Both sides train every run of the spec from one `SweepContext` (pretraining cached, frozen
features computed before either is timed, one untimed warm-up of each first): the per-run path
as the driver takes it on the CPU (`run_concurrently`, one run per CPU thread or a few CUDA
streams), and `SweepContext.train_stacked`, the driver's path on CUDA (`engine.core.batched`).
It prints both times and mean accuracies, and ends with one line
`alone_s=X batched_s=Y batched_speedup=Z batched_accuracy_gap=W` (W in points, batched minus
alone). `gpu_check.sh` imports `compare` from here.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from common import quick_run


def _timed(label: str, train) -> tuple[float, list[float]]:
    start = time.perf_counter()
    accuracies = [record["test_accuracy"] for _, record in train() if record is not None]
    seconds = time.perf_counter() - start
    print(f"# {label}: {seconds:.2f} s, {len(accuracies)} runs, mean test accuracy "
          f"{sum(accuracies) / max(1, len(accuracies)):.2f}%")
    return seconds, accuracies


def compare(spec, device) -> dict[str, float]:
    """Seconds and mean accuracy of `spec`'s runs one per thread and stacked, on `device`."""
    import torch

    from engine.core.parallel import default_concurrency, run_concurrently
    from engine.core.pretrain import pretrain
    from engine.experiments.sweep import SweepContext

    pretrained = pretrain(spec.pretrain_config(), device=device) if spec.engine_pretrains() else None
    ctx = SweepContext(spec, device, pretrained)
    never = lambda: False  # noqa: E731

    def alone(units):
        workers = default_concurrency(device)
        return run_concurrently(ctx.order(units, workers), lambda u: ctx.train(u, never),
                                workers=workers, device=device)

    def stacked(units):
        return ctx.train_stacked(units, never, lambda message: None)

    def synced(train):  # the GPU's queued work counts in the time it belongs to
        def run():
            out = list(train())
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return out
        return run

    units = spec.units()
    warm = replace(spec, labels_per_class=spec.labels_per_class[:1], seeds=1).units()
    ctx.order(units, 1)  # every frozen-feature view computed before timing
    list(alone(warm)), list(stacked(warm))
    alone_s, alone_acc = _timed("one run per thread", synced(lambda: alone(units)))
    stacked_s, stacked_acc = _timed("stacked", synced(lambda: stacked(units)))
    mean = lambda xs: sum(xs) / max(1, len(xs))  # noqa: E731
    return {"alone_s": alone_s, "batched_s": stacked_s, "batched_speedup": alone_s / stacked_s,
            "batched_accuracy_gap": mean(stacked_acc) - mean(alone_acc)}


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
