"""Datasets that are downloaded on request: torchvision's (MNIST, Fashion-MNIST, KMNIST, CIFAR-10,
SVHN) and MedMNIST's (DermaMNIST, PneumoniaMNIST, PathMNIST).

For: knowing which files each dataset needs and where they go (`home_dir()/datasets/<provider>`),
saying what is missing and how to get it (`missing_files`, `describe_status`, `DatasetUnavailable`),
downloading them without ever leaving a partial file (`download`), and reading them into a
`DatasetData` at the images' native size (`load_remote`): (N, C, H, W) float32 in [0, 1], C = 1
or 3. The official train and test (and MedMNIST's val) splits are merged into one pool, because
the app makes its own fixed stratified test split; each class is capped at `per_class_cap`
images (a seeded, stratified draw) so lessons stay small enough for a CPU.

Not here: resizing or normalising for a backbone (the backbone's input layer does that), the
test split and label sampling (`engine.core.datasets`), caching loaded tensors (the caller's job),
progress bars (callers pass `on_progress`). Tests never reach the network: they write stand-in
files in each format and replace `urllib.request.urlopen`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlparse

import numpy as np
import torch

from engine.core.datatypes import DIGIT_NAMES, DatasetData, DatasetError
from engine.core.store import home_dir

CAP_SEED = 20240602  # fixed seed of the per-class cap: the same files always give the same pool
DEFAULT_CAP = 1000  # images kept per class unless asked otherwise
CHUNK = 1 << 20  # download read size in bytes
USER_AGENT = "transferlab"
COMMAND = "python -m engine download"

_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # names torchvision's MNIST reads
_CIFAR = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
          "test_batch", "batches.meta")
_ZENODO = "https://zenodo.org/records/10519652/files/"


class DatasetUnavailable(DatasetError):
    """The dataset's files are not on disk (or unreadable) and cannot be fetched now; the message
    names the missing files, the folder they go in, where to get them and the command to run."""


@dataclass(frozen=True)
class RemoteDataset:
    name: str  # registry key, also `python -m engine download <name>`
    title: str  # shown in pickers
    description: str  # one teaching sentence: what the images are
    provider: str  # "torchvision" or "medmnist": whose file format and downloader
    channels: int  # 1 (grey) or 3 (RGB): the C of the (N, C, H, W) images delivered
    size: int  # native side in pixels; images are delivered at (size, size), never resized
    subdir: str  # folder under the provider's root holding `files` ("" = the root itself)
    files: tuple[str, ...]  # file names exactly as the reader expects them on disk
    urls: tuple[str, ...]  # where the files come from (archives for some: see `by_hand`)
    by_hand: str  # what to do with what `urls` gives so that `files` appear
    licence: str  # terms of use, shown before downloading
    tv_class: str = ""  # torchvision.datasets class that downloads (and for MNIST-like, reads)
    class_names: tuple[str, ...] = ()  # fixed names; () = they come with the files

    def __post_init__(self):
        if self.provider not in ("torchvision", "medmnist"):
            raise ValueError(f"{self.name}: provider must be torchvision or medmnist")
        if self.channels not in (1, 3):
            raise ValueError(f"{self.name}: channels must be 1 or 3, got {self.channels}")


def _mnist_like(name, title, description, tv_class, mirror, licence, class_names):
    return RemoteDataset(name, title, description, "torchvision", 1, 28, f"{tv_class}/raw", _IDX,
                         tuple(f"{mirror}{f}.gz" for f in _IDX), "gunzip each .gz file", licence,
                         tv_class, class_names)


def _medmnist(name, title, description, channels, licence):
    return RemoteDataset(name, title, description, "medmnist", channels, 28, "", (f"{name}.npz",),
                         (f"{_ZENODO}{name}.npz?download=1",), f"save it as {name}.npz", licence)


REMOTE_DATASETS: dict[str, RemoteDataset] = {d.name: d for d in (
    _mnist_like("mnist", "MNIST digits (70,000, downloaded)",
                "Handwritten digits 0-9, white on black, scanned from US census and school forms.",
                "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "Yann LeCun and Corinna Cortes; CC BY-SA 3.0", DIGIT_NAMES),
    _mnist_like("fashion_mnist", "Fashion-MNIST",
                "Greyscale photos of clothes and shoes from Zalando's catalogue, 10 kinds.",
                "FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "Zalando Research; MIT licence",
                ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")),
    _mnist_like("kmnist", "Kuzushiji-MNIST",
                "Handwritten cursive Japanese (kuzushiji) characters from old books, 10 hiragana.",
                "KMNIST", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
                "ROIS-DS CODH, from NIJL's Kuzushiji dataset; CC BY-SA 4.0",
                ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
    RemoteDataset("cifar10", "CIFAR-10",
                  "Small colour photos of 10 kinds of everyday objects and animals (planes, cars, "
                  "birds, cats, deer, dogs, frogs, horses, ships, trucks).",
                  "torchvision", 3, 32, "cifar-10-batches-py", _CIFAR,
                  ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                  "extract the archive; the files needed are inside its cifar-10-batches-py folder",
                  "Alex Krizhevsky (2009); free to use, cite 'Learning Multiple Layers of Features "
                  "from Tiny Images'", "CIFAR10"),
    RemoteDataset("svhn", "SVHN house numbers",
                  "Digits of house numbers cropped from Google Street View photos, in colour.",
                  "torchvision", 3, 32, "", ("train_32x32.mat", "test_32x32.mat"),
                  ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                   "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"),
                  "keep the .mat files as they are",
                  "Netzer et al. (2011), Stanford; non-commercial use only", "SVHN", DIGIT_NAMES),
    _medmnist("dermamnist", "DermaMNIST (skin lesions)",
              "Dermatoscope images of pigmented skin lesions, 7 diagnoses.", 3,
              "CC BY-NC 4.0 (MedMNIST v2, from HAM10000)"),
    _medmnist("pneumoniamnist", "PneumoniaMNIST (chest X-rays)",
              "Paediatric chest X-rays, each normal or showing pneumonia.", 1,
              "CC BY 4.0 (MedMNIST v2, from Kermany et al. 2018)"),
    _medmnist("pathmnist", "PathMNIST (colon tissue)",
              "Microscope patches of stained colorectal tissue, 9 tissue types.", 3,
              "CC BY 4.0 (MedMNIST v2, from NCT-CRC-HE-100K)"),
)}


def get_remote(name: str) -> RemoteDataset:
    if name not in REMOTE_DATASETS:
        raise DatasetError(f"unknown downloadable dataset '{name}'; choose one of: "
                           f"{', '.join(REMOTE_DATASETS)}")
    return REMOTE_DATASETS[name]


def provider_root(provider: str) -> Path:
    """`home_dir()/datasets/<provider>`: read at call time, so TRANSFERLAB_HOME may change."""
    return home_dir() / "datasets" / provider


def dataset_folder(name: str) -> Path:
    """The exact folder that holds the dataset's files."""
    info = get_remote(name)
    root = provider_root(info.provider)
    return root / info.subdir if info.subdir else root


