"""engine.core.remote: downloadable datasets, read from stand-in files in each real on-disk format.

Every test gets its own TRANSFERLAB_HOME and an `urllib.request.urlopen` that refuses to connect;
tests that download replace it with one serving bytes from memory. Nothing reaches the network.
Stand-in images carry an id in one pixel, so a test can tell which file and split each loaded
image came from and that its label travelled with it.
"""

import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
import scipy.io
import torch

import engine.core.remote as remote
from engine.core.datasets import DIGIT_NAMES, DatasetError
from engine.core.remote import REMOTE_DATASETS, DatasetUnavailable

ID_PIXEL = 10  # images store their id at (ID_PIXEL, ID_PIXEL) of channel 0


@pytest.fixture(autouse=True)
def offline_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return tmp_path


def all_files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def ids_of(data):
    return (data.x[:, 0, ID_PIXEL, ID_PIXEL] * 255).round().long().tolist()


def check_tensors(data, channels, size):
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.x.shape[1:] == (channels, size, size) and data.x.shape[0] == data.y.shape[0]
    assert float(data.x.min()) == 0.0 and float(data.x.max()) == 1.0  # pixel / 255, not / max


# ---------------------------------------------------------------- stand-in writers

def idx_bytes(array):
    if array.ndim == 3:  # magic 0x00000803: uint8, 3 dimensions
        return struct.pack(">IIII", 0x803, *array.shape) + array.astype(np.uint8).tobytes()
    return struct.pack(">II", 0x801, len(array)) + array.astype(np.uint8).tobytes()


def mnist_split(ids, labels):
    images = np.zeros((len(ids), 28, 28), np.uint8)
    images[:, ID_PIXEL, ID_PIXEL] = ids
    images[:, 27, 27] = 255  # bottom-right corner: orientation and the 1.0 maximum
    return images, np.asarray(labels, np.uint8)


def write_mnist_like(home, name):
    """Train: 3 per class (ids 0-29), test: 2 per class (ids 100-119). Returns id -> label."""
    folder = home / "datasets" / "torchvision" / REMOTE_DATASETS[name].subdir
    folder.mkdir(parents=True)
    truth = {}
    for prefix, base, per in (("train", 0, 3), ("t10k", 100, 2)):
        labels = np.repeat(np.arange(10), per)
        ids = base + np.arange(len(labels))
        images, labels = mnist_split(ids, labels)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
        truth.update(zip(ids.tolist(), labels.tolist()))
    return truth


CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")


def write_cifar10(home):
    """Five train batches of one image per class (ids 0-49), a test batch of two per class
    (ids 50-69). Train batches use bytes keys, the test batch str keys (what Python 2 pickles
    give under latin1): the reader must take both."""
    folder = home / "datasets" / "torchvision" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    truth, next_id = {}, 0
    for file, per in [(f"data_batch_{i}", 1) for i in range(1, 6)] + [("test_batch", 2)]:
        labels = np.repeat(np.arange(10), per)
        images = np.zeros((len(labels), 3, 32, 32), np.uint8)
        ids = next_id + np.arange(len(labels))
        images[:, 0, ID_PIXEL, ID_PIXEL] = ids
        images[:, 1, 0, :] = 255  # green top row
        entry = {"data": images.reshape(len(labels), 3072), "labels": labels.tolist()}
        if file != "test_batch":
            entry = {k.encode(): v for k, v in entry.items()}
        (folder / file).write_bytes(pickle.dumps(entry, protocol=2))
        truth.update(zip(ids.tolist(), labels.tolist()))
        next_id += len(labels)
    meta = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return truth


