"""Transfer on text: a sweep whose target is a text corpus (`engine.core.text`), in the one
experiment protocol, so its runs are keyed, stored, shared as jobs and read by the same rule as
every image sweep's.

Strategies, by the names the image lessons use:
- `scratch`: nothing pretrained. Words counted from the labelled sentences alone (TF-IDF of
  words and word pairs, fitted on the training sentences only) and a logistic regression.
- `probe`: a linear probe on a frozen pretrained encoder (`engine.core.text_models`, MiniLM):
  each sentence's features once, cached, then a logistic regression on the labelled ones.
- `lora`: the encoder itself adapts, through LoRA (rank `LORA_RANK` on the attention's query
  and value projections, peft: 73,728 trainable weights of 22.7M) and a new linear head on the
  pooled features, `TUNE_STEPS` AdamW steps on the labelled sentences.
- `finetune`: every weight of the encoder trains, with the head, the same steps.
scratch and probe end in scikit-learn's `LogisticRegression` with the same `C` (1.0), so that
comparison is between what the features carry, not between optimisers. A run is one (strategy,
labels per class, seed); the labelled set is drawn as for images (`sample_labels`: stratified,
nested over sizes for one seed) from the pool outside the fixed test split (`split_target`,
30% of each class). Its record has the image runs' fields, so `summarize`, the readings and the
exports read it unchanged. With every label, the training set is the whole pool whatever the
seed and both classifiers are deterministic, so another seed would repeat the same run: "all"
is trained once (seed 0), and the rule, which needs three seeds, gives it no verdict rather than
a zero-width interval.

The tuned strategies run on one torch thread in a job's worker, as the features do.

A record also keeps the class the run predicted for each test sentence (`predictions`), so
`mistakes` can list the sentences each method got wrong without training again.

`TextShiftSpec` is domain shift on text: runs trained on a source corpus (`SOURCE_LABELS` per
class, a seeded draw) plus a few target labels, tested on the target; its runs of target labels
alone are the text sweep's own (the same keys, `run_plan`).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from engine import ENGINE_VERSION
from engine.core.datasets import (ALL_LABELS, SPLIT_SEED, TEST_FRACTION, labels_text,
                                  sample_labels, split_target)
from engine.core.datatypes import DatasetError
from engine.core.text import TextData, corpus_digest, is_text_dataset, load_text, text_title
from engine.core.text_models import TEXT_ENCODERS, cached_text_features
from engine.experiments.protocol import Unit, digest

if TYPE_CHECKING:
    import pandas as pd

TEXT_STRATEGIES = ("scratch", "probe", "lora", "finetune")  # and lora:r<rank>, LoRA of that rank
DETERMINISTIC = ("scratch", "probe")  # the same labels give the same run whatever the seed
TEXT_LORA_RANKS = (1, 2, 4, 8, 16, 32, 64)  # ranks a lora:r<rank> strategy may have
_LORA_NAME = re.compile(r"lora:r(\d+)")


def lora_rank(strategy: str) -> Optional[int]:
    """The LoRA rank of a text strategy ('lora': LORA_RANK; 'lora:r4': 4); None for the others."""
    if strategy == "lora":
        return LORA_RANK
    found = _LORA_NAME.fullmatch(strategy)
    return int(found.group(1)) if found else None


def is_text_strategy(strategy: str) -> bool:
    return strategy in TEXT_STRATEGIES or (
        _LORA_NAME.fullmatch(strategy) is not None and lora_rank(strategy) in TEXT_LORA_RANKS)
LORA_RANK, LORA_ALPHA = 8, 16
TUNE_STEPS, TUNE_BATCH = 30, 16  # AdamW steps on the labelled sentences, sentences per step
TUNE_LR = {"lora": 1e-3, "finetune": 5e-5}  # the encoder's rate (the head: HEAD_LR)
HEAD_LR = 1e-3
DEFAULT_TEXT_LABELS = (1, 5, 20, 100, ALL_LABELS)
MAX_TEXT_SEEDS = 20
SOURCE_LABELS = 500  # labels per class a source corpus lends a run (a seeded draw of its pool)
SCALE = 10.0  # the head reads unit-length features times this (logits of a useful size)


@dataclass(frozen=True)
class TextRunPlan:
    strategy: str
    labels_per_class: int  # of the target's labels (with a source: 0 = none of them)
    seed: int
    run_key: str
    target: str = ""
    source: str = ""  # a corpus whose SOURCE_LABELS per class (a seeded draw) join the training


def features_name(strategy: str, encoder: str) -> str:
    """What a strategy's classifier reads, as run keys write it."""
    info = TEXT_ENCODERS[encoder]
    model = f"{info.name}:{info.folder[-1]}"
    rank = lora_rank(strategy)
    if rank is not None:  # alpha = 2 x rank: the same scale alpha / r at every rank
        return (f"{model}:lora-r{rank}-a{2 * rank}-qv:{TUNE_STEPS}x{TUNE_BATCH}"
                f"@{TUNE_LR['lora']}")
    return {"scratch": "tfidf-words-1-2", "probe": model,
            "finetune": f"{model}:full:{TUNE_STEPS}x{TUNE_BATCH}@{TUNE_LR['finetune']}"}[strategy]


