"""Derived datasets: each shift does what it says, deterministically, and names are validated."""

from __future__ import annotations

import pytest
import torch

from engine.core.datatypes import DatasetData, DatasetError
from engine.core.shifts import Shift, gaussian_kernel, parse_shift, pixel_permutation, shifted_name


def tiny(n: int = 40, size: int = 8, seed: int = 0) -> DatasetData:
    gen = torch.Generator().manual_seed(seed)
    return DatasetData(name="tiny", title="Tiny", x=torch.rand(n, 1, size, size, generator=gen),
                       y=torch.arange(n) % 4, class_names=("a", "b", "c", "d"))


def test_rotate_by_180_turns_every_image_upside_down():
    data = tiny()
    out = Shift("rotate", 180.0).apply(data, "tiny~rotate:180")
    assert torch.allclose(out.x, data.x.flip(-1).flip(-2), atol=1e-5)
    quarter = Shift("rotate", 90.0).apply(data, "tiny~rotate:90").x
    assert not torch.allclose(quarter, data.x, atol=1e-2)
    assert out.name == "tiny~rotate:180" and "turned by 180°" in out.title
    assert torch.equal(out.y, data.y)


@pytest.mark.parametrize("fraction, expected", [(1.0, 40), (0.5, 20), (0.25, 10)])
def test_invert_turns_exactly_the_given_share_of_images_into_their_negative(fraction, expected):
    data = tiny()
    out = Shift("invert", fraction).apply(data, "x").x
    inverted = [i for i in range(40) if torch.allclose(out[i], 1 - data.x[i])]
    untouched = [i for i in range(40) if torch.equal(out[i], data.x[i])]
    assert len(inverted) == expected and len(untouched) == 40 - expected


def test_noise_and_blur_are_seeded_bounded_and_graded():
    data = tiny(size=16)
    a = Shift("noise", 0.3).apply(data, "x").x
    b = Shift("noise", 0.3).apply(data, "x").x
    assert torch.equal(a, b)  # the same name always gives the same tensors
    assert a.min() >= 0 and a.max() <= 1
    more = Shift("noise", 0.9).apply(data, "x").x
    assert (more - data.x).abs().mean() > (a - data.x).abs().mean() > 0
    point = torch.zeros(1, 1, 15, 15)
    point[0, 0, 7, 7] = 1.0
    dot = DatasetData("dot", "Dot", point, torch.zeros(1, dtype=torch.int64), ("a",))
    blurred = Shift("blur", 1.0).apply(dot, "x").x[0, 0]
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-3)  # mass kept inside the frame
    assert blurred[7, 7] < 0.2 and blurred[7, 8] > 0.05 and blurred.argmax() == 7 * 15 + 7
    assert gaussian_kernel(1.5).sum().item() == pytest.approx(1.0)


def test_permuted_moves_every_image_s_pixels_by_one_fixed_permutation():
    data = tiny()
    out = Shift("permuted", None).apply(data, "x").x
    perm = pixel_permutation(8, 8)
    assert torch.equal(out.reshape(40, 64), data.x.reshape(40, 64)[:, perm])
    assert not torch.equal(out, data.x)
    assert torch.equal(out.reshape(40, -1).sort(1).values, data.x.reshape(40, -1).sort(1).values)


def test_random_labels_keep_images_and_class_sizes_but_break_the_link():
    data = tiny(n=400)
    out = Shift("randlabels", None).apply(data, "x")
    assert torch.equal(out.x, data.x)
    assert torch.equal(out.y.bincount(), data.y.bincount())
    assert (out.y != data.y).float().mean() > 0.5


@pytest.mark.parametrize("name, message", [
    ("uci_digits~rotate", "needs a severity"),
    ("uci_digits~rotate:30.0", "write the shift 'rotate:30.0' as 'rotate:30'"),
    ("uci_digits~rotate:200", "at most 180"),
    ("uci_digits~rotate:0", "above 0"),
    ("uci_digits~noise:nan", "above 0"),
    ("uci_digits~noise:lots", "must be a number"),
    ("uci_digits~swirl:3", "unknown shift 'swirl'"),
    ("mnist5k~permuted:3", "takes no severity"),
    ("nope~rotate:30", "unknown dataset 'nope'"),
    ("uci_digits~rotate:30~blur:1", "more than one shift"),
    ("~rotate:30", "names no dataset"),
])
def test_bad_derived_names_say_what_is_wrong(name, message):
    from engine.core.datasets import get_dataset_info
    from engine.experiments.sweep import SweepSpec

    with pytest.raises(DatasetError, match=message):
        get_dataset_info(name)
    with pytest.raises(ValueError, match=message):
        SweepSpec(target=name)


def test_derived_datasets_flow_through_specs_and_pretraining_keys():
    from engine.core.datasets import get_dataset_info, load_dataset
    from engine.experiments.sweep import SweepSpec

    spec = SweepSpec(source="mnist5k~permuted", target="uci_digits~rotate:30", labels_per_class=(1,))
    assert spec.pretrain_config().key() != SweepSpec().pretrain_config().key()
    base, shifted = load_dataset("uci_digits"), load_dataset("uci_digits~rotate:30")
    assert shifted.x.shape == base.x.shape and torch.equal(shifted.y, base.y)
    assert not torch.equal(shifted.x, base.x)
    assert get_dataset_info("uci_digits~invert:0.5").title.endswith("50% of the images inverted "
                                                                     "(dark ink on light paper)")
    assert shifted_name("uci_digits", "rotate", 0) == "uci_digits"
    assert shifted_name("uci_digits", "noise", 0.30) == "uci_digits~noise:0.3"
    assert shifted_name("mnist5k", "permuted") == "mnist5k~permuted"
    assert parse_shift("blur:1.5") == Shift("blur", 1.5)
