"""Speed of the engine against the loop a user would write, on the same sweep, in one process.

    python bench/speed.py            # the default sweep: 3 strategies x 7 label counts x 3 seeds
    python bench/speed.py --quick    # 3 strategies x 3 label counts x 2 seeds (a few minutes)
    python bench/speed.py --heavy    # EfficientNet-Lite0 at 96 px on the MNIST subset, 54 runs
                                     # (for a GPU; with --quick 2 seeds)
    python bench/speed.py --precision   # the engine in float32 and in its default precision,
                                        # alternated twice in one process (ratio and accuracy)
    python bench/speed.py --step     # one training step against its convolutions alone

The naive loop is what the official PyTorch transfer-learning tutorial does, run after run: a
`DataLoader` over the labelled subset (shuffled, batch 64), the whole model forward on every
batch (the probe too, with its backbone frozen and, like the engine's cached features, in
evaluation mode: BatchNorm layers keep their statistics), and a `DataLoader` over the test set.
It takes the same number of optimizer steps as the engine, from the same pretrained checkpoint,
so both should reach the same accuracy. The engine's side is `run_sweep` on an empty store. Before
either is timed, each trains one untimed small sweep, so one-time costs of the process (loading
the target dataset, the first call of each kernel) fall on neither side.

It prints both times, both mean accuracies, the sweep's FLOPs (counted with
`torch.utils.flop_counter.FlopCounterMode` on a separate pass of the engine) and the achieved
FLOP/s against the device's peak (on a CPU: the best of a large matmul measured here, in float32
and, where the engine computes in it, bfloat16; on CUDA: the datasheet's dense float32 and
bfloat16 figures when the GPU is known). It ends with one line
`speedup=X accuracy_gap=Y` (Y in points, engine minus naive).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import fresh_home

# datasheet dense FLOP/s (SXM parts): float32 without TF32, and bfloat16 on the tensor cores
CUDA_PEAKS = {"H100": (67e12, 989e12), "H200": (67e12, 989e12), "A100": (19.5e12, 312e12)}


def naive_sweep(spec, device) -> list[float]:
    """Every run of `spec`, one after another, the tutorial's way; test accuracies in order."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from engine.core.datasets import load_dataset, sample_labels, split_target
    from engine.core.pretrain import load_cached
    from engine.core.strategies import get_strategy
    from engine.experiments.sweep import SweepContext, plan_runs

    ctx = SweepContext(spec, device, load_cached(spec.pretrain_config()) if spec.engine_pretrains()
                       else None)
    data = load_dataset(spec.target)
    x = ctx.x.cpu().contiguous()  # the network's input size, in PyTorch's default layout
    split = split_target(data.y)
    test = DataLoader(TensorDataset(x[split.test_idx], data.y[split.test_idx]), batch_size=256)
    budget = spec.budget
    accuracies = []
    for plan in plan_runs(spec):
        idx = sample_labels(data.y, split, plan.labels_per_class, plan.seed)
        model = ctx.new_model(plan.strategy, plan.seed)
        groups = get_strategy(plan.strategy).param_groups(model, budget.lr,
                                                          budget.lr * budget.backbone_lr_mult)
        optimizer = torch.optim.Adam([{k: v for k, v in g.items() if k != "name"} for g in groups])
        loader = DataLoader(TensorDataset(x[idx], data.y[idx]), batch_size=budget.batch_size,
                            shuffle=True, generator=torch.Generator().manual_seed(plan.seed))
        steps, taken = budget.steps_for(len(idx)), 0
        for _ in range(math.ceil(steps / len(loader))):
            model.train()
            if get_strategy(plan.strategy).frozen_features:
                model.features.eval()  # a frozen backbone keeps its BatchNorm statistics
            for xb, yb in loader:
                if taken == steps:
                    break
                xb, yb = xb.to(device), yb.to(device)
                loss = F.cross_entropy(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                taken += 1
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in test:
                correct += (model(xb.to(device)).argmax(1).cpu() == yb).sum().item()
        accuracies.append(100.0 * correct / len(split.test_idx))
    return accuracies


def cpu_peak_flops(dtype=None) -> float:
    """Best FLOP/s of a 2048 x 2048 matmul in `dtype` (float32 by default) on this machine, with
    all its threads: an attainable peak."""
    import torch

    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - start))
    return best