def write_svhn(home, files=("train_32x32.mat", "test_32x32.mat")):
    """Train 3 per digit (ids 0-29), test 2 per digit (ids 100-119); digit 0 is stored as 10."""
    folder = home / "datasets" / "torchvision"
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for file, base, per in (("train_32x32.mat", 0, 3), ("test_32x32.mat", 100, 2)):
        digits = np.repeat(np.arange(10), per)
        ids = base + np.arange(len(digits))
        x = np.zeros((32, 32, 3, len(digits)), np.uint8)  # (H, W, C, N) as in the real files
        x[ID_PIXEL, ID_PIXEL, 0, :] = ids
        x[0, :, 1, :] = 255  # green top row
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)  # (N, 1)
        if file in files:
            scipy.io.savemat(folder / file, {"X": x, "y": y})
        truth.update(zip(ids.tolist(), digits.tolist()))
    return truth


def medmnist_npz(name):
    """In-memory npz: train 3, val 1, test 2 per class (ids from 0, 100, 200). Returns bytes
    and id -> label."""
    channels = REMOTE_DATASETS[name].channels
    n_classes = len(remote_info_labels(name))
    arrays, truth = {}, {}
    for split, base, per in (("train", 0, 3), ("val", 100, 1), ("test", 200, 2)):
        labels = np.repeat(np.arange(n_classes), per)
        ids = base + np.arange(len(labels))
        shape = (len(labels), 28, 28) if channels == 1 else (len(labels), 28, 28, 3)
        images = np.zeros(shape, np.uint8)
        if channels == 1:
            images[:, ID_PIXEL, ID_PIXEL] = ids
            images[:, 27, :] = 255
        else:
            images[:, ID_PIXEL, ID_PIXEL, 0] = ids
            images[:, 27, :, 2] = 255  # blue bottom row
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.astype(np.uint8).reshape(-1, 1)  # (N, 1)
        truth.update(zip(ids.tolist(), labels.tolist()))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue(), truth


def remote_info_labels(name):
    from medmnist.info import INFO

    return INFO[name]["label"]


# ---------------------------------------------------------------- the registry

def test_registry_matches_the_libraries_it_describes():
    import torchvision.datasets as tvd
    from medmnist.info import INFO

    assert set(REMOTE_DATASETS) == {"mnist", "fashion_mnist", "kmnist", "cifar10", "svhn",
                                    "dermamnist", "pneumoniamnist", "pathmnist"}
    for name in ("mnist", "fashion_mnist", "kmnist"):
        info = REMOTE_DATASETS[name]
        cls = getattr(tvd, info.tv_class)
        assert info.urls == tuple(cls.mirrors[0] + f for f, _ in cls.resources)
        assert info.files == tuple(f.removesuffix(".gz") for f, _ in cls.resources)
        assert info.subdir == f"{cls.__name__}/raw"
    assert REMOTE_DATASETS["fashion_mnist"].class_names == tuple(tvd.FashionMNIST.classes)
    assert REMOTE_DATASETS["kmnist"].class_names == tuple(tvd.KMNIST.classes)
    cifar = REMOTE_DATASETS["cifar10"]
    assert cifar.urls == (tvd.CIFAR10.url,) and cifar.subdir == tvd.CIFAR10.base_folder
    assert cifar.files == tuple(f for f, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list) + (
        tvd.CIFAR10.meta["filename"],)
    svhn = REMOTE_DATASETS["svhn"]
    assert svhn.urls == tuple(tvd.SVHN.split_list[s][0] for s in ("train", "test"))
    assert svhn.files == tuple(tvd.SVHN.split_list[s][1] for s in ("train", "test"))
    for name in ("dermamnist", "pneumoniamnist", "pathmnist"):
        info = REMOTE_DATASETS[name]
        assert info.urls == (INFO[name]["url"],) and info.files == (f"{name}.npz",)
        assert info.channels == INFO[name]["n_channels"] and INFO[name]["license"] in info.licence
    for info in REMOTE_DATASETS.values():
        assert info.description.endswith(".") and info.licence and info.size in (28, 32)