def missing_files(name: str) -> list[Path]:
    """The dataset's files not on disk yet (empty when it is ready to load)."""
    folder = dataset_folder(name)
    return [folder / f for f in get_remote(name).files if not (folder / f).is_file()]


def describe_status(name: str) -> str:
    """One line for a picker: 'ready (12.3 MB on disk)' or 'not downloaded: missing a, b'."""
    missing = missing_files(name)
    if missing:
        return "not downloaded: missing " + ", ".join(p.name for p in missing)
    folder = dataset_folder(name)
    size = sum((folder / f).stat().st_size for f in get_remote(name).files)
    return f"ready ({size / 1e6:.1f} MB on disk)"


def _unavailable_message(info: RemoteDataset, missing: list[Path]) -> str:
    folder = dataset_folder(info.name)
    return (f"{info.title} is not downloaded: missing {', '.join(p.name for p in missing)} in "
            f"{folder}. Fetch it with `{COMMAND} {info.name}`, or download "
            f"{' '.join(info.urls)} by hand ({info.by_hand}) and put the files in {folder}.")


# ---------------------------------------------------------------- reading

@dataclass(frozen=True)
class _Pool:
    images: np.ndarray  # (N, C, H, W) uint8, every official split concatenated
    labels: np.ndarray  # (N,) int64
    class_names: tuple[str, ...]
    splits: tuple[tuple[str, int], ...]  # (official split, images) in concatenation order


def _read_mnist_like(info: RemoteDataset, root: Path) -> _Pool:
    # torchvision's MNIST classes only check that the four idx files exist, so they read any
    # well-formed file, and we let them: `download=False`, never a network call.
    import torchvision.datasets as tvd

    cls = getattr(tvd, info.tv_class)
    parts = [cls(str(root), train=train, download=False) for train in (True, False)]
    return _Pool(np.concatenate([p.data.numpy() for p in parts])[:, None],  # (N, 1, 28, 28)
                 np.concatenate([p.targets.numpy() for p in parts]).astype(np.int64),
                 info.class_names, (("train", len(parts[0])), ("test", len(parts[1]))))


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers, strings, numbers and numpy arrays, and nothing else: a file
    put in the data folder by hand cannot run code on load (the spirit of weights_only=True)."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),  # bytes, protocol 2
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a dataset batch")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        entry = _ArraysOnly(f, encoding="latin1").load()
    # The official batches are Python 2 pickles (str keys under latin1); accept bytes keys too.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _read_cifar10(info: RemoteDataset, root: Path) -> _Pool:
    # Read the pickles ourselves rather than through torchvision's CIFAR10: its constructor
    # md5-checks every batch on every load (hashing 180 MB each time) and refuses any file that
    # is not byte-identical to the official one. The format is the one the CIFAR page documents
    # and torchvision reads (b"data" (N, 3072) uint8 as R, G, B planes of 32x32, b"labels"),
    # and integrity is checked once, when `download` has torchvision fetch the archive.
    folder = root / info.subdir
    batches = [_unpickle(folder / f) for f in info.files[:-1]]
    images = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    names = _unpickle(folder / "batches.meta")["label_names"]
    return _Pool(images.reshape(-1, 3, 32, 32),  # (N, 3, 32, 32): stored channel-first
                 np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches]),
                 tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names),
                 (("train", sum(len(b["labels"]) for b in batches[:-1])),
                  ("test", len(batches[-1]["labels"]))))