def run_plan(target: str, strategy: str, encoder: str, labels_per_class: int, seed: int,
             C: float, source: str = "") -> TextRunPlan:
    """One text run and its key: the corpus (by content), the split, what the classifier reads,
    the labels, the seed, and the source corpus when one joins the training."""
    key = {"kind": "text-run", "target": target, "corpus": corpus_digest(target),
           "split": [SPLIT_SEED, TEST_FRACTION], "C": C, "engine": ENGINE_VERSION,
           "strategy": strategy, "features": features_name(strategy, encoder),
           "labels_per_class": labels_per_class, "seed": seed}
    if source:
        key["source"] = [source, corpus_digest(source), SOURCE_LABELS]
    return TextRunPlan(strategy, labels_per_class, seed, digest(key), target, source)


class TextExperiment:
    """What both text experiments do the same way in the protocol: a unit per planned run
    (`plans()`), nothing pretrained, one `TextContext` for the runs."""

    def units(self) -> list[Unit]:
        return [plan_unit(p) for p in self.plans()]

    def pretraining(self):
        return None

    def workbench(self, device: torch.device, pretrained=None) -> "TextContext":
        return TextContext(self)

    def finished_text(self, unit: Unit, record: dict) -> str:
        return f"{unit.label}: {record['test_accuracy']:.1f}%"