def test_roots_follow_transferlab_home_at_call_time(tmp_path, monkeypatch):
    assert remote.dataset_folder("svhn") == tmp_path / "datasets" / "torchvision"
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "elsewhere"))
    assert remote.dataset_folder("mnist") == tmp_path / "elsewhere/datasets/torchvision/MNIST/raw"
    assert remote.dataset_folder("pathmnist") == tmp_path / "elsewhere/datasets/medmnist"


# ---------------------------------------------------------------- reading each format

@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "kmnist"])
def test_mnist_like_merges_train_and_test(offline_home, name):
    truth = write_mnist_like(offline_home, name)
    data = remote.load_remote(name, per_class_cap=None)
    check_tensors(data, 1, 28)
    assert sorted(ids_of(data)) == sorted(truth)  # both splits, each image once
    assert [truth[i] for i in ids_of(data)] == data.y.tolist()  # labels travel with images
    assert (data.x[:, 0, 27, 27] == 1).all() and (data.x[:, 0, 0, 0] == 0).all()
    assert data.class_names == REMOTE_DATASETS[name].class_names and data.n_classes == 10
    assert "train (30) + test (20)" in data.preprocessing["splits"]
    if name == "mnist":
        assert data.class_names == DIGIT_NAMES


def test_cifar10_reads_pickled_batches_without_official_checksums(offline_home):
    truth = write_cifar10(offline_home)
    data = remote.load_remote("cifar10", per_class_cap=None)
    check_tensors(data, 3, 32)
    assert sorted(ids_of(data)) == list(range(70))
    assert [truth[i] for i in ids_of(data)] == data.y.tolist()
    assert (data.x[:, 1, 0, :] == 1).all() and (data.x[:, 1, 1:, :] == 0).all()  # row, channel
    assert data.class_names == CIFAR_NAMES
    assert "train (50) + test (20)" in data.preprocessing["splits"]


def test_svhn_maps_label_10_to_digit_0_and_keeps_layout(offline_home):
    truth = write_svhn(offline_home)
    data = remote.load_remote("svhn", per_class_cap=None)
    check_tensors(data, 3, 32)
    assert sorted(ids_of(data)) == sorted(truth)
    assert [truth[i] for i in ids_of(data)] == data.y.tolist()
    assert int(data.y.max()) == 9 and int((data.y == 0).sum()) == 5  # 3 train + 2 test zeros
    assert (data.x[:, 1, 0, :] == 1).all() and (data.x[:, 1, 1:, :] == 0).all()  # not transposed
    assert data.class_names == DIGIT_NAMES


@pytest.mark.parametrize("name", ["pneumoniamnist", "dermamnist", "pathmnist"])
def test_medmnist_npz_merges_three_splits(offline_home, name):
    payload, truth = medmnist_npz(name)
    folder = offline_home / "datasets" / "medmnist"
    folder.mkdir(parents=True)
    (folder / f"{name}.npz").write_bytes(payload)
    data = remote.load_remote(name, per_class_cap=None)
    channels = REMOTE_DATASETS[name].channels
    check_tensors(data, channels, 28)
    assert sorted(ids_of(data)) == sorted(truth)
    assert [truth[i] for i in ids_of(data)] == data.y.tolist()
    assert (data.x[:, channels - 1, 27, :] == 1).all()  # last row set: HWC turned into CHW
    labels = remote_info_labels(name)
    assert data.class_names == tuple(labels[str(i)] for i in range(len(labels)))
    assert "train" in data.preprocessing["splits"] and "val" in data.preprocessing["splits"]
    if name == "pneumoniamnist":
        assert data.class_names == ("normal", "pneumonia") and channels == 1


