"""Benchmark: EfficientNet-Lite0's linear probes on the UCI digits at two input sizes.

The "Which source?" lesson fed the ImageNet network 96 px images, well under its native 224.
This script trains the probe on the last block's features and on an earlier block's
(`probe:block<k>`) at each size given, with a fresh data directory (so every feature pass is
computed and timed), and prints the mean and standard deviation of test accuracy over seeds per
labelled-set size, with the time each sweep took. Not a test: it prints figures for RESULTS.md.

    TRANSFERLAB_HOME=$(mktemp -d) .venv/bin/python bench/imagenet_input_size.py --sizes 96 224
"""

from __future__ import annotations

import argparse
import time

from engine.core.datasets import parse_labels_list
from engine.experiments.stats import summarize
from engine.experiments.sweep import IMAGENET, SweepSpec, run_sweep


def sweep_at(size: int, strategies: tuple[str, ...], labels: tuple[int, ...], seeds: int) -> None:
    """Train and print one size's sweep: a line per (strategy, labels per class)."""
    spec = SweepSpec(source=IMAGENET, backbone="efficientnet_lite0", target="uci_digits",
                     strategies=strategies, labels_per_class=labels, seeds=seeds, input_size=size)
    start = time.perf_counter()
    result = run_sweep(spec)
    wall = time.perf_counter() - start
    print(f"\n## {size} px: {result.trained} runs trained in {wall:.1f} s (spec {spec.key()})")
    summary = summarize(result.records)
    for _, row in summary.iterrows():
        print(f"{row['strategy']:>14}  {str(row['size']):>4} labels/class  {row['mean']:5.1f} "
              f"± {row['std']:4.1f}  ({row['seeds']} seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 224])
    parser.add_argument("--strategies", default="probe,probe:block6")
    parser.add_argument("--labels", default="1,2,5,10,20,50,all")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for size in args.sizes:
        sweep_at(size, tuple(args.strategies.split(",")), parse_labels_list(args.labels), args.seeds)


if __name__ == "__main__":
    main()