@dataclass(frozen=True)
class TextSweepSpec(TextExperiment):
    target: str = "amazon_reviews"  # a text dataset (TEXT_DATASETS)
    encoder: str = "minilm"  # the pretrained encoder the probe reads (TEXT_ENCODERS)
    strategies: tuple[str, ...] = DETERMINISTIC
    labels_per_class: tuple[int, ...] = DEFAULT_TEXT_LABELS
    seeds: int = 3
    C: float = 1.0  # the logistic regressions' inverse regularisation strength

    def __post_init__(self):
        if not is_text_dataset(self.target):
            load_text(self.target)  # DatasetError: what is known, or why an upload is not
        if self.encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text encoder {self.encoder!r}; known: "
                             f"{', '.join(TEXT_ENCODERS)}")
        strategies = tuple(dict.fromkeys(self.strategies))
        unknown = [s for s in strategies if not is_text_strategy(s)]
        if not strategies or unknown:
            raise ValueError(f"a text sweep compares {', '.join(TEXT_STRATEGIES)} (or "
                             f"lora:r<rank>, rank among {', '.join(map(str, TEXT_LORA_RANKS))})"
                             + (f"; not {', '.join(unknown)}" if unknown else ""))
        labels = tuple(sorted(dict.fromkeys(self.labels_per_class), key=lambda k: (k == ALL_LABELS, k)))
        if not labels or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in labels):
            raise ValueError("labels per class are positive whole numbers (or all)")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) \
                or not 1 <= self.seeds <= MAX_TEXT_SEEDS:
            raise ValueError(f"seeds must be a whole number from 1 to {MAX_TEXT_SEEDS}")
        if not 0 < self.C < 1e6:
            raise ValueError("C must be a positive number")
        object.__setattr__(self, "strategies", strategies)
        object.__setattr__(self, "labels_per_class", labels)

    # ---- the experiment protocol -----------------------------------------------------------

    def key(self) -> str:
        return digest({"kind": "text-sweep", **asdict(self)})

    def check(self) -> None:
        data = load_text(self.target)
        split = split_target(data.y)
        most = int(split.pool_counts(data.y, data.n_classes).min())
        too_many = [k for k in self.labels_per_class if k > most]
        if too_many:
            raise DatasetError(f"{self.target} holds at most {most} training labels per class "
                               f"outside its test split; {max(too_many)} is too many (use 'all' "
                               "for every label)")
        if set(self.strategies) - {"scratch"}:
            TEXT_ENCODERS[self.encoder].path()  # installed (DatasetError says how otherwise)

    def plans(self) -> list[TextRunPlan]:
        """Every run, seed-major (every curve gains a point early, the few-label sizes first);
        "all" labels once."""
        return [run_plan(self.target, s, self.encoder, k, seed, self.C)
                for seed in range(self.seeds) for k in self.labels_per_class
                for s in self.strategies
                if seed == 0 or k != ALL_LABELS or s not in DETERMINISTIC]



def plan_unit(plan: TextRunPlan) -> Unit:
    where = f" on {plan.target}" if plan.source else ""
    added = f" + {plan.source} ({SOURCE_LABELS}/class)" if plan.source else ""
    return Unit(plan.run_key, f"{plan.strategy}{where}, {labels_text(plan.labels_per_class)}"
                              f"/class{added}, seed {plan.seed}"
                if not plan.source or plan.labels_per_class else
                f"{plan.strategy} on {plan.target}, {plan.source} only "
                f"({SOURCE_LABELS}/class), seed {plan.seed}", plan)


@dataclass
class Corpus:
    """One corpus as the runs read it: its sentences, labels, fixed split and (once a probe
    needs them) its sentence features."""

    data: TextData
    split: object
    y: np.ndarray
    features: Optional[np.ndarray] = None