def _read_svhn(info: RemoteDataset, root: Path) -> _Pool:
    # Read with scipy as torchvision's SVHN does, without its per-load md5 check (see CIFAR-10).
    import scipy.io

    images, labels, splits = [], [], []
    for split, file in zip(("train", "test"), info.files):
        mat = scipy.io.loadmat(root / file)
        images.append(np.transpose(mat["X"], (3, 2, 0, 1)))  # (32, 32, 3, N) -> (N, 3, 32, 32)
        y = mat["y"].astype(np.int64).reshape(-1)  # (N, 1) -> (N,)
        labels.append(np.where(y == 10, 0, y))  # SVHN labels the digit 0 as 10
        splits.append((split, len(y)))
    return _Pool(np.concatenate(images), np.concatenate(labels), info.class_names, tuple(splits))


def _read_medmnist(info: RemoteDataset, root: Path) -> _Pool:
    from medmnist.info import INFO  # class names; importing medmnist is slow, so only here

    images, labels, splits = [], [], []
    with np.load(root / info.files[0], allow_pickle=False) as npz:
        for split in ("train", "val", "test"):
            x = npz[f"{split}_images"]  # (N, 28, 28) grey or (N, 28, 28, 3) RGB, uint8
            images.append(x[:, None] if x.ndim == 3 else np.transpose(x, (0, 3, 1, 2)))
            labels.append(npz[f"{split}_labels"].astype(np.int64).reshape(-1))  # (N, 1) -> (N,)
            splits.append((split, len(x)))
    label = INFO[info.name]["label"]
    return _Pool(np.concatenate(images), np.concatenate(labels),
                 tuple(label[str(i)] for i in range(len(label))), tuple(splits))


def _reader(info: RemoteDataset) -> Callable[[RemoteDataset, Path], _Pool]:
    if info.provider == "medmnist":
        return _read_medmnist
    return {"cifar10": _read_cifar10, "svhn": _read_svhn}.get(info.name, _read_mnist_like)


def cap_per_class(labels: np.ndarray, cap: Optional[int], seed: int = CAP_SEED) -> np.ndarray:
    """Sorted indices keeping at most `cap` of each class, drawn with a fixed seed (all if None).
    The same labels give the same indices, and a smaller cap keeps a subset of a larger one."""
    if cap is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:cap] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def load_remote(name: str, *, per_class_cap: Optional[int] = DEFAULT_CAP) -> DatasetData:
    """Read a downloaded dataset: every official split merged, at most `per_class_cap` images per
    class (None keeps all), at native size. Raises DatasetUnavailable when files are missing or
    unreadable; nothing is downloaded here."""
    info = get_remote(name)
    if per_class_cap is not None and per_class_cap < 1:
        raise DatasetError(f"per_class_cap must be a positive number of images, got {per_class_cap}")
    missing = missing_files(name)
    if missing:
        raise DatasetUnavailable(_unavailable_message(info, missing))
    root = provider_root(info.provider)
    try:
        pool = _reader(info)(info, root)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AssertionError, EOFError,
            RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise DatasetUnavailable(
            f"{info.title}: the files in {dataset_folder(name)} are unreadable ({type(err).__name__}: "
            f"{err}); delete them and run `{COMMAND} {name}`") from err
    want = (info.channels, info.size, info.size)
    if pool.images.shape[1:] != want or len(pool.labels) != len(pool.images):
        raise DatasetUnavailable(f"{info.title}: images are {pool.images.shape[1:]} with "
                                 f"{len(pool.labels)} labels, expected {len(pool.images)} of {want}; "
                                 f"delete the files in {dataset_folder(name)} and run "
                                 f"`{COMMAND} {name}`")
    if len(pool.labels) and (pool.labels.min() < 0 or pool.labels.max() >= len(pool.class_names)):
        raise DatasetUnavailable(f"{info.title}: labels outside 0..{len(pool.class_names) - 1}; "
                                 f"delete the files in {dataset_folder(name)} and run "
                                 f"`{COMMAND} {name}`")
    keep = cap_per_class(pool.labels, per_class_cap)
    x = torch.from_numpy(pool.images[keep]).float().div_(255.0)  # (N, C, H, W) in [0, 1]
    splits = " + ".join(f"{split} ({n:,})" for split, n in pool.splits)
    cap_text = "no cap" if per_class_cap is None else f"at most {per_class_cap:,} per class"
    return DatasetData(
        name=name, title=info.title, x=x.contiguous(),
        y=torch.from_numpy(pool.labels[keep].copy()),  # (N,) int64
        class_names=pool.class_names,
        preprocessing={
            "source": (f"torchvision.datasets.{info.tv_class} files" if info.tv_class
                       else f"MedMNIST v2 file {info.files[0]}"),
            "original_size": f"{info.size}x{info.size}",
            "channels": "1 (grey)" if info.channels == 1 else "3 (RGB)",
            "scaling": "pixel / 255",
            "resize": "none: native size",
            "splits": f"official {splits} merged into one pool; the app makes its own test split",
            "per_class_cap": "none" if per_class_cap is None else str(per_class_cap),
            "kept": f"{len(keep):,} of {len(pool.labels):,} images ({cap_text}, drawn with "
                    f"fixed seed {CAP_SEED})",
            "licence": info.licence,
        },
    )


