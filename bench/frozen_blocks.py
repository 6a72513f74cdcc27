"""The "How much to train" lesson's two sweeps with the frozen first blocks computed once per
sweep (what the engine does) and pushed through the network at every step (the baseline),
alternated in one process on one cached checkpoint.

    python bench/frozen_blocks.py           # the page's defaults: 5 labels per class, 2 seeds
    python bench/frozen_blocks.py --quick   # 1 seed

The sweeps: `partial:0` .. `partial:4` (freeze depth) and scratch, `copy-frozen:1..4`,
`copy-tuned:1..4` (layer transferability). Prints each pass's time and mean accuracy and the
largest difference in any run's test accuracy between the two ways; ends with
`frozen_blocks_speedup=X` (total baseline time over total engine time).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from common import quick_run


def main() -> int:
    quick = quick_run(__doc__, "1 seed instead of 2", "transferlab-frozen-")

    import pandas as pd

    import engine.experiments.sweep as sweep
    from engine.core.pretrain import PretrainConfig, pretrain
    from engine.core.store import ResultStore
    from engine.experiments.lessons.depth import depth_specs

    pretrain(PretrainConfig())
    specs = depth_specs(5, 1 if quick else 2)
    cached_prefix = sweep.frozen_prefix
    times: dict[str, float] = {"cached": 0.0, "baseline": 0.0}
    accuracy: dict[str, pd.Series] = {}
    for turn, way in enumerate(("cached", "baseline", "cached", "baseline")):
        sweep.frozen_prefix = cached_prefix if way == "cached" else (lambda model: 0)
        start = time.perf_counter()
        records = pd.concat([sweep.run_sweep(spec, ResultStore(
            Path(os.environ["TRANSFERLAB_HOME"]) / f"{turn}.sqlite")).records for spec in specs])
        seconds = time.perf_counter() - start
        times[way] += seconds
        accuracy[way] = records.set_index(["strategy", "seed"])["test_accuracy"].sort_index()
        print(f"{way:8s} {len(records)} runs in {seconds:.1f} s, mean test accuracy "
              f"{accuracy[way].mean():.2f}%")
    sweep.frozen_prefix = cached_prefix
    gap = (accuracy["cached"] - accuracy["baseline"]).abs().max()
    print(f"largest difference in a run's test accuracy between the two ways: {gap:.2f} points")
    print(f"frozen_blocks_speedup={times['baseline'] / times['cached']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