class TextContext:
    """What a text experiment's runs share: the corpora, their splits, the encoder's features
    (computed once per corpus, when a probe first needs them). Runs are cheap (a logistic
    regression), one at a time."""

    concurrency: Optional[int] = 1

    def __init__(self, spec):
        self.spec = spec
        self._corpora: dict[str, Corpus] = {}
        self.say = None  # set by the backend: a progress line for shared work

    def corpus(self, name: str) -> Corpus:
        if name not in self._corpora:
            data = load_text(name)
            self._corpora[name] = Corpus(data, split_target(data.y), data.y.numpy())
        return self._corpora[name]

    def features(self, name: str) -> np.ndarray:
        corpus = self.corpus(name)
        if corpus.features is None:
            encoder = TEXT_ENCODERS[self.spec.encoder]
            title = text_title(corpus.data.name)

            def on_batch(done: int, total: int) -> None:
                if self.say is not None:
                    self.say(f"Sentence features of {title}: {done:,} of {total:,} sentences "
                             f"({encoder.name}, once; cached for every later run)")
            corpus.features = cached_text_features(
                encoder.name, encoder.path(), encoder.weights_sha256, corpus.data.texts,
                corpus.data.digest, on_batch).numpy()
        return corpus.features

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        return list(todo)

    def train(self, unit: Unit, should_stop, say=None) -> Optional[dict]:
        if should_stop():
            return None
        plan: TextRunPlan = unit.spec
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        target = self.corpus(plan.target)
        idx = (sample_labels(target.data.y, target.split, plan.labels_per_class, plan.seed)
               if not plan.source or plan.labels_per_class else np.zeros(0, dtype=np.int64))
        test = target.split.test_idx
        if plan.strategy not in DETERMINISTIC:
            predicted, trainable, steps = self.tune(plan, target, idx, test, should_stop)
            if predicted is None:
                return None
            return self.record(plan, idx, predicted, started, steps, trainable)
        # the training sentences: the target's labelled ones, and a source's when one joins
        parts = [(target, idx)]
        if plan.source:
            source = self.corpus(plan.source)
            parts.insert(0, (source, sample_labels(source.data.y, source.split,
                                                   SOURCE_LABELS, plan.seed)))
        train_y = np.concatenate([c.y[i] for c, i in parts])
        if plan.strategy == "scratch":
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
            train_x = vectorizer.fit_transform([c.data.texts[j] for c, i in parts for j in i])
            test_x = vectorizer.transform([target.data.texts[j] for j in test])
        else:
            train_x = np.concatenate([self.features(c.data.name)[i] for c, i in parts])
            test_x = self.features(target.data.name)[test]
        classifier = LogisticRegression(C=self.spec.C, max_iter=2000, random_state=plan.seed)
        classifier.fit(train_x, train_y)
        return self.record(plan, idx, classifier.predict(test_x), started,
                           int(classifier.n_iter_.max()),
                           int(classifier.coef_.size + classifier.intercept_.size),
                           n_train=len(train_y))

    def tune(self, plan: TextRunPlan, target: Corpus, idx, test, should_stop):
        """LoRA or full fine-tuning of the encoder with a new head: (the class predicted for each
        test sentence, trainable weights, steps), or (None, ...) when stopped part-way."""
        import os

        from engine.core.text_models import WORKER_ENV, load_encoder, mean_pooled

        encoder = TEXT_ENCODERS[self.spec.encoder]
        threads = torch.get_num_threads()
        if os.environ.get(WORKER_ENV) == "1":
            torch.set_num_threads(1)
        try:
            torch.manual_seed(plan.seed)
            tokenizer, model = load_encoder(encoder.path(), encoder.weights_sha256)
            rank = lora_rank(plan.strategy)
            if rank is not None:
                import warnings

                from peft import LoraConfig, get_peft_model

                warnings.filterwarnings("ignore", category=FutureWarning,
                                        module=r"transformers\..*")  # peft asks a renamed property
                model = get_peft_model(model, LoraConfig(
                    r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                    target_modules=["query", "value"]))
            head = torch.nn.Linear(model.config.hidden_size, target.data.n_classes)
            trainable = [p for p in model.parameters() if p.requires_grad]
            rate = TUNE_LR["lora" if rank is not None else plan.strategy]
            optimizer = torch.optim.AdamW([{"params": trainable, "lr": rate},
                                           {"params": head.parameters(), "lr": HEAD_LR}])
            generator = torch.Generator().manual_seed(plan.seed)
            texts = [target.data.texts[i] for i in idx]
            labels = torch.as_tensor(target.y[idx])
            model.train()
            for _ in range(TUNE_STEPS):
                if should_stop():
                    return None, 0, 0
                pick = torch.randint(len(texts), (min(TUNE_BATCH, len(texts)),), generator=generator)
                batch = tokenizer([texts[i] for i in pick], padding=True, truncation=True,
                                  max_length=128, return_tensors="pt")
                loss = torch.nn.functional.cross_entropy(
                    head(mean_pooled(model, batch) * SCALE), labels[pick])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                from engine.core.text_models import embed

                features = embed([target.data.texts[i] for i in test], tokenizer, model)
                predicted = head(features * SCALE).argmax(1).numpy()
            count = sum(p.numel() for p in trainable) + sum(p.numel() for p in head.parameters())
            return predicted, count, TUNE_STEPS
        finally:
            torch.set_num_threads(threads)

    def record(self, plan: TextRunPlan, idx, predicted: np.ndarray, started: float, steps: int,
               trainable: int, n_train: Optional[int] = None) -> dict:
        """The run's record: the image runs' fields, and the class it predicted for each test
        sentence (`predictions`, one digit each, in the split's order: the error table reads it)."""
        target = self.corpus(plan.target)
        n_classes = target.data.n_classes
        test_accuracy = float((predicted == target.y[target.split.test_idx]).mean() * 100.0)
        return {
            "strategy": plan.strategy,
            "labels_per_class": (round(len(idx) / n_classes)
                                 if plan.labels_per_class == ALL_LABELS and not plan.source
                                 else plan.labels_per_class),
            "all_labels": plan.labels_per_class == ALL_LABELS and not plan.source,
            "seed": plan.seed,
            "test_accuracy": round(test_accuracy, 4),
            "train_seconds": round(time.perf_counter() - started, 4),
            "device": "cpu",
            "precision": "fp64",
            "n_train": int(len(idx) if n_train is None else n_train),
            "steps": steps,
            "trainable": trainable,
            "backbone": "tfidf" if plan.strategy == "scratch" else self.spec.encoder,
            "source": "none" if plan.strategy == "scratch" else f"{self.spec.encoder} pretraining",
            "target": target.data.name,
            "train_source": plan.source,
            "predictions": "".join(str(int(c)) for c in predicted),
            "code_version": ENGINE_VERSION,
            "run_key": plan.run_key,
        }


