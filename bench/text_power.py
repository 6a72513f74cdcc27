"""How often the rule can call the probe's lead over words from scratch on text, by seeds.

Draws `--draws` labelled sets (seeds 0..draws-1) of `--labels` sentences per class of one
corpus, trains both strategies on each exactly as the text sweep does (`TextContext.train`),
and prints the paired gap's mean and standard deviation between seeds, then, for 3, 5 and 10
seeds, the chance that a paired t interval at 95% and at the Holm levels 97.5% and 98.3%
excludes 0 (noncentral t with the measured effect). Nothing is stored.

    python bench/text_power.py --target amazon_reviews --labels 5 --draws 30
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.stats import nct, t

from engine.experiments.protocol import Unit
from engine.experiments.text_sweep import TextContext, TextSweepSpec, run_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="amazon_reviews")
    parser.add_argument("--labels", type=int, default=5)
    parser.add_argument("--draws", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    spec = TextSweepSpec(target=args.target, labels_per_class=(args.labels,))
    context = TextContext(spec)
    runs: dict[tuple[str, int], float] = {}
    for plan in (run_plan(args.target, s, spec.encoder, args.labels, seed, spec.C)
                 for seed in range(args.draws) for s in ("scratch", "probe")):
        record = context.train(Unit(plan.run_key, "", plan), lambda: False)
        runs[plan.strategy, plan.seed] = record["test_accuracy"]
    gaps = np.array([runs["probe", s] - runs["scratch", s] for s in range(args.draws)])
    mean, sd = float(gaps.mean()), float(gaps.std(ddof=1))
    print(f"target={args.target} labels_per_class={args.labels} draws={args.draws}")
    print(f"probe_mean={np.mean([runs['probe', s] for s in range(args.draws)]):.2f}")
    print(f"scratch_mean={np.mean([runs['scratch', s] for s in range(args.draws)]):.2f}")
    print(f"gap_mean={mean:.2f} gap_sd={sd:.2f} effect={mean / sd:.2f}")
    for seeds in (3, 5, 10):
        for level in (0.95, 0.975, 1 - 0.05 / 3):
            critical = t.ppf(0.5 + level / 2, seeds - 1)
            power = 1 - nct.cdf(critical, seeds - 1, mean / sd * math.sqrt(seeds))
            print(f"power_{seeds}_seeds_{100 * level:.1f}={power:.2f}")
    print(f"seconds={time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