def test_per_class_cap_is_stratified_deterministic_and_nested(offline_home):
    truth = write_mnist_like(offline_home, "mnist")
    two = remote.load_remote("mnist", per_class_cap=2)
    assert torch.bincount(two.y).tolist() == [2] * 10
    again = remote.load_remote("mnist", per_class_cap=2)
    assert torch.equal(two.x, again.x) and torch.equal(two.y, again.y)
    three = remote.load_remote("mnist", per_class_cap=3)
    assert torch.bincount(three.y).tolist() == [3] * 10
    assert set(ids_of(two)) < set(ids_of(three)) < set(truth)
    assert two.preprocessing["per_class_cap"] == "2"
    assert two.preprocessing["kept"].startswith("20 of 50 images")
    default = remote.load_remote("mnist")  # cap 1000: all five per class
    assert len(default.y) == 50 and default.preprocessing["per_class_cap"] == "1000"
    with pytest.raises(DatasetError, match="per_class_cap"):
        remote.load_remote("mnist", per_class_cap=0)


def test_cap_draws_from_the_merged_pool():
    labels = np.array([0] * 6 + [1] * 6)
    picks = [tuple(remote.cap_per_class(labels, 3, seed=s)) for s in range(20)]
    assert len(set(picks)) > 1  # the seed matters
    assert picks[0] == tuple(remote.cap_per_class(labels, 3, seed=0))
    assert all(np.bincount(labels[list(p)]).tolist() == [3, 3] for p in picks)


# ---------------------------------------------------------------- missing and broken files

@pytest.mark.parametrize("name", list(REMOTE_DATASETS))
def test_missing_files_are_named_with_folder_url_and_command(name):
    info = REMOTE_DATASETS[name]
    folder = remote.dataset_folder(name)
    assert remote.missing_files(name) == [folder / f for f in info.files]
    assert remote.describe_status(name) == "not downloaded: missing " + ", ".join(info.files)
    with pytest.raises(DatasetUnavailable) as caught:
        remote.load_remote(name)
    message = str(caught.value)
    assert all(f in message for f in info.files) and str(folder) in message
    assert f"`python -m engine download {name}`" in message and info.urls[0] in message


def test_only_the_missing_file_is_reported(offline_home):
    write_svhn(offline_home, files=("train_32x32.mat",))
    assert [p.name for p in remote.missing_files("svhn")] == ["test_32x32.mat"]
    with pytest.raises(DatasetUnavailable, match="missing test_32x32.mat in") as caught:
        remote.load_remote("svhn")
    assert "train_32x32.mat," not in str(caught.value)


def test_ready_status_reports_size(offline_home):
    write_cifar10(offline_home)
    status = remote.describe_status("cifar10")
    assert status.startswith("ready (") and status.endswith(" MB on disk)")
    assert remote.missing_files("cifar10") == []


def test_truncated_file_is_unavailable_not_a_crash(offline_home):
    write_mnist_like(offline_home, "kmnist")
    path = remote.dataset_folder("kmnist") / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DatasetUnavailable, match="unreadable.*python -m engine download kmnist"):
        remote.load_remote("kmnist")


# ---------------------------------------------------------------- downloading

class FakeResponse(io.BytesIO):
    """What urlopen returns, enough for our downloader and torchvision's."""

    def __init__(self, payload, url, fail_after=None):
        super().__init__(payload)
        self.url, self.length, self.fail_after = url, len(payload), fail_after
        self.headers = {"Content-Length": str(len(payload))}

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size)