SHIFT_SOURCE = "movie_reviews"
SHIFT_TARGETS = ("amazon_reviews", "tweets", "nyt_editorials")
SHIFT_ADDED = (0, 5, 20, 100)


@dataclass(frozen=True)
class TextShiftSpec(TextExperiment):
    """Domain shift on text: a classifier trained on one corpus (the source, `SOURCE_LABELS`
    labels per class, a seeded draw) and tested on others, then adapted with a few labels of
    each target; beside it, the same target labels alone, and `SOURCE_LABELS` per class of the
    target itself (what the source's labels would be worth in the target's own domain).

    Runs per target, strategy and seed: source + k target labels for each k of `added` (0:
    the source alone); k target labels alone for each k > 0 (the text sweep's own runs, by the
    same keys, so either experiment reuses the other's); `SOURCE_LABELS` target labels alone.
    Every side is a seeded draw, so every comparison has seeds and the rule reads it."""

    source: str = SHIFT_SOURCE
    targets: tuple[str, ...] = SHIFT_TARGETS
    strategies: tuple[str, ...] = DETERMINISTIC
    added: tuple[int, ...] = SHIFT_ADDED  # target labels per class beside the source's
    seeds: int = 3
    encoder: str = "minilm"
    C: float = 1.0

    def __post_init__(self):
        targets = tuple(dict.fromkeys(self.targets))
        for name in (self.source, *targets):
            if not is_text_dataset(name):
                load_text(name)  # DatasetError: what is known, or why an upload is not
        if not targets or self.source in targets:
            raise ValueError("a shift is tested on at least one corpus other than its source")
        strategies = tuple(dict.fromkeys(self.strategies))
        if not strategies or set(strategies) - set(DETERMINISTIC):
            raise ValueError(f"a shift compares {' and '.join(DETERMINISTIC)}")
        added = tuple(sorted(dict.fromkeys(self.added)))
        if not added or any(isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < SOURCE_LABELS
                            for k in added):
            raise ValueError(f"target labels per class added are whole numbers from 0 to "
                             f"{SOURCE_LABELS - 1}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) \
                or not 1 <= self.seeds <= MAX_TEXT_SEEDS:
            raise ValueError(f"seeds must be a whole number from 1 to {MAX_TEXT_SEEDS}")
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "strategies", strategies)
        object.__setattr__(self, "added", added)

    def key(self) -> str:
        return digest({"kind": "text-shift", **asdict(self), "source_labels": SOURCE_LABELS})

    def check(self) -> None:
        for name in (self.source, *self.targets):
            data = load_text(name)
            most = int(split_target(data.y).pool_counts(data.y, data.n_classes).min())
            need = max(SOURCE_LABELS, *self.added)
            if most < need:
                raise DatasetError(f"{name} holds at most {most} training labels per class "
                                   f"outside its test split; this shift needs {need}")
        if "probe" in self.strategies:
            TEXT_ENCODERS[self.encoder].path()

    def plans(self) -> list[TextRunPlan]:
        """Seed-major; within a seed, each target's runs, the few-label ones first."""
        out = []
        for seed in range(self.seeds):
            for target in self.targets:
                for k in self.added:
                    for s in self.strategies:
                        out.append(run_plan(target, s, self.encoder, k, seed, self.C, self.source))
                        if k:
                            out.append(run_plan(target, s, self.encoder, k, seed, self.C))
                for s in self.strategies:
                    out.append(run_plan(target, s, self.encoder, SOURCE_LABELS, seed, self.C))
        return out



