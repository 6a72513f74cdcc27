"""Runs trained as one stacked model (`engine.core.batched`, `engine.experiments.stacked`) end
where each run trained alone with `train.fit` ends: the same weights and test accuracy, run by
run, within float rounding.

Everything here computes in float32 (autocast off), on the CPU, in seconds. Adam's update is
the same kernel call in both (`train.adam_step`: bit-identical given the same gradients, tested
below), so the stacked and the lone run differ only in the gradients' summation order (a
grouped convolution, a batched matrix product). Adam divides by the root of the squared
gradient, so a rounding difference in a near-zero gradient can move a weight by up to a
learning rate, and it grows step by step. The stated tolerance, after one step for every run
and after all steps for runs that start from pretrained weights: all but a thousandth of the
weights within WEIGHT_TOL of the lone run's and every one within WEIGHT_MAX (one step at the
head's learning rate); after all steps, the same test accuracy within ACCURACY_TOL points (one
test image of the 400 is 0.25 points). A run from scratch (random weights, 20-100 examples) is
chaotic enough that its last-bit differences can grow past WEIGHT_TOL for 1 to 5% of its
weights after a dozen steps, with either order of summation winning: measured over 12 such
runs (seeds 0-5, 20 and 100 examples, 14 steps), 3 to 4 of them, whichever way the stacked Adam
was written; so for those only the accuracy and WEIGHT_MAX_SCRATCH are asserted.
"""

import pytest
import torch

from engine.core.backbones import get_backbone
from engine.core.batched import (GRAPHS_ENV, STOP_EVERY, FlatStack, StackStep, can_stack,
                                 fit_batched, stacked_parameters, stepper)
from engine.core.datasets import adapt_images, load_dataset
from engine.core.device import PRECISION_ENV
from engine.core.store import ResultStore
from engine.core.strategies import get_strategy
from engine.core.train import Adam, TrainBudget, accuracy, fit
from engine.experiments.protocol import LocalBackend, run_experiment
from engine.experiments.sweep import SweepContext, SweepSpec

LR = 3e-3  # the head's learning rate (the pretrained layers train at a tenth of it)
WEIGHT_TOL = 1e-5  # |batched - alone| of all but a thousandth of the weights
WEIGHT_MAX = LR  # |batched - alone| of every weight
WEIGHT_MAX_SCRATCH = 2 * LR  # |batched - alone| of every weight of a run from scratch, all steps
ACCURACY_TOL = 0.5  # points of test accuracy
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def float32(monkeypatch):
    """Autocast off (float32 everywhere) and one torch thread, restored afterwards."""
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    """The optical digits on the small CNN's 28 x 28 grid: 300 to train from, 400 to test."""
    data = load_dataset("uci_digits")
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(0))
    x, y = adapt_images(data.x, (1, 28, 28))[order], data.y[order]
    return {"x": x[:300], "y": y[:300], "x_test": x[-400:], "y_test": y[-400:]}


@pytest.fixture(scope="module")
def source_state(digits):
    """Weights the fine-tuning runs start from: the small CNN after 30 steps on the digits."""
    torch.manual_seed(99)
    model = get_backbone("small_cnn").build(10)
    fit(model, [{"params": list(model.parameters()), "lr": LR}], digits["x"], digits["y"],
        steps=30, batch_size=64, seed=99)
    return model.state_dict()


def prepared(strategy: str, seed: int, source_state):
    """A run's model and groups, built from its seed as a sweep builds them."""
    torch.manual_seed(seed)
    model = get_backbone("small_cnn").build(10)
    if get_strategy(strategy).uses_pretrained:
        model.load_state_dict(source_state)
        model.replace_head(10)
    return model, get_strategy(strategy).param_groups(model, LR, LR / 10)


# (strategy, labelled examples, seed, steps): three batch sizes (10, 20, 64), four step counts
RUNS = [("scratch", 20, 0, 14), ("finetune", 100, 1, 18), ("partial:2", 20, 2, 10),
        ("finetune", 10, 3, 12), ("scratch", 100, 4, 16), ("discriminative:0.5", 100, 5, 12),
        ("partial:2", 100, 6, 8)]


