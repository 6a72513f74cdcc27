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
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch

from engine import ENGINE_VERSION
from engine.core.datasets import (ALL_LABELS, SPLIT_SEED, TEST_FRACTION, labels_text,
                                  sample_labels, split_target)
from engine.core.datatypes import DatasetError
from engine.core.text import TEXT_DATASETS, load_text
from engine.core.text_models import TEXT_ENCODERS, cached_text_features
from engine.experiments.protocol import Unit, digest

TEXT_STRATEGIES = ("scratch", "probe", "lora", "finetune")
DETERMINISTIC = ("scratch", "probe")  # the same labels give the same run whatever the seed
LORA_RANK, LORA_ALPHA = 8, 16
TUNE_STEPS, TUNE_BATCH = 30, 16  # AdamW steps on the labelled sentences, sentences per step
TUNE_LR = {"lora": 1e-3, "finetune": 5e-5}  # the encoder's rate (the head: HEAD_LR)
HEAD_LR = 1e-3
DEFAULT_TEXT_LABELS = (1, 5, 20, 100, ALL_LABELS)
MAX_TEXT_SEEDS = 20
SCALE = 10.0  # the head reads unit-length features times this (logits of a useful size)


@dataclass(frozen=True)
class TextRunPlan:
    strategy: str
    labels_per_class: int
    seed: int
    run_key: str


