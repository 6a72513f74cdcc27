"""Runs trained as one stacked model (`engine.core.batched`, `engine.experiments.stacked`) end
where each run trained alone with `train.fit` ends: the same weights and test accuracy, run by
run, within float rounding.

Everything here computes in float32 (autocast off), on the CPU, in seconds. The stacked and the
lone run differ only in summation order (a grouped convolution, a batched matrix product) and in
the last bit of Adam's update; Adam divides by the root of the squared gradient, so a rounding
difference in a near-zero gradient can move a weight by up to a learning rate and grows a little
step by step. The stated tolerance: all but a thousandth of the weights within WEIGHT_TOL of
the lone run's and every one within WEIGHT_MAX (one step at the head's learning rate), and the
same test accuracy within ACCURACY_TOL points (one test image of the 400 is 0.25 points).
"""

import pytest
import torch

from engine.core.backbones import get_backbone
from engine.core.batched import StackedAdam, can_stack, fit_batched, stacked_parameters
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
    params = stacked_parameters(models)
    lrs = {"weight": torch.tensor(rates), "bias": torch.tensor([rates[0], rates[1], 0.0])}
    stacked = StackedAdam({n: p.requires_grad_() for n, p in params.items()}, lrs)
    frozen_bias = params["bias"][2].clone()
    for r, model in enumerate(models[:2]):
        alone = Adam([{"params": list(model.parameters()), "lr": rates[r]}])
        for g in grads:
            model.weight.grad, model.bias.grad = g[0].clone(), g[1].clone()
            alone.step()
    for step, g in enumerate(grads):
        params["weight"].grad = torch.stack([g[0]] * 3)
        params["bias"].grad = torch.stack([g[1]] * 3)
        stacked.step(torch.tensor([True, True, step < 2]))
    for r, model in enumerate(models[:2]):
        assert torch.allclose(params["weight"][r], model.weight, atol=1e-6, rtol=0)
        assert torch.allclose(params["bias"][r], model.bias, atol=1e-6, rtol=0)
    assert torch.equal(params["bias"][2], frozen_bias)


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
    for (strategy, *_), lone, stacked, start in zip(RUNS, alone, models, initial):
        gaps = torch.cat([(a - b).detach().abs().flatten()
                          for a, b in zip(lone.parameters(), stacked.parameters())])
        assert gaps.max().item() <= WEIGHT_MAX, strategy
        assert (gaps > WEIGHT_TOL).float().mean().item() <= 1e-3, strategy
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