def test_stacked_adam_is_each_runs_own_adam():
    """The same gradients give each run the update `train.Adam` gives it alone, at the run's own
    rate; a finished run and a frozen parameter stay bit-identical."""
    torch.manual_seed(0)
    models = [torch.nn.Linear(6, 3) for _ in range(3)]
    rates = [3e-3, 1e-2, 5e-4]
    grads = [[torch.randn(3, 6) * 10 ** -k, torch.randn(3) * 10 ** -k] for k in range(4)]
    stack = FlatStack(stacked_parameters(models),
                      {"weight": rates, "bias": [rates[0], rates[1], 0.0]})
    params = stack.params
    frozen_bias = params["bias"][2].clone()
    for r, model in enumerate(models[:2]):
        alone = Adam([{"params": list(model.parameters()), "lr": rates[r]}])
        for g in grads:
            model.weight.grad, model.bias.grad = g[0].clone(), g[1].clone()
            alone.step()
    for step, g in enumerate(grads):
        params["weight"].grad.copy_(torch.stack([g[0]] * 3))
        params["bias"].grad.copy_(torch.stack([g[1]] * 3))
        stack.optimizer.step(torch.tensor([True, True, step < 2]))
    for r, model in enumerate(models[:2]):
        assert torch.equal(params["weight"][r], model.weight)
        assert torch.equal(params["bias"][r], model.bias)
    assert torch.equal(params["bias"][2], frozen_bias)


def test_the_stacked_adam_steps_each_run_exactly_as_adam_alone():
    """Five steps over parameters of several shapes, rates differing by run (three distinct
    rates in one parameter), one parameter frozen in one run and one frozen in every run, runs
    dropping out: each run's weights are bit-identical to `train.Adam` stepping that run alone
    (both are the one `adam_step`), the frozen ones untouched."""
    torch.manual_seed(1)
    runs = 4
    shapes = {"conv": (5, 2, 3, 3), "bias": (5,), "head": (3, 7), "frozen": (2, 2)}
    rates = {"conv": [1e-3, 3e-4, 3e-3, 1e-2], "bias": [1e-3, 0.0, 3e-3, 1e-2],
             "head": [3e-3, 3e-3, 1e-3, 2e-2], "frozen": [0.0] * runs}
    start = {n: torch.randn(runs, *shape) for n, shape in shapes.items()}
    flat = FlatStack({n: t.clone() for n, t in start.items()}, rates)
    alone = [{n: start[n][r].clone().requires_grad_() for n in shapes} for r in range(runs)]
    optimizers = [Adam([{"params": [alone[r][n]], "lr": rates[n][r]} for n in shapes
                        if rates[n][r] > 0]) for r in range(runs)]
    steps = [5, 3, 5, 1]
    for step in range(5):
        for name in ("conv", "bias", "head"):
            grad = torch.randn(runs, *shapes[name]) * 10.0 ** -step
            flat.params[name].grad.copy_(grad)
            for r in range(runs):
                alone[r][name].grad = grad[r].clone()
        flat.optimizer.step(torch.tensor([step < s for s in steps]))
        for r in range(runs):
            if step < steps[r]:
                optimizers[r].step()
    for name in shapes:
        for r in range(runs):
            assert torch.equal(flat.params[name][r].detach(), alone[r][name].detach()), (name, r)
    assert not torch.equal(flat.params["conv"], start["conv"])  # it did move
    assert torch.equal(flat.params["frozen"], start["frozen"])
    assert torch.equal(flat.params["bias"][1], start["bias"][1])
    assert flat.optimizer.count.tolist() == steps
    assert len(flat.optimizer.calls) == 5  # one kernel call per distinct rate
    assert flat.flat.numel() == sum(runs * torch.Size(shapes[n]).numel() for n in ("conv", "bias", "head"))


def small_stack(digits, source_state) -> StackStep:
    """Three runs (fine-tuning, scratch, partial) of 20 examples stacked, 6, 4 and 5 steps."""
    built = [prepared(s, seed, source_state)
             for s, seed in (("finetune", 0), ("scratch", 1), ("partial:2", 2))]
    return StackStep([m for m, _ in built], [g for _, g in built], [digits["x"][:20]] * 3,
                     [digits["y"][:20]] * 3, [6, 4, 5], 64, [0, 1, 2])