def serve(monkeypatch, files, fail_after=None):
    """Replace urlopen with one serving `files` (url -> bytes); records the urls asked for."""
    asked = []

    def urlopen(request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        asked.append(url)
        if url not in files:
            raise urllib.error.URLError("not served in this test")
        return FakeResponse(files[url], url, fail_after)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


@pytest.mark.parametrize("name", list(REMOTE_DATASETS))
def test_download_offline_says_what_to_do_and_leaves_nothing(offline_home, name):
    info = REMOTE_DATASETS[name]
    with pytest.raises(DatasetUnavailable) as caught:
        remote.download(name)
    message = str(caught.value)
    host = info.urls[0].split("/")[2]
    assert f"could not reach {host}: " in message and "Temporary failure" in message
    assert info.urls[0] in message and str(remote.dataset_folder(name)) in message
    assert all_files(offline_home) == []  # no partial or temporary file anywhere
    assert remote.missing_files(name)


def test_medmnist_download_writes_file_and_reports_progress(offline_home, monkeypatch):
    from medmnist.info import INFO

    payload, truth = medmnist_npz("pneumoniamnist")
    monkeypatch.setitem(INFO["pneumoniamnist"], "MD5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(remote, "CHUNK", 512)
    asked = serve(monkeypatch, {INFO["pneumoniamnist"]["url"]: payload})
    progress = []
    folder = remote.download("pneumoniamnist", on_progress=lambda d, t: progress.append((d, t)))
    assert asked == [INFO["pneumoniamnist"]["url"]]
    assert folder == offline_home / "datasets" / "medmnist"
    assert (folder / "pneumoniamnist.npz").read_bytes() == payload
    assert all_files(offline_home) == ["datasets/medmnist/pneumoniamnist.npz"]
    assert progress[0] == (0, len(payload)) and progress[-1] == (len(payload), len(payload))
    assert len(progress) > 3 and [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert sorted(ids_of(remote.load_remote("pneumoniamnist"))) == sorted(truth)
    assert remote.download("pneumoniamnist") == folder and len(asked) == 1  # present: no fetch


def test_medmnist_download_refuses_wrong_md5(offline_home, monkeypatch):
    from medmnist.info import INFO

    payload, _ = medmnist_npz("dermamnist")
    serve(monkeypatch, {INFO["dermamnist"]["url"]: payload})
    with pytest.raises(DatasetUnavailable, match=f"expected {INFO['dermamnist']['MD5']}: refused"):
        remote.download("dermamnist")
    assert all_files(offline_home) == []
    assert remote.describe_status("dermamnist") == "not downloaded: missing dermamnist.npz"


def test_medmnist_download_cut_midway_leaves_no_partial_file(offline_home, monkeypatch):
    from medmnist.info import INFO

    payload, _ = medmnist_npz("pathmnist")
    monkeypatch.setattr(remote, "CHUNK", 256)
    serve(monkeypatch, {INFO["pathmnist"]["url"]: payload}, fail_after=1024)
    progress = []
    with pytest.raises(DatasetUnavailable, match="could not reach zenodo.org: connection reset"):
        remote.download("pathmnist", on_progress=lambda d, t: progress.append(d))
    assert progress[-1] == 1024  # it had started writing
    assert all_files(offline_home) == []


def test_torchvision_download_moves_only_finished_files_into_place(offline_home, monkeypatch):
    import torchvision.datasets as tvd

    info = REMOTE_DATASETS["mnist"]
    served, resources = {}, []
    for split, per in (("train", 3), ("t10k", 2)):
        images, labels = mnist_split(np.arange(10 * per), np.repeat(np.arange(10), per))
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            gz = gzip.compress(idx_bytes(array))
            file = f"{split}-{kind}-ubyte.gz"
            served[tvd.MNIST.mirrors[0] + file] = gz
            resources.append((file, hashlib.md5(gz).hexdigest()))
    monkeypatch.setattr(tvd.MNIST, "resources", resources)  # torchvision checks these md5s
    serve(monkeypatch, served)
    progress = []
    folder = remote.download("mnist", on_progress=lambda d, t: progress.append((d, t)))
    assert folder == remote.dataset_folder("mnist") and progress == [(0, 1), (1, 1)]
    assert all_files(offline_home) == sorted(f"datasets/torchvision/MNIST/raw/{f}" for f in info.files)
    data = remote.load_remote("mnist")
    assert len(data.y) == 50 and torch.bincount(data.y).tolist() == [5] * 10
    assert os.listdir(offline_home / "datasets" / "torchvision") == ["MNIST"]  # no staging left