def compare_precision(spec, device) -> int:
    """The engine's sweep in float32 and in its default precision, alternated twice."""
    from engine.core.device import PRECISION_ENV, precision_name
    from engine.core.store import ResultStore
    from engine.experiments.sweep import run_sweep

    times: dict[str, list[float]] = {}
    for turn, forced in enumerate(("fp32", "", "fp32", "")):
        os.environ[PRECISION_ENV] = forced
        name = precision_name(device)
        start = time.perf_counter()
        result = run_sweep(spec, ResultStore(Path(os.environ["TRANSFERLAB_HOME"]) / f"p{turn}.sqlite"),
                           device=device)
        times.setdefault(name, []).append(time.perf_counter() - start)
        print(f"{name}: {times[name][-1]:.1f} s, mean test accuracy "
              f"{result.records['test_accuracy'].mean():.2f}%")
    if len(times) == 1:
        print("this device has no faster precision than float32 here")
        return 0
    fast = min(times, key=lambda k: sum(times[k]))
    print(f"precision_speedup={sum(times['fp32']) / sum(times[fast]):.2f} ({fast} against fp32)")
    return 0


def step_anatomy(device) -> int:
    """One thread, one run: a training step of the small CNN at batch 64 as the engine takes it,
    against its three convolutions alone (forward and both backward products, same shapes,
    precision and layout). What is left is pooling, ReLU, the dense layers, the loss, the
    optimizer and the framework's own overhead."""
    import torch
    import torch.nn.functional as F

    from engine.core.backbones import get_backbone
    from engine.core.device import autocast_dtype
    from engine.core.train import fit

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = get_backbone("small_cnn").build(10).to(device, memory_format=torch.channels_last)
    x = torch.rand(640, 1, 28, 28, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (640,), device=device)
    groups = [{"params": list(model.parameters()), "lr": 1e-3}]
    fit(model, groups, x, y, steps=20, batch_size=64, seed=0)  # warm-up
    best_step = min(fit(model, groups, x, y, steps=100, batch_size=64, seed=r).seconds / 100
                    for r in range(3))
    dtype = autocast_dtype(device) or torch.float32
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]
    inputs, h = [], x[:64].to(dtype)
    for conv in convs:  # each convolution's real input: the previous block's output
        inputs.append(h.detach().requires_grad_(conv is not convs[0]))
        h = F.relu(F.max_pool2d(F.conv2d(h, conv.weight.to(dtype), conv.bias.to(dtype), padding=1), 2))
    weights = [c.weight.detach().to(dtype).requires_grad_() for c in convs]

    def conv_only():
        for conv, inp, w in zip(convs, inputs, weights):
            out = F.conv2d(inp, w, conv.bias.to(dtype), padding=1)
            wanted = [w] + ([inp] if inp.requires_grad else [])
            torch.autograd.grad(out, wanted, torch.ones_like(out))

    for _ in range(20):
        conv_only()
    best_conv = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(100):
            conv_only()
        best_conv = min(best_conv, (time.perf_counter() - start) / 100)
    print(f"training step, batch 64, one thread: {1e3 * best_step:.2f} ms")
    print(f"its convolutions alone (forward and backward): {1e3 * best_conv:.2f} ms "
          f"({100 * best_conv / best_step:.0f}% of the step)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 label counts x 2 seeds")
    parser.add_argument("--heavy", action="store_true",
                        help="EfficientNet-Lite0 (ImageNet weights, 96 px) on the MNIST subset: "
                             "3 strategies x labels 1-50 x 3 seeds (meant for a GPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", action="store_true",
                        help="compare the engine's float32 and default precision instead")
    parser.add_argument("--step", action="store_true",
                        help="time one training step against its convolutions alone instead")
    args = parser.parse_args()
    fresh_home("transferlab-speed-")

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.core.device import autocast_dtype, describe_device, pick_device
    from engine.core.pretrain import pretrain
    from engine.core.store import ResultStore
    from engine.experiments.sweep import SweepSpec, run_sweep

    device = pick_device() if args.device == "auto" else torch.device(args.device)
    if args.heavy:
        spec = SweepSpec(backbone="efficientnet_lite0", source="imagenet", target="mnist5k",
                         labels_per_class=(1, 2, 5, 10, 20, 50), seeds=2 if args.quick else 3)
    else:
        spec = SweepSpec(labels_per_class=(1, 5, 20), seeds=2) if args.quick else SweepSpec()
    runs = len(spec.strategies) * len(spec.labels_per_class) * spec.seeds
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{describe_device(device)}")
    print(f"sweep: {', '.join(spec.strategies)} x labels {spec.labels_per_class} x {spec.seeds} "
          f"seeds = {runs} runs")
    if args.step:
        return step_anatomy(device)
    if spec.engine_pretrains():
        pretrain(spec.pretrain_config(), device=device)  # cached before either side is timed
    if args.precision:
        return compare_precision(spec, device)
    # one untimed run of each side first, so neither pays the process's one-time costs (reading
    # the target, the first call of each kernel) inside its timing
    warm = replace(spec, labels_per_class=(1,), seeds=1)
    naive_sweep(warm, device)
    run_sweep(warm, ResultStore(Path(os.environ["TRANSFERLAB_HOME"]) / "warm.sqlite"), device=device)

    start = time.perf_counter()
    naive = naive_sweep(spec, device)
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    result = run_sweep(spec, ResultStore(Path(os.environ["TRANSFERLAB_HOME"]) / "a.sqlite"),
                       device=device)
    engine_s = time.perf_counter() - start
    engine_acc = float(result.records["test_accuracy"].mean())
    naive_acc = sum(naive) / len(naive)

    # a separate, untimed pass, one run at a time: the counter sees only its own thread's work
    with FlopCounterMode(display=False) as counter:
        run_sweep(spec, ResultStore(Path(os.environ["TRANSFERLAB_HOME"]) / "b.sqlite"),
                  device=device, concurrency=1)
    flops = counter.get_total_flops()
    achieved = flops / engine_s
    print(f"naive loop: {naive_s:.1f} s, mean test accuracy {naive_acc:.2f}%")
    print(f"engine:     {engine_s:.1f} s, mean test accuracy {engine_acc:.2f}%")
    print(f"sweep FLOPs: {flops / 1e9:.1f} GFLOP; engine achieved {achieved / 1e9:.1f} GFLOP/s")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peaks = next((v for k, v in CUDA_PEAKS.items() if k in name), (float("nan"),) * 2)
        for peak, what in zip(peaks, ("float32", "bfloat16")):
            print(f"  = {100 * achieved / peak:.1f}% of {peak / 1e12:.0f} TFLOP/s ({name} "
                  f"datasheet, dense {what})")
    else:
        threads = torch.get_num_threads()
        dtypes = [torch.float32] + ([torch.bfloat16] if autocast_dtype(device) == torch.bfloat16 else [])
        for dtype in dtypes:  # the engine's convolutions run in bfloat16 where it has it
            peak = cpu_peak_flops(dtype)
            print(f"  = {100 * achieved / peak:.1f}% of {peak / 1e9:.0f} GFLOP/s (best 2048x2048 "
                  f"{str(dtype).split('.')[1]} matmul here, {threads} threads)")
    print(f"speedup={naive_s / engine_s:.2f} accuracy_gap={engine_acc - naive_acc:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