# ---------------------------------------------------------------- downloading

def _failure(info: RemoteDataset, url: str, err: BaseException) -> DatasetUnavailable:
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    reason = " ".join(str(reason).split())[:400]
    # torchvision's MNIST wraps each mirror's URLError into one RuntimeError; its text says so.
    network = isinstance(err, (urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror,
                               http.client.HTTPException)) or "urlopen error" in reason
    verb = "could not reach" if network else "could not download from"
    folder = dataset_folder(info.name)
    return DatasetUnavailable(
        f"{info.title}: {verb} {urlparse(url).hostname}: {reason}; download "
        f"{' '.join(info.urls)} by hand ({info.by_hand}) and put it in {folder}")


def _fetch(url: str, target: Path, md5: str,
           on_progress: Optional[Callable[[int, int], None]]) -> None:
    """Download `url` to `target` via a temporary file in the same folder, reporting
    (bytes_done, bytes_total; 0 when the server does not say); the file appears only whole and
    with the right md5. Network errors propagate (OSError, http.client.HTTPException)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as response:
            total, done = int(response.headers.get("Content-Length") or 0), 0
            if on_progress is not None:
                on_progress(0, total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
        if digest.hexdigest() != md5:
            raise DatasetUnavailable(f"{url} sent a file with md5 {digest.hexdigest()}, expected "
                                     f"{md5}: refused, nothing written to {target.parent}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download_torchvision(info: RemoteDataset,
                          on_progress: Optional[Callable[[int, int], None]]) -> None:
    # torchvision downloads (and md5-checks, and unpacks) into a private staging folder; only the
    # files we read are then moved into place, each with os.replace, so an interrupted download
    # never leaves a partial file where `missing_files` would count it as present.
    import torchvision.datasets as tvd

    cls = getattr(tvd, info.tv_class)
    steps = [{"split": "train"}, {"split": "test"}] if info.name == "svhn" else [{"train": True}]
    root = provider_root(info.provider)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".download-{info.name}-", dir=root))
    try:
        for done, kwargs in enumerate(steps):
            if on_progress is not None:
                on_progress(done, len(steps))
            cls(str(staging), download=True, **kwargs)
        folder = dataset_folder(info.name)
        folder.mkdir(parents=True, exist_ok=True)
        for f in info.files:
            os.replace(staging / info.subdir / f, folder / f)
        if on_progress is not None:
            on_progress(len(steps), len(steps))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download(name: str, *, on_progress: Optional[Callable[[int, int], None]] = None) -> Path:
    """Fetch a dataset's files into `dataset_folder(name)` (nothing is fetched if present) and
    return that folder. `on_progress(done, total)` counts bytes for MedMNIST; for torchvision,
    whose downloader prints its own bar and reports nothing back, it counts finished downloads.
    Raises DatasetUnavailable, saying what to do by hand, when the network or server fails."""
    info = get_remote(name)
    if not missing_files(name):
        return dataset_folder(name)
    try:
        if info.provider == "medmnist":
            from medmnist.info import INFO

            _fetch(INFO[name]["url"], dataset_folder(name) / info.files[0], INFO[name]["MD5"],
                   on_progress)
        else:
            _download_torchvision(info, on_progress)
    except DatasetUnavailable:
        raise
    except (OSError, RuntimeError, http.client.HTTPException) as err:
        raise _failure(info, info.urls[0], err) from err
    return dataset_folder(name)
