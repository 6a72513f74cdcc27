"""Diagnostics: linear CKA's defining properties, the side-by-side probes, and a tiny real run."""

from __future__ import annotations

import pytest
import torch

from engine.experiments.diagnostics import (BASELINE, DiagnosticsConfig, block_names, block_outputs,
                                linear_cka, probe_accuracies, run_diagnostics, stored_by_name)


# these models are tiny: on two busy cores a second torch thread costs more than it computes
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def reps(n=200, d=30, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_cka_of_a_representation_with_itself_is_one():
    x = reps()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x.float(), x.float()) == pytest.approx(1.0, abs=1e-6)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    x = reps()
    y = torch.tanh(x @ reps(30, 20, seed=1))  # a different, nonlinearly related representation
    q, _ = torch.linalg.qr(reps(30, 30, seed=2))  # a random orthogonal matrix
    base = linear_cka(x, y)
    assert 0.05 < base < 0.99
    assert linear_cka(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, 7.5 * y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(0.01 * (x @ q), y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x + 3.0, y) == pytest.approx(base, abs=1e-10)  # centred: shifts do not matter
    # but it is not invariant to stretching one direction: the test can tell the difference
    stretch = torch.ones(30, dtype=torch.float64)
    stretch[0] = 50.0
    assert abs(linear_cka(x * stretch, y) - base) > 0.01


def test_cka_is_low_for_unrelated_representations_and_refuses_bad_shapes():
    assert linear_cka(reps(seed=3), reps(seed=4)) < 0.3
    with pytest.raises(ValueError, match="same n"):
        linear_cka(reps(10, 3), reps(11, 3))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(torch.ones(10, 3), reps(10, 3))


def test_probes_trained_side_by_side_read_each_representation_separately():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 4
    informative = torch.nn.functional.one_hot(y, 4).float() * 4 + torch.randn(400, 4, generator=gen)
    noise = torch.randn(400, 50, generator=gen)
    train, test = slice(0, 300), slice(300, 400)
    acc = probe_accuracies([informative[train], noise[train]], y[train],
                           [informative[test], noise[test]], y[test], 4, steps=150)
    assert acc[0] > 90.0 and acc[1] < 50.0


def test_block_outputs_and_names_follow_the_small_cnn():
    from engine.core.backbones import get_backbone

    torch.manual_seed(0)
    features = get_backbone("small_cnn").build(10).features
    outs = block_outputs(features, torch.rand(5, 1, 28, 28))
    assert [tuple(o.shape) for o in outs] == [(5, 16 * 14 * 14), (5, 32 * 7 * 7), (5, 64 * 3 * 3), (5, 128)]
    assert block_names(features) == ["block 1: conv, 16 channels", "block 2: conv, 32 channels",
                                     "block 3: conv, 64 channels", "block 4: dense, 128 units"]


@pytest.mark.parametrize("bad, message", [
    ({"backbone_lrs": ()}, "at least one"), ({"backbone_lrs": (0.0,)}, "positive"),
    ({"lr": float("nan")}, "positive"), ({"probe_labels_per_class": -2}, "probe_labels"),
    ({"epochs": 0}, "epochs"), ({"backbone": "efficientnet_lite0"}, "ImageNet"),
])
def test_bad_settings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        DiagnosticsConfig(**bad)


def test_fine_tuning_changes_later_blocks_more_and_a_higher_rate_changes_more(pretrained, fresh_store):
    config = DiagnosticsConfig(labels_per_class=10, epochs=6, backbone_lrs=(1e-4, 1e-2),
                               probe_labels_per_class=5, probe_steps=60)
    assert run_diagnostics(config, fresh_store) == 3
    units = stored_by_name(config, fresh_store)
    assert list(units) == [BASELINE, "lr=0.0001", "lr=0.01"]
    base, gentle, strong = units[BASELINE], units["lr=0.0001"], units["lr=0.01"]
    assert base["layers"][0] == "pixels" and len(base["pretrained_probe"]) == 4
    # pretrained features make the last block far more readable than random ones do
    assert base["pretrained_probe"][-1] > base["untrained_probe"][-1] + 5
    for unit in (gentle, strong):
        assert all(0 < c <= 1 + 1e-9 for c in unit["cka_target"] + unit["cka_source"])
        assert unit["cka_target"][0] > unit["cka_target"][-1]  # the first block changed least
    assert strong["cka_target"][-1] < gentle["cka_target"][-1]  # a higher rate rewrites more
    assert strong["relative_change"][-1] > gentle["relative_change"][-1]
    assert run_diagnostics(config, fresh_store) == 0  # stored: nothing retrained