def test_a_stacked_step_never_waits_for_the_device(digits, source_state, monkeypatch):
    """What a CUDA graph needs: a step reads no tensor's value on the host (every way of doing
    so raises inside it) and branches on none; its step counter moves on the device."""
    step = small_stack(digits, source_state)

    def refuse(*_args, **_kwargs):
        raise AssertionError("the step read a tensor's value on the host")

    for name in ("item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    with pytest.raises(AssertionError):
        bool(torch.ones(()))  # the patch bites
    for _ in range(6):
        step()
    monkeypatch.undo()
    assert step.counter.item() == 6 and step.flat.optimizer.count.tolist() == [6, 4, 5]


def test_a_captured_step_replays_from_the_state_the_eager_step_starts_from(digits, source_state):
    """Warm-up steps taken while capturing are undone: replaying gives the eager steps' values."""
    eager, graphed = small_stack(digits, source_state), small_stack(digits, source_state)
    replays = []

    def capture(step):  # what capturing does to the state: warm-up steps, then one recorded
        for _ in range(4):
            step()
        return lambda: (replays.append(1), step())

    replay, every = stepper(graphed, capture)
    assert every == STOP_EVERY
    for _ in range(6):
        eager()
        replay()
    assert len(replays) == 6
    for a, b in zip(eager.state(), graphed.state()):
        assert torch.equal(a, b)


def test_a_failed_capture_trains_with_the_eager_step(digits, source_state, monkeypatch, caplog):
    """A step that cannot be captured (here: CUDA asked for where there is none) is said once
    and replaced by the eager step, from untouched state; TRANSFERLAB_CUDA_GRAPHS=0 never tries."""
    step = small_stack(digits, source_state)
    before = [t.clone() for t in step.state()]
    step.device = torch.device("cuda")  # only `stepper` reads it after construction
    run, every = stepper(step)
    assert run is step and every == 1 and "CUDA graph capture failed" in caplog.text
    assert all(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)  # the losses start NaN
               for a, b in zip(before, step.state()))
    caplog.clear()
    monkeypatch.setenv(GRAPHS_ENV, "0")
    assert stepper(step) == (step, 1) and not caplog.text


def test_runs_trained_stacked_equal_runs_trained_alone(digits, source_state):
    """Mixed strategies (scratch, fine-tuning, partial, discriminative rates), sizes and step
    counts: every run's weights and test accuracy match its lone run, frozen weights untouched."""
    x, y = digits["x"], digits["y"]
    alone = []
    for strategy, n, seed, steps in RUNS:
        model, groups = prepared(strategy, seed, source_state)
        fit(model, groups, x[:n], y[:n], steps=steps, batch_size=64, seed=seed)
        alone.append(model)
    built = [prepared(s, seed, source_state) for s, _, seed, _ in RUNS]
    models = [m for m, _ in built]
    initial = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    stats = fit_batched(models, [g for _, g in built], [x[:n] for _, n, _, _ in RUNS],
                        [y[:n] for _, n, _, _ in RUNS], [r[3] for r in RUNS], 64,
                        [r[2] for r in RUNS])
    assert [s.steps for s in stats] == [r[3] for r in RUNS] and not any(s.stopped for s in stats)
    # one step: every run, from scratch too
    first = [prepared(s, seed, source_state) for s, _, seed, _ in RUNS]
    fit_batched([m for m, _ in first], [g for _, g in first], [x[:n] for _, n, _, _ in RUNS],
                [y[:n] for _, n, _, _ in RUNS], [1] * len(RUNS), 64, [r[2] for r in RUNS])
    for (strategy, n, seed, _), (stacked, _) in zip(RUNS, first):
        lone, groups = prepared(strategy, seed, source_state)
        fit(lone, groups, x[:n], y[:n], steps=1, batch_size=64, seed=seed)
        gaps = torch.cat([(a - b).detach().abs().flatten()
                          for a, b in zip(lone.parameters(), stacked.parameters())])
        assert gaps.max().item() <= WEIGHT_MAX, strategy
        assert (gaps > WEIGHT_TOL).float().mean().item() <= 1e-3, (strategy, "first step")
    for (strategy, *_), lone, stacked, start in zip(RUNS, alone, models, initial):
        gaps = torch.cat([(a - b).detach().abs().flatten()
                          for a, b in zip(lone.parameters(), stacked.parameters())])
        if get_strategy(strategy).uses_pretrained:
            assert gaps.max().item() <= WEIGHT_MAX, strategy
            assert (gaps > WEIGHT_TOL).float().mean().item() <= 1e-3, strategy
        else:
            assert gaps.max().item() <= WEIGHT_MAX_SCRATCH, strategy
        for name, b in stacked.named_parameters():
            if not b.requires_grad:  # frozen: exactly the weights it started with
                assert torch.equal(b, start[name]), (strategy, name)
        assert abs(accuracy(lone, digits["x_test"], digits["y_test"])
                   - accuracy(stacked, digits["x_test"], digits["y_test"])) <= ACCURACY_TOL
    assert not torch.equal(models[0].head.weight, initial[0]["head.weight"])  # it did train