def majority_baseline(target: str) -> float:
    """Test accuracy (%) of always answering the pool's most frequent class: the line a
    classifier has to clear."""
    data = load_text(target)
    split = split_target(data.y)
    counts = split.pool_counts(data.y, data.n_classes)
    majority = int(np.argmax(counts))
    return float((data.y.numpy()[split.test_idx] == majority).mean() * 100.0)


@dataclass(frozen=True)
class Mistakes:
    """What runs of one target, size and seed got wrong: every test sentence some run
    misclassified, with its true class and each run's answer (`table`), and counts."""

    table: "pd.DataFrame"  # sentence, true class, then one column per strategy (its answer)
    tested: int  # test sentences
    wrong: dict  # strategy -> test sentences it got wrong
    wrong_by_all: int  # test sentences every strategy got wrong


def mistakes(records: "pd.DataFrame") -> Optional[Mistakes]:
    """The error table of stored runs of one target that share a labelled set (one size, one
    seed, no source), one run per strategy; None when no run carries its predictions (runs
    stored before they were kept) or the records mix targets."""
    import pandas as pd

    runs = records[records["predictions"].notna()] if "predictions" in records else records.iloc[0:0]
    runs = runs.drop_duplicates("strategy")
    if runs.empty or runs["target"].nunique() != 1:
        return None
    data = load_text(str(runs["target"].iloc[0]))
    test = split_target(data.y).test_idx
    truth = data.y.numpy()[test]
    answers = {}
    for _, run in runs.iterrows():
        predicted = np.array([int(c) for c in str(run["predictions"])])
        if len(predicted) != len(test):  # another split or corpus: not these sentences
            return None
        answers[str(run["strategy"])] = predicted
    wrong = {s: a != truth for s, a in answers.items()}
    misses = np.sum(list(wrong.values()), axis=0)
    # the sentences some method got right first (where the methods differ), then the rest;
    # in the split's order within each
    rows = np.concatenate([np.flatnonzero(misses == n) for n in range(1, len(wrong) + 1)])
    names = data.class_names
    table = pd.DataFrame({"sentence": [data.texts[i] for i in test[rows]],
                          "true class": [names[c] for c in truth[rows]],
                          **{s: [names[c] for c in a[rows]] for s, a in answers.items()}})
    return Mistakes(table, len(test), {s: int(w.sum()) for s, w in wrong.items()},
                    int(np.logical_and.reduce(list(wrong.values())).sum()))