@dataclass(frozen=True)
class TextSweepSpec:
    target: str = "amazon_reviews"  # a text dataset (TEXT_DATASETS)
    encoder: str = "minilm"  # the pretrained encoder the probe reads (TEXT_ENCODERS)
    strategies: tuple[str, ...] = DETERMINISTIC
    labels_per_class: tuple[int, ...] = DEFAULT_TEXT_LABELS
    seeds: int = 3
    C: float = 1.0  # the logistic regressions' inverse regularisation strength

    def __post_init__(self):
        if self.target not in TEXT_DATASETS:
            raise DatasetError(f"unknown text dataset {self.target!r}; known: "
                               f"{', '.join(TEXT_DATASETS)}")
        if self.encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text encoder {self.encoder!r}; known: "
                             f"{', '.join(TEXT_ENCODERS)}")
        strategies = tuple(dict.fromkeys(self.strategies))
        unknown = [s for s in strategies if s not in TEXT_STRATEGIES]
        if not strategies or unknown:
            raise ValueError(f"a text sweep compares {', '.join(TEXT_STRATEGIES)}"
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
        """Every run, seed-major (every curve gains a point early); "all" labels once."""
        data = load_text(self.target)
        encoder = TEXT_ENCODERS[self.encoder]
        common = {"kind": "text-run", "target": self.target, "corpus": data.digest,
                  "split": [SPLIT_SEED, TEST_FRACTION], "C": self.C, "engine": ENGINE_VERSION}
        model = f"{encoder.name}:{encoder.folder[-1]}"
        features = {"scratch": "tfidf-words-1-2", "probe": model,
                    "lora": f"{model}:lora-r{LORA_RANK}-a{LORA_ALPHA}-qv:{TUNE_STEPS}x{TUNE_BATCH}"
                            f"@{TUNE_LR['lora']}",
                    "finetune": f"{model}:full:{TUNE_STEPS}x{TUNE_BATCH}@{TUNE_LR['finetune']}"}
        return [TextRunPlan(s, k, seed, digest(dict(common, strategy=s, features=features[s],
                                                    labels_per_class=k, seed=seed)))
                for seed in range(self.seeds) for k in self.labels_per_class
                for s in self.strategies
                if seed == 0 or k != ALL_LABELS or s not in DETERMINISTIC]

    def units(self) -> list[Unit]:
        return [Unit(p.run_key, f"{p.strategy}, {labels_text(p.labels_per_class)}/class, "
                                f"seed {p.seed}", p) for p in self.plans()]

    def pretraining(self):
        return None

    def workbench(self, device: torch.device, pretrained=None) -> "TextContext":
        return TextContext(self)

    def finished_text(self, unit: Unit, record: dict) -> str:
        return f"{unit.label}: {record['test_accuracy']:.1f}%"


class TextContext:
    """What a text sweep's runs share: the corpus, its split, the encoder's features (computed
    once, when a probe first needs them). Runs are cheap (a logistic regression), one at a time."""

    concurrency: Optional[int] = 1

    def __init__(self, spec: TextSweepSpec):
        self.spec = spec
        self.data = load_text(spec.target)
        self.split = split_target(self.data.y)
        self.y = self.data.y.numpy()
        self._features: Optional[np.ndarray] = None
        self.say = None  # set by the backend: a progress line for shared work

    def features(self) -> np.ndarray:
        if self._features is None:
            encoder = TEXT_ENCODERS[self.spec.encoder]

            def on_batch(done: int, total: int) -> None:
                if self.say is not None:
                    self.say(f"Sentence features: {done:,} of {total:,} sentences "
                             f"({encoder.name}, once; cached for every later run)")
            self._features = cached_text_features(
                encoder.name, encoder.path(), encoder.weights_sha256, self.data.texts,
                self.data.digest, on_batch).numpy()
        return self._features

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        return list(todo)

    def train(self, unit: Unit, should_stop, say=None) -> Optional[dict]:
        if should_stop():
            return None
        plan: TextRunPlan = unit.spec
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        idx = sample_labels(self.data.y, self.split, plan.labels_per_class, plan.seed)
        test = self.split.test_idx
        if plan.strategy in ("lora", "finetune"):
            test_accuracy, trainable, steps = self.tune(plan, idx, test, should_stop)
            if test_accuracy is None:
                return None
            return self.record(plan, idx, test_accuracy, started, steps, trainable)
        if plan.strategy == "scratch":
            from sklearn.feature_extraction.text import TfidfVectorizer

            vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
            train_x = vectorizer.fit_transform([self.data.texts[i] for i in idx])
            test_x = vectorizer.transform([self.data.texts[i] for i in test])
        else:
            features = self.features()
            train_x, test_x = features[idx], features[test]
        classifier = LogisticRegression(C=self.spec.C, max_iter=2000, random_state=plan.seed)
        classifier.fit(train_x, self.y[idx])
        test_accuracy = float((classifier.predict(test_x) == self.y[test]).mean() * 100.0)
        return self.record(plan, idx, test_accuracy, started, int(classifier.n_iter_.max()),
                           int(classifier.coef_.size + classifier.intercept_.size))

    def tune(self, plan: TextRunPlan, idx, test, should_stop):
        """LoRA or full fine-tuning of the encoder with a new head: (test accuracy %, trainable
        weights, steps), or (None, ...) when stopped part-way."""
        import os

        from engine.core.text_models import WORKER_ENV, load_encoder, mean_pooled

        encoder = TEXT_ENCODERS[self.spec.encoder]
        threads = torch.get_num_threads()
        if os.environ.get(WORKER_ENV) == "1":
            torch.set_num_threads(1)
        try:
            torch.manual_seed(plan.seed)
            tokenizer, model = load_encoder(encoder.path(), encoder.weights_sha256)
            if plan.strategy == "lora":
                import warnings

                from peft import LoraConfig, get_peft_model

                warnings.filterwarnings("ignore", category=FutureWarning,
                                        module=r"transformers\..*")  # peft asks a renamed property
                model = get_peft_model(model, LoraConfig(
                    r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0,
                    target_modules=["query", "value"]))
            head = torch.nn.Linear(model.config.hidden_size, self.data.n_classes)
            trainable = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW([{"params": trainable, "lr": TUNE_LR[plan.strategy]},
                                           {"params": head.parameters(), "lr": HEAD_LR}])
            generator = torch.Generator().manual_seed(plan.seed)
            texts = [self.data.texts[i] for i in idx]
            labels = torch.as_tensor(self.y[idx])
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

                features = embed([self.data.texts[i] for i in test], tokenizer, model)
                predicted = head(features * SCALE).argmax(1).numpy()
            count = sum(p.numel() for p in trainable) + sum(p.numel() for p in head.parameters())
            return float((predicted == self.y[test]).mean() * 100.0), count, TUNE_STEPS
        finally:
            torch.set_num_threads(threads)

    def record(self, plan: TextRunPlan, idx, test_accuracy: float, started: float, steps: int,
               trainable: int) -> dict:
        n_classes = self.data.n_classes
        return {
            "strategy": plan.strategy,
            "labels_per_class": (round(len(idx) / n_classes) if plan.labels_per_class == ALL_LABELS
                                 else plan.labels_per_class),
            "all_labels": plan.labels_per_class == ALL_LABELS,
            "seed": plan.seed,
            "test_accuracy": round(test_accuracy, 4),
            "train_seconds": round(time.perf_counter() - started, 4),
            "device": "cpu",
            "precision": "fp64",
            "n_train": int(len(idx)),
            "steps": steps,
            "trainable": trainable,
            "backbone": "tfidf" if plan.strategy == "scratch" else self.spec.encoder,
            "source": "none" if plan.strategy == "scratch" else f"{self.spec.encoder} pretraining",
            "target": self.spec.target,
            "code_version": ENGINE_VERSION,
            "run_key": plan.run_key,
        }


def majority_baseline(target: str) -> float:
    """Test accuracy (%) of always answering the pool's most frequent class: the line a
    classifier has to clear."""
    data = load_text(target)
    split = split_target(data.y)
    counts = split.pool_counts(data.y, data.n_classes)
    majority = int(np.argmax(counts))
    return float((data.y.numpy()[split.test_idx] == majority).mean() * 100.0)