def test_stacked_linear_heads_equal_heads_trained_alone(digits):
    """Probes: linear heads on cached features train as one batched matrix product."""
    features = digits["x"].flatten(1)[:, ::8]  # (300, 98) stand-in features
    sizes, seeds, steps = [10, 50, 300], [0, 1, 2], [20, 12, 16]
    heads = []
    for seed in seeds:
        torch.manual_seed(seed)
        heads.append(torch.nn.Linear(features.shape[1], 10))
    lone = [torch.nn.Linear(features.shape[1], 10) for _ in seeds]
    for a, b, n, seed, s in zip(lone, heads, sizes, seeds, steps):
        a.load_state_dict(b.state_dict())
        fit(a, [{"params": list(a.parameters()), "lr": 3e-3}], features[:n], digits["y"][:n],
            steps=s, batch_size=64, seed=seed)
    fit_batched(heads, [[{"params": list(h.parameters()), "lr": 3e-3}] for h in heads],
                [features[:n] for n in sizes], [digits["y"][:n] for n in sizes], steps, 64, seeds)
    for a, b in zip(lone, heads):
        assert torch.allclose(a.weight, b.weight, atol=1e-5, rtol=0)
        assert torch.allclose(a.bias, b.bias, atol=1e-5, rtol=0)


def test_models_with_batch_statistics_are_not_stacked():
    assert can_stack(get_backbone("small_cnn").build(10))
    assert not can_stack(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)))
    assert not can_stack(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)))
    with pytest.raises(ValueError, match="one architecture"):
        fit_batched([torch.nn.Linear(2, 3), torch.nn.Linear(3, 3)], [[], []],
                    [torch.zeros(4, 2), torch.zeros(4, 3)], [torch.zeros(4).long()] * 2,
                    [1, 1], 4, [0, 1])


TINY_SWEEP = SweepSpec(source="untrained",
                       strategies=("scratch", "probe", "finetune", "gradual", "partial:2", "lora:r2"),
                       labels_per_class=(1, 5), seeds=1,
                       budget=TrainBudget(epochs=1, min_steps=6, max_steps=10))


def test_a_sweep_stacked_gives_the_per_run_records():
    """`SweepContext.train_stacked` (the GPU's path) records what `run` records, run by run."""
    units = TINY_SWEEP.units()
    alone = {u.key: SweepContext(TINY_SWEEP, CPU, None).run(u.spec) for u in units}
    messages = []
    stacked = dict(SweepContext(TINY_SWEEP, CPU, None).train_stacked(units, lambda: False,
                                                                     messages.append))
    assert set(u.key for u in stacked) == set(alone) and messages
    for unit, record in stacked.items():
        expected = alone[unit.key]
        assert record["run_key"] == unit.key and record["steps"] == expected["steps"]
        assert abs(record["test_accuracy"] - expected["test_accuracy"]) <= ACCURACY_TOL, unit.label


class StackedOnCpu(LocalBackend):
    """The driver's CUDA path (the workbench's `train_stacked`), taken on the CPU for tests."""

    def train(self, experiment, pretrained, todo, device, should_stop, say):
        yield from experiment.workbench(device, pretrained).train_stacked(todo, should_stop, say)


def test_cancelling_a_stack_stores_nothing_half_trained(tmp_path, monkeypatch):
    """Stopped mid-stack: the runs that had taken all their steps are stored, the rest are not;
    a second call trains what is missing."""
    checks = {"n": 0}

    def stop_after_some_steps() -> bool:
        checks["n"] += 1
        return checks["n"] > 12

    store = ResultStore(tmp_path / "s.sqlite")
    outcome = run_experiment(TINY_SWEEP, store, device=CPU, should_stop=stop_after_some_steps,
                             backend=StackedOnCpu())
    assert outcome.cancelled and 0 < outcome.trained < len(TINY_SWEEP.units())
    stored = {r["run_key"]: r for r in store.get_many(u.key for u in TINY_SWEEP.units())}
    budget = TINY_SWEEP.budget
    assert all(r["steps"] == budget.steps_for(r["n_train"]) for r in stored.values())
    again = run_experiment(TINY_SWEEP, store, device=CPU, backend=StackedOnCpu())
    assert again.trained == len(TINY_SWEEP.units()) - len(stored) and not again.cancelled


def test_the_cpu_keeps_one_run_per_thread(tmp_path, monkeypatch):
    """On the CPU the driver never takes the stacked path, so stored numbers stay as they were."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the stacked path ran on the CPU")

    monkeypatch.setattr(SweepContext, "train_stacked", refuse)
    spec = SweepSpec(source="untrained", strategies=("scratch",), labels_per_class=(1,), seeds=1,
                     budget=TrainBudget(epochs=1, min_steps=2, max_steps=2))
    assert run_experiment(spec, ResultStore(tmp_path / "s.sqlite"), device=CPU).trained == 1
