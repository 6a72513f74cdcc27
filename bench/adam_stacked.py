"""A stacked step with another version's stacked Adam against this one's, side by side.

    git show 5da1ae1:engine/core/batched.py > /tmp/old_batched.py
    PYTHONPATH=. python bench/adam_stacked.py /tmp/old_batched.py

Prints each side's aten operations per stacked step (`bench/batched.py`'s `ops_per_step`: 6
fine-tuning runs of the small CNN, and 6 probes' linear heads) and its milliseconds per step on
one CPU thread in float32 (6 fine-tuning runs, 100 examples each, 60 steps; four rounds, the
two sides alternating), then the ratio of the medians, this version over the other. On a GPU
each operation of an eager step is at least one kernel launch; this is a CPU count.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))


def load_other(path: str):
    spec = importlib.util.spec_from_file_location("other_batched", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ms_per_step(fit_batched, runs: int = 6, steps: int = 60) -> float:
    import torch

    from engine.core.backbones import get_backbone
    from engine.core.strategies import get_strategy

    models, groups = [], []
    for seed in range(runs):
        torch.manual_seed(seed)
        model = get_backbone("small_cnn").build(10)
        models.append(model)
        groups.append(get_strategy("finetune").param_groups(model, 3e-3, 3e-4))
    xs = [torch.randn(100, 1, 28, 28) for _ in models]
    ys = [torch.randint(0, 10, (100,)) for _ in models]
    start = time.perf_counter()
    fit_batched(models, groups, xs, ys, [steps] * runs, 64, list(range(runs)))
    return (time.perf_counter() - start) / steps * 1000


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    os.environ["TRANSFERLAB_PRECISION"] = "fp32"
    import torch

    from batched import ops_per_step
    from engine.core import batched

    torch.set_num_threads(1)
    sides = {"other": load_other(sys.argv[1]).fit_batched, "this": batched.fit_batched}
    for name, fit_batched in sides.items():
        print(name, " ".join(f"{k}={v:.0f}" for k, v in ops_per_step(fit_batched).items()))
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(4):
        for name, fit_batched in sides.items():
            times[name].append(ms_per_step(fit_batched))
    for name, values in times.items():
        print(f"{name} ms_per_step=" + ",".join(f"{v:.1f}" for v in values)
              + f" median={statistics.median(values):.1f}")
    print(f"ratio_this_over_other={statistics.median(times['this']) / statistics.median(times['other']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
