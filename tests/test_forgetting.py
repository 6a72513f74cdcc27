"""Forgetting: the EWC penalty and Fisher estimate, replay mixing, config checks, and on a reduced
setting that fine-tuning really forgets the source and that EWC with a large lambda holds it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.experiments.protocol import unit_counts
from engine.experiments.forgetting import (ForgettingConfig, ReplayMixer, ewc_penalty, fisher_diagonal,
                               replay_count, run_forgetting)


# these models are tiny: on two busy cores a second torch thread costs more than it computes
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_ewc_penalty_is_zero_at_the_pretrained_weights_and_grows_with_fisher_weighted_distance():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {"weight": torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 0.0]]), "bias": torch.zeros(2)}
    assert ewc_penalty(model, fisher, anchor, lam=100.0).item() == 0.0
    with torch.no_grad():
        model.weight[0, 0] += 0.1  # Fisher 1
        model.weight[0, 1] += 0.1  # Fisher 2
        model.weight[0, 2] += 5.0  # Fisher 0: free to move
        model.bias += 3.0  # Fisher 0
    expected = 0.5 * 100.0 * (1.0 * 0.01 + 2.0 * 0.01)
    assert ewc_penalty(model, fisher, anchor, lam=100.0).item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        model.weight[0, 1] += 0.1  # twice as far on the weight with Fisher 2
    farther = ewc_penalty(model, fisher, anchor, lam=100.0).item()
    assert farther == pytest.approx(0.5 * 100.0 * (0.01 + 2.0 * 0.04), rel=1e-5)
    assert ewc_penalty(model, fisher, anchor, lam=0.0).item() == 0.0
    penalty = ewc_penalty(model, fisher, anchor, lam=100.0)
    penalty.backward()  # it pulls each weight back towards the anchor, in proportion to Fisher
    assert model.weight.grad[0, 1] > model.weight.grad[0, 0] > 0 and model.weight.grad[0, 2] == 0


def test_fisher_diagonal_is_the_mean_squared_gradient_of_the_model_s_own_predictions():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.randn(12, 4)
    fisher = fisher_diagonal(model, x, seed=3, batch_size=5)
    # the same classes drawn per example (seeded generator, batch by batch), gradients by autograd
    gen = torch.Generator().manual_seed(3)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(0, 12, 5):
        xb = x[i:i + 5]
        with torch.no_grad():
            drawn = torch.multinomial(F.softmax(model(xb), -1), 1, generator=gen).squeeze(1)
        for xi, c in zip(xb, drawn):
            model.zero_grad()
            F.log_softmax(model(xi[None]), -1)[0, c].backward()
            for n, p in model.named_parameters():
                expected[n] += p.grad.pow(2) / 12
    assert set(fisher) == set(expected)
    for n in fisher:
        assert torch.allclose(fisher[n], expected[n], rtol=1e-4, atol=1e-7), n
        assert (fisher[n] >= 0).all()


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.75])
def test_replay_mixes_the_configured_fraction_of_source_examples(fraction):
    batch = 64
    k = replay_count(batch, fraction)
    assert abs(k / (batch + k) - fraction) <= 0.5 / (batch + k) + 1e-9
    source_x = torch.arange(1000, dtype=torch.float32).view(-1, 1) + 10_000  # recognisable rows
    mixer = ReplayMixer(source_x, torch.zeros(1000, dtype=torch.int64), fraction, seed=0)
    seen = []
    for _ in range(30):
        xs, ys = mixer.draw(batch)
        assert len(xs) == k and len(ys) == k
        seen.extend(xs[:, 0].tolist())
    assert all(v >= 10_000 for v in seen)  # every mixed-in example is a source example
    if k:  # a walk through a permutation of the source: no repeats until it is reshuffled
        walk = seen[:(1000 // k) * k]
        assert len(set(walk)) == len(walk)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        replay_count(batch, 1.0)


def test_the_replay_loss_sees_source_examples_through_the_source_head(pretrained):
    """In a training step of the replay arm, the features see the target batch plus the mixed-in
    source images, and the source head scores exactly those."""
    from engine.core.device import pick_device
    from engine.experiments.forgetting import _loss_fn, _Setup

    config = ForgettingConfig(labels_per_class=10, replay_fraction=0.5, arms=("replay",))
    setup = _Setup(config, pretrained, pick_device())
    model = setup.model()
    sizes = {}

    def spy(name):
        def hook(module, inputs, output):
            sizes[name] = output.shape[0]
        return hook
    model.features.register_forward_hook(spy("features"))
    model.source_head.register_forward_hook(spy("source"))
    loss = _loss_fn(setup, "replay", model)(model, setup.xt_train[:32], setup.yt_train[:32], 0)
    assert math.isfinite(loss.item())
    assert sizes == {"features": 64, "source": 32}  # 32 target + 32 source: a fraction of 0.5


@pytest.mark.parametrize("bad, message", [
    ({"ewc_lambda": -1.0}, "lambda"), ({"ewc_lambda": float("inf")}, "lambda"),
    ({"replay_fraction": 1.0}, "replay"), ({"replay_fraction": -0.1}, "replay"),
    ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"low_lr_mult": -1}, "low_lr_mult"),
    ({"freeze_blocks": 0}, "freeze_blocks"), ({"freeze_blocks": 4}, "freeze_blocks"),
    ({"epochs": 0}, "epochs"), ({"labels_per_class": -1}, "labels per class"),
    ({"arms": ("finetune", "dropout")}, "arms"), ({"arms": ()}, "arms"),
    ({"backbone": "efficientnet_lite0"}, "ImageNet"), ({"target": "uci_digits~rotate:999"}, "180"),
])
def test_bad_settings_are_refused_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        ForgettingConfig(**bad)


def test_each_arm_is_keyed_by_its_own_settings():
    base = ForgettingConfig()
    changed = ForgettingConfig(ewc_lambda=10.0)
    same = [a for a in base.arms if base.arm_key(a) == changed.arm_key(a)]
    assert same == ["finetune", "low_lr", "freeze", "replay"]  # only the EWC arm retrains
    assert base.key() != changed.key()
    assert ForgettingConfig(arms=("replay", "finetune")).arms == ("finetune", "replay")


def test_fine_tuning_forgets_the_source_and_ewc_with_a_large_lambda_holds_it(pretrained, fresh_store):
    config = ForgettingConfig(labels_per_class=20, epochs=4, fisher_samples=100, ewc_lambda=1e4,
                              arms=("finetune", "ewc"))
    events = []
    result = run_forgetting(config, fresh_store, on_progress=events.append)
    plain, ewc = result.records["finetune"], result.records["ewc"]
    assert result.trained == 2 and not result.cancelled
    assert plain["epoch"] == [0, 1, 2, 3, 4] and len(plain["source_accuracy"]) == 5
    assert plain["source_before"] == ewc["source_before"] > 85.0  # the same pretrained start
    plain_drop = plain["source_before"] - plain["source_after"]
    ewc_drop = ewc["source_before"] - ewc["source_after"]
    assert plain_drop >= 5.0, plain["source_accuracy"]  # forgetting is measurable
    assert ewc_drop <= plain_drop - 4.0, (plain["source_accuracy"], ewc["source_accuracy"])
    assert plain["target_after"] > 60.0 and ewc["target_after"] > 60.0  # both learned the target
    assert [e.done for e in events if e.record is not None] == [1, 2]
    again = run_forgetting(config, fresh_store)  # stored: nothing is trained twice
    assert again.trained == 0 and again.records == result.records
    assert unit_counts(config, fresh_store) == (2, 2)
