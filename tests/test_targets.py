"""Downloaded and uploaded datasets are real targets: the sweeps train on them like the built-ins."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from engine.core.datasets import load_dataset
from engine.core.store import ResultStore, home_dir
from engine.experiments.sweep import IMAGENET, SweepSpec, run_sweep


@pytest.fixture
def standin_dermamnist():
    """A tiny DermaMNIST in MedMNIST's own .npz layout (7 classes, RGB 28x28), removed after."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, per_class in (("train", 6), ("val", 1), ("test", 3)):
        labels = np.repeat(np.arange(7), per_class)
        images = (rng.random((len(labels), 28, 28, 3)) * 255).astype(np.uint8)
        images[..., 0] = (labels[:, None, None] * 36).astype(np.uint8)  # red encodes the class
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    folder = home_dir() / "datasets" / "medmnist"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "dermamnist.npz", **arrays)
    load_dataset.cache_clear()
    yield "dermamnist"
    (folder / "dermamnist.npz").unlink()
    load_dataset.cache_clear()


def test_a_downloaded_rgb_dataset_is_a_target_for_both_kinds_of_backbone(standin_dermamnist,
                                                                          pretrained, tmp_path):
    data = load_dataset(standin_dermamnist)
    assert data.x.shape[1:] == (3, 28, 28) and data.n_classes == 7
    store = ResultStore(tmp_path / "r.sqlite")
    small = SweepSpec(target=standin_dermamnist, strategies=("scratch", "probe"),
                      labels_per_class=(2,), seeds=1)
    photos = SweepSpec(source=IMAGENET, backbone="efficientnet_lite0", target=standin_dermamnist,
                       strategies=("probe",), labels_per_class=(2,), seeds=1)
    for spec in (small, photos):
        result = run_sweep(spec, store)
        assert result.trained == len(spec.strategies)
        assert result.records["test_accuracy"].between(0, 100).all()
        assert set(result.records["target"]) == {"dermamnist"}
    with pytest.raises(ValueError, match="at most 7 training labels per class"):  # 10 - 3 test
        SweepSpec(target=standin_dermamnist, labels_per_class=(8,)).check_target_capacity()


def test_an_uploaded_zip_is_a_target(tmp_path):
    from engine.core.userdata import import_zip

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            for i in range(6):
                img = Image.new("RGB", (20 + i, 24), colour)
                out = io.BytesIO()
                img.save(out, format="PNG")
                zf.writestr(f"mine/{label}/{i}.png", out.getvalue())
    info = import_zip(buffer.getvalue(), min_per_class=2, name="colours.zip")
    spec = SweepSpec(target=f"user:{info.digest}", strategies=("scratch",),
                     labels_per_class=(2,), seeds=1)
    result = run_sweep(spec, ResultStore(tmp_path / "r.sqlite"))
    assert result.trained == 1 and result.records["test_accuracy"].iloc[0] == 100.0  # trivially separable
