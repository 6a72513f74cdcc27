"""ImageNet backbones: the offline EfficientNet-Lite0 is what it claims, torchvision models say
what is missing instead of failing, and frozen features are cached on disk. Never downloads."""

import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core import imagenet
from engine.core.features import cached_features, tensor_digest
from engine.core.imagenet import (IMAGENET_MODELS, ImageNetInput, WeightsUnavailable, build_imagenet_model,
                             imagenet_classes, load_image, predict, split_classifier, weights_status)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_torch_cache(tmp_path, monkeypatch):
    """torch's own download cache points at an empty folder, so a developer's cached weights
    cannot make a "missing file" test pass or fail by accident."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return tmp_path


def photo(path: Path) -> Path:
    """A real photograph of a cat (scikit-image's sample 'chelsea', installed offline)."""
    from skimage import data

    Image.fromarray(data.chelsea()).save(path)
    return path


def test_efficientnet_lite0_weights_load_by_position_and_recognise_a_cat(tmp_path):
    ready, status = weights_status("efficientnet_lite0")
    assert ready, status
    model = build_imagenet_model("efficientnet_lite0")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(4.65e6, rel=0.01)
    top = predict("efficientnet_lite0", load_image(photo(tmp_path / "cat.png")), top=5)
    assert top[0][0] in {"tabby", "tiger cat", "Egyptian cat"} and top[0][1] > 0.2
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    untrained = predict_with_random_weights(load_image(tmp_path / "cat.png"))
    # random weights are not confident (their top probability was 0.016 to 0.079 over seeds
    # 0-11), against over 0.2 for the file's: the file made the difference
    assert untrained[0][1] < 0.1 < 0.2 < top[0][1]


def predict_with_random_weights(image, seed: int = 0):
    with torch.random.fork_rng():  # the same random weights whatever ran before in this process
        torch.manual_seed(seed)
        model = build_imagenet_model("efficientnet_lite0", pretrained=False)
    x = torch.nn.functional.interpolate(image[None], size=(224, 224), mode="bilinear")
    with torch.no_grad():
        probs = model(ImageNetInput(224)(x)).softmax(-1)[0]
    value, index = probs.max(0)
    return [(imagenet_classes()[index], float(value))]


def test_predict_command_prints_the_top_classes_of_a_generated_image(tmp_path):
    rng = np.random.default_rng(0)
    pixels = (rng.random((120, 90, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    out = subprocess.run([sys.executable, "-m", "engine", "predict", "--backbone", "efficientnet_lite0",
                          "--image", str(tmp_path / "noise.png"), "--top", "3"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert "EfficientNet-Lite0" in lines[0] and "90x120 pixels" in lines[0]
    ranked = lines[1:]
    assert [line.split(".")[0].strip() for line in ranked] == ["1", "2", "3"]
    probs = [float(line.rsplit(None, 1)[1].rstrip("%")) for line in ranked]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 100
    assert all(line.split(".", 1)[1].rsplit(None, 1)[0].strip() in imagenet_classes() for line in ranked)


@pytest.mark.parametrize("args, message", [
    (["--image", "missing.png"], "no image file at missing.png"),
    (["--image", "{tmp}/not-an-image.png"], "is not a readable image"),
    (["--backbone", "vgg99", "--image", "{tmp}/not-an-image.png"], "unknown ImageNet backbone 'vgg99'"),
    (["--backbone", "resnet18", "--image", "{tmp}/not-an-image.png"], "resnet18-f37072fd.pth"),
])
def test_predict_command_refuses_bad_input_in_one_line(tmp_path, args, message, capsys,
                                                     monkeypatch):
    """`main` in this process (the sweep's refusals are also checked across a real process)."""
    from engine.__main__ import main

    (tmp_path / "not-an-image.png").write_text("hello")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.chdir(tmp_path)
    assert main(["predict", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_missing_torchvision_weights_say_which_file_and_where(no_torch_cache):
    ready, status = weights_status("resnet50")
    assert not ready
    assert "resnet50-11ad3fa6.pth" in status and "https://download.pytorch.org/models/" in status
    assert str(imagenet.weights_dir()) in status and "fetch-weights resnet50" in status
    with pytest.raises(WeightsUnavailable, match="resnet50-11ad3fa6.pth"):
        build_imagenet_model("resnet50")


def test_fetch_without_network_is_a_clear_error(no_torch_cache, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailable) as err:
        imagenet.fetch_weights("mobilenet_v3_small", progress=False)
    assert "mobilenet_v3_small-047dcff4.pth" in str(err.value) and "by hand" in str(err.value)
    assert not list(imagenet.weights_dir().glob("mobilenet*"))


def test_a_weights_file_put_in_place_by_hand_is_checked_then_used(no_torch_cache, tmp_path):
    import torchvision.models as tvm

    torch.manual_seed(0)
    real = tvm.mobilenet_v3_small(weights=None)
    torch.save(real.state_dict(), tmp_path / "downloaded.pth")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsUnavailable, match="is not MobileNetV3-Small"):
        imagenet.install_weights_file("mobilenet_v3_small", tmp_path / "wrong.pth")
    imagenet.install_weights_file("mobilenet_v3_small", tmp_path / "downloaded.pth")
    assert weights_status("mobilenet_v3_small")[0]
    imagenet._pretrained_state.cache_clear()
    loaded = build_imagenet_model("mobilenet_v3_small")
    assert torch.equal(loaded.classifier[-1].weight, real.classifier[-1].weight)
    imagenet._pretrained_state.cache_clear()


@pytest.mark.parametrize("name", list(IMAGENET_MODELS))
def test_every_backbone_splits_into_features_of_the_declared_width(name):
    model, head = split_classifier(build_imagenet_model(name, pretrained=False))
    assert head.out_features == 1000 and head.in_features == IMAGENET_MODELS[name].feature_dim
    with torch.no_grad():
        out = model(ImageNetInput(64)(torch.rand(2, 1, 28, 28)))
    assert out.shape == (2, IMAGENET_MODELS[name].feature_dim)


def test_imagenet_input_makes_three_normalised_channels_of_the_right_size():
    grey = torch.full((2, 1, 28, 28), 0.5)
    out = ImageNetInput(96)(grey)
    assert out.shape == (2, 3, 96, 96)
    expected = (0.5 - torch.tensor(imagenet.IMAGENET_MEAN)) / torch.tensor(imagenet.IMAGENET_STD)
    assert torch.allclose(out[0, :, 40, 40], expected, atol=1e-5)


def test_features_are_computed_once_then_read_from_disk():
    calls = []

    def build():
        calls.append(1)
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))

    x = torch.rand(10, 1, 4, 4)
    first, hit = cached_features(build, "toy@v1", x, {"size": 4}, torch.device("cpu"))
    assert not hit and first.shape == (10, 3) and calls == [1]
    again, hit = cached_features(build, "toy@v1", x, {"size": 4}, torch.device("cpu"))
    assert hit and calls == [1] and torch.equal(first, again)
    _, hit = cached_features(build, "toy@v1", x, {"size": 8}, torch.device("cpu"))  # other prep
    assert not hit and calls == [1, 1]
    _, hit = cached_features(build, "toy@v1", x + 0.1, {"size": 4}, torch.device("cpu"))  # other data
    assert not hit and calls == [1, 1, 1]
    assert tensor_digest(x) == tensor_digest(x.clone()) != tensor_digest(x[:9])


def test_fetch_weights_installs_a_file_downloaded_by_hand(tmp_path):
    import torchvision.models as tvm

    torch.save(tvm.mobilenet_v3_small(weights=None).state_dict(), tmp_path / "by-hand.pth")
    torch.save({"w": torch.zeros(1)}, tmp_path / "other.pth")
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch-home"),
               TRANSFERLAB_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "engine", "fetch-weights", "mobilenet_v3_small", "--file"]
    wrong = subprocess.run([*cmd, str(tmp_path / "other.pth")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 2 and "is not MobileNetV3-Small" in wrong.stderr
    right = subprocess.run([*cmd, str(tmp_path / "by-hand.pth")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert right.returncode == 0, right.stderr
    assert (tmp_path / "home" / "weights" / "mobilenet_v3_small-047dcff4.pth").is_file()


@pytest.mark.parametrize("size", [96, 160, 224])
def test_an_imagenet_backbone_reads_its_input_at_the_size_asked(size):
    from engine.core.backbones import get_backbone

    model = get_backbone("efficientnet_lite0").build(10, size)  # random weights, same resizing
    assert model.features[0].size == size
    seen = []
    model.features[1].conv_stem.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    with torch.no_grad():
        assert model.eval()(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert seen == [(2, 3, size, size)]
    with pytest.raises(ValueError, match="96, 160, 224"):
        get_backbone("efficientnet_lite0").build(10, 64)


def test_imagenet_features_at_another_size_are_cached_apart(monkeypatch):
    from engine.experiments import sweep

    asked = []

    def cached(build, backbone_id, x, prep, device, on_batch=None):
        asked.append((backbone_id, prep))
        return torch.zeros(len(x), 4), True

    monkeypatch.setattr(sweep, "cached_features", cached)
    common = dict(source=sweep.IMAGENET, backbone="efficientnet_lite0", labels_per_class=(1,),
                  seeds=1, strategies=("probe", "probe:block6"))
    for size in (96, 224):
        ctx = sweep.SweepContext(sweep.SweepSpec(**common, input_size=size), torch.device("cpu"), None)
        ctx.features("probe"), ctx.features("probe:block6"), ctx.features("probe")
    file = "efficientnet_lite0@imagenet:efficientnet-lite0-57934424.pth"
    assert asked == [(file, {"input": (3, 96, 96)}),  # the key features had before sizes existed
                     (file, {"input": (3, 96, 96), "view": "block6"}),
                     (file, {"input": (3, 224, 224)}),
                     (file, {"input": (3, 224, 224), "view": "block6"})]
