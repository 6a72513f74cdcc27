"""Benchmark of the foundation lesson: pretraining time, the default sweep's time once the
backbone is cached, and how fast the curves page shows stored results.

    python bench/foundation.py            # the full default sweep (3 x 7 x 3 = 63 runs)
    python bench/foundation.py --quick    # 1 seed, for a smoke check (the page then shows
                                          # the stored third of its default sweep)

It uses a fresh temporary TRANSFERLAB_HOME, so nothing is cached at the start, and prints one
figure per line, ending with a `pretrain_s=... sweep_s=... page_stored_s=...` summary line.
Targets (2-core CPU): pretraining <= 60 s, default sweep <= 90 s, page with stored results <= 1 s.
"""

from __future__ import annotations

import os
import platform
import sys
import time

from common import ROOT, quick_run


def main() -> int:
    quick = quick_run(__doc__, "1 seed instead of 3", "transferlab-bench-")

    import torch
    from streamlit.testing.v1 import AppTest

    from engine.core.device import describe_device
    from engine.experiments.stats import summarize
    from engine.core.pretrain import pretrain
    from engine.core.store import ResultStore
    from engine.experiments.sweep import SweepSpec, run_sweep

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"device {describe_device()}")
    spec = SweepSpec(seeds=1 if quick else 3)

    start = time.perf_counter()
    result = pretrain(spec.pretrain_config())
    pretrain_s = time.perf_counter() - start
    print(f"pretraining: {pretrain_s:.1f} s, source accuracy {result.source_accuracy:.1f}%")

    start = time.perf_counter()
    sweep = run_sweep(spec, ResultStore())
    sweep_s = time.perf_counter() - start
    print(f"sweep: {sweep.trained} runs in {sweep_s:.1f} s "
          f"({sweep_s / max(sweep.trained, 1):.2f} s per run)")
    mean = summarize(sweep.records).pivot(index="labels_per_class", columns="strategy", values="mean")
    print(mean.round(1).to_string())

    # The curves page with every run already stored: a fresh session's first render.
    times = []
    for _ in range(3):
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        start = time.perf_counter()  # a new session: the home page, then the curves page
        app.run()
        app.switch_page("pages/transfer_curves.py").run()
        times.append(time.perf_counter() - start)
        assert not app.exception, app.exception
        assert app.get("plotly_chart"), "the page showed no chart from the stored runs"
    assert ResultStore().count() == sweep.trained + sweep.reused, "the page trained something"
    page_s = min(times)
    print(f"page with stored results: best of 3 new sessions (home, then curves) {page_s:.2f} s ({', '.join(f'{t:.2f}' for t in times)})")
    print(f"pretrain_s={pretrain_s:.1f} sweep_s={sweep_s:.1f} page_stored_s={page_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
