"""Flashcards, quizzes and the advisor, engine side: the content files, FSRS scheduling against
the published formulas, progress that outlives its process, the Anki export, questions from
stored runs, predictions against results, and the advisor's decisions."""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import re
import sqlite3
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from conftest import ROOT
from engine.study.content import (ContentError, Question, length_cue, length_cue_problems,
                                  load_banks, load_content, load_decks)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


# --- content -------------------------------------------------------------------------------

def test_every_deck_and_bank_parses_with_enough_unique_items():
    content = load_content()
    cards, questions = content.cards, content.questions
    assert len(cards) >= 60 and len(questions) >= 40
    assert len({c.id for c in cards}) == len(cards)
    assert len({q.id for q in questions}) == len(questions)
    assert len({d.id for d in content.decks}) == len(content.decks)
    for q in questions:
        assert q.answer in q.options and len(set(q.options)) == len(q.options)
        assert q.explanation.strip() and q.prompt.strip()
    assert sum(q.kind == "scenario" for q in questions) >= 10


@pytest.mark.parametrize("idea", [
    "feature", "edges", "linear probe", "10 to 100 times", "partial", "discriminative",
    "2.6", "gradual unfreezing", "slanted triangular", "LoRA", "r × (d_in + d_out)",
    "adapter", "prefix tuning", "prompt tuning", "QLoRA", "NF4", "instruction", "RLHF",
    "catastrophic forgetting", "EWC", "Fisher", "replay", "negative transfer", "domain shift",
    "domain adaptation", "probing", "CKA", "foundation model", "in-context", "few-shot",
    "zero-shot", "Yosinski", "ULMFiT", "500 labelled medical images", "tens of thousands",
    "storage", "tasks",
    # the gaps a subject expert looks for (issue 18)
    "data augmentation", "about 10 times the backbone's", "Learning without Forgetting",
    "Synaptic Intelligence", "progressive", "CLIP", "DINOv2", "temperature scaling",
    "overconfident", "tokenizer", "vocabulary", "BiT", "25% faster", "no added latency",
    "Guanaco", "rsLoRA", "use_rslora", "learns less",
])
def test_content_covers_each_idea_of_the_lessons(idea):
    assert idea.lower() in _all_text()


@functools.lru_cache(maxsize=1)
def _all_text() -> str:
    content = load_content()
    return " ".join([c.front + " " + c.back for c in content.cards]
                    + [q.prompt + " " + " ".join(q.options) + " " + q.explanation
                       for q in content.questions]).lower()


def test_content_states_the_checked_numbers():
    content = load_content()
    cards = {c.id: c for c in content.cards}
    questions = {q.id: q for q in content.questions}
    # LoRA on GPT-3 175B: 96 layers, Wq and Wv, width 12,288, rank 1
    assert f"{96 * 2 * 1 * (12288 + 12288):,}" in cards["lora-gpt3-count"].back
    assert f"{8 * (1024 + 4096):,}" == questions["q-lora-count"].answer
    assert f"{4096 * 4096:,}" in cards["lora-count"].back
    assert f"{8 * (4096 + 4096):,}" in cards["lora-count"].back
    assert f"{0.01 / 2.6:.4f}" in questions["q-ulmfit-factor"].answer
    assert "(λ/2) Σ_i F_i (θ_i − θ*_i)²" in cards["ewc-penalty"].back
    assert "A is (r × d_in)" in cards["lora-shapes"].back and "B is (d_out × r)" in \
        cards["lora-shapes"].back
    assert "48 GB" in cards["qlora-65b"].back and "65" in cards["qlora-65b"].front
    assert "99.3%" in cards["qlora-guanaco"].back and "24 hours" in cards["qlora-guanaco"].back
    assert "76.8%" in cards["fnd-bit-few-shot"].back and "10 labels per class" in \
        cards["fnd-bit-few-shot"].front
    assert "25%" in cards["lora-speedup"].back and "25%" in questions["q-lora-speedup"].answer
    assert "645,000" in cards["fnd-yosinski-halves"].back


# Corrections a subject expert asked for (issue 18): what each now says, and its citation.
CORRECTED = {  # id -> (text it must contain, a name its source must cite)
    "lora-alpha-r-why": ("rsLoRA", "Kalajdzievski"),
    "lora-rslora": ("α/√r", "Kalajdzievski"),
    "q-lora-scale": ("α/√r", "Kalajdzievski"),
    "q-rslora": ("α/√r", "Kalajdzievski"),
    "lora-forgets-less": ("learns less", "Biderman"),
    "lora-removable": ("unload it", "Biderman"),
    "q-lora-forgetting": ("learned less", "Biderman"),
    "s-legal-forgetting": ("learns less", "Biderman"),
    "label-shift": ("p(x | y) stays fixed", "Lipton"),
    "q-label-shift": ("p(x | y) is fixed", "Lipton"),
    "fnd-yosinski-halves": ("645,000", "Yosinski"),
    "q-yosinski-boost": ("645,000", "Yosinski"),
}


@pytest.mark.parametrize("item_id", sorted(CORRECTED))
def test_corrected_claims_say_the_right_thing_and_cite_it(item_id):
    content = load_content()
    items = {c.id: c.front + " " + c.back for c in content.cards}
    items.update({q.id: " ".join([q.prompt, *q.options, q.explanation])
                  for q in content.questions})
    sources = {x.id: x.source for x in (*content.cards, *content.questions)}
    text, cited = CORRECTED[item_id]
    assert text in " ".join(items[item_id].split())
    assert cited in sources[item_id]


def test_no_text_repeats_a_corrected_error():
    content = load_content()
    for q in content.questions:  # α/√r is right (rsLoRA): never a wrong option
        assert not any("√r" in o for o in q.options if o != q.answer), q.id
    text = _all_text()
    assert "600,000" not in text  # Yosinski's halves had about 645,000 images each
    for item in (*content.cards, *content.questions):
        words = " ".join([getattr(item, f, "") for f in ("front", "back", "prompt",
                                                           "explanation")]).lower()
        if "lora" in words and "forget" in words:  # forgets less because it learns less
            assert "Biderman" in item.source, item.id
    topics = {q.id: q.topic for q in content.questions}
    assert topics["q-stlr"] == "Learning-rate schedules" and topics["q-ulmfit-100"] == "ULMFiT"
    assert all("unfreez" in q.prompt.lower() for q in content.questions
               if q.topic == "Gradual unfreezing")


def test_a_learner_cannot_score_by_picking_the_longest_or_shortest_option():
    banks = load_banks()
    for questions in [[q for b in banks for q in b.questions], *(b.questions for b in banks)]:
        assert length_cue_problems(questions) == []
    everything = length_cue(q for b in banks for q in b.questions)
    # Measured when this check was written: 25% chance, 26% for always picking the longest
    # option (it was 84% before the bank was rewritten: the answer was the longest in 46 of 56).
    assert everything.longest_score < 0.30 and everything.shortest_score < 0.30


def _question(qid: str, answer: str, *others: str) -> Question:
    return Question(qid, "P", (answer, *others), answer, "E")


def test_the_length_check_fails_on_a_bank_where_length_gives_the_answer_away():
    # A bank written the way this one used to be: the right answer is the long, careful one.
    giveaway = [_question(f"q{i}", "The careful, qualified and complete right answer", "No",
                          "Never", "Always") for i in range(20)]
    problems = length_cue_problems(giveaway)
    assert len(problems) == 3  # longest scores 100%; strictly longest 20/20; 1.5x in 20
    assert "scores 100%" in problems[0] and "1.5x" in problems[-1]
    shortest = [_question(f"q{i}", "Yes", "A longer wrong option", "Another long wrong one",
                          "A third long wrong option") for i in range(20)]
    assert "shortest option scores 100%" in length_cue_problems(shortest)[0]
    # Lengths unrelated to the answer: the right one longest in 1 of 4, as chance would have it.
    fair = [_question(f"q{i}", *sorted(["aaaa", "bbbbb", "cccccc", "ddddddd"],
                                       key=lambda o, i=i: (len(o) + i) % 4)) for i in range(20)]
    assert length_cue_problems(fair) == []


def test_length_cue_counts_ties_and_standouts():
    cue = length_cue([_question("a", "long answer", "short", "tiny"),  # longest, 2.2x
                      _question("b", "same", "four", "long option"),  # not the longest
                      _question("c", "abc", "xyz", "uvw")])  # a three-way tie
    assert (cue.questions, cue.strictly_longest, cue.far_longest) == (3, 1, 1)
    assert cue.chance == pytest.approx(1 / 3)
    assert cue.longest_score == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert cue.shortest_score == pytest.approx((0 + 1 / 2 + 1 / 3) / 3)
    assert cue.margin == pytest.approx(2 * math.sqrt((1 / 3) * (2 / 3) / 3))


STOPWORDS = set("""that this with from they their them then than what which when where while
have been were does each only into more most much many some such also very just over under
about every other others because since would could should there these those your will whose
being after before until again once itself""".split())


def _words(text: str) -> set[str]:
    """Content words, cut to 5 letters so that 'overfit' meets 'overfitting'."""
    tokens = re.findall(r"[^\W_]+(?:[.,'’/×-][^\W_]+)*", text.lower())
    return {t[:5] for t in tokens
            if (len(t) >= 4 or any(c.isdigit() for c in t)) and t not in STOPWORDS}


def test_each_explanation_speaks_to_every_wrong_option():
    """The quiz promises to say what is wrong with each other option: every wrong option's
    own words (those not in the right answer) must come up in the explanation. Options that
    only rearrange the answer's words (p(x | y) against p(y | x)) cannot be checked this way."""
    for q in load_content().questions:
        explanation = _words(q.explanation)
        for option in q.options:
            own = _words(option) - _words(q.answer)
            if option != q.answer and own:
                assert own & explanation, f"{q.id}: nothing said about {option!r}"


def test_no_two_questions_or_two_cards_ask_the_same_thing():
    """Near-duplicates within the quiz, or within the decks, waste a learner's time: no two may
    share 80% of the content words of the shorter (cloze cards, which share their frame by
    design, are left out)."""
    content = load_content()
    groups = [[(c.id, _words(c.front + " " + c.back)) for c in content.cards
               if "[…]" not in c.front],
              [(q.id, _words(q.prompt + " " + q.answer)) for q in content.questions]]
    for group in groups:
        for (a, wa), (b, wb) in itertools.combinations(group, 2):
            assert len(wa & wb) < 0.8 * min(len(wa), len(wb)), (a, b)


@pytest.mark.parametrize("source,ok", [
    ("Hu et al. (2021), LoRA", True), ("Kalajdzievski 2023", True),
    ("Hu et al., LoRA", False), ("", False), ("x (2021) " + "y" * 300, False)])
def test_a_source_must_cite_a_dated_publication(tmp_path, source, ok):
    banks, decks = tmp_path / "banks", tmp_path / "decks"
    banks.mkdir(), decks.mkdir()
    _write(banks / "bank.yaml", "id: b\ntitle: T\ndescription: D\nquestions:\n"
           f"  - {{id: q1, prompt: P, options: [a, b], answer: a, explanation: E, "
           f"source: '{source}'}}\n")
    _write(decks / "deck.yaml", GOOD_CARD.replace("back: B}", f"back: B, source: '{source}'}}"))
    if ok:
        assert load_banks(banks)[0].questions[0].source == source
        assert load_decks(decks)[0].cards[0].source == source
    else:
        with pytest.raises(ContentError, match="source"):
            load_banks(banks)
        with pytest.raises(ContentError, match="source"):
            load_decks(decks)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


GOOD_CARD = "id: d\ntitle: T\ndescription: D\ncards:\n  - {id: c1, front: F, back: B}\n"


@pytest.mark.parametrize("deck,message", [
    ("id: d\ntitle: T\ndescription: D\ncards: []\n", "non-empty list"),
    ("id: d\ntitle: T\ndescription: D\ncards:\n  - {id: c1, front: F}\n", "missing back"),
    ("id: d\ntitle: T\ndescription: D\ncards:\n  - {id: c1, front: F, back: B, bakc: x}\n",
     "unknown field"),
    ("id: d\ntitle: T\ndescription: D\ncards:\n  - {id: C 1, front: F, back: B}\n", "slug"),
    ("id: d\ntitle: T\ndescription: D\ncards:\n  - {id: c1, front: F, back: B}\n"
     "  - {id: c1, front: G, back: H}\n", "used twice"),
    ("id: d\ntitle: [T\n", "not valid YAML"),
])
def test_a_broken_deck_is_refused_with_a_clear_message(tmp_path, deck, message):
    _write(tmp_path / "deck.yaml", deck)
    with pytest.raises(ContentError, match=message):
        load_decks(tmp_path)


def test_card_ids_must_be_unique_across_decks(tmp_path):
    _write(tmp_path / "a.yaml", GOOD_CARD)
    _write(tmp_path / "b.yaml", GOOD_CARD.replace("id: d", "id: e"))
    with pytest.raises(ContentError, match="card id 'c1' is used twice"):
        load_decks(tmp_path)


def test_a_question_whose_answer_is_not_an_option_is_refused(tmp_path):
    _write(tmp_path / "bank.yaml", "id: b\ntitle: T\ndescription: D\nquestions:\n"
           "  - {id: q1, prompt: P, options: [a, b], answer: c, explanation: E}\n")
    with pytest.raises(ContentError, match="q1.*not one of its options"):
        load_banks(tmp_path)


# --- FSRS scheduling -----------------------------------------------------------------------

# FSRS-6 default parameters as published with the algorithm (py-fsrs 6.x).
W = (0.212, 1.2931, 2.3065, 8.2956, 6.4133, 0.8334, 3.0194, 0.001, 1.8722, 0.1666, 0.796,
     1.4835, 0.0614, 0.2629, 1.6483, 0.6014, 1.8729, 0.5425, 0.0912, 0.0658, 0.1542)
DECAY = -W[20]
FACTOR = 0.9 ** (1 / DECAY) - 1
AGAIN, HARD, GOOD, EASY = 1, 2, 3, 4


def _interval(s: float, retention: float) -> int:
    return max(1, round(s / FACTOR * (retention ** (1 / DECAY) - 1)))


def _d0(g: int) -> float:
    return W[4] - math.exp(W[5] * (g - 1)) + 1


def _next_d(d: float, g: int) -> float:
    damped = d + (-W[6] * (g - 3)) * (10 - d) / 9
    return min(max(W[7] * _d0(EASY) + (1 - W[7]) * damped, 1), 10)


def _retrievability(days: int, s: float) -> float:
    return (1 + FACTOR * days / s) ** DECAY


def _recall_s(d, s, r, g):
    return s * (1 + math.exp(W[8]) * (11 - d) * s ** -W[9] * (math.exp((1 - r) * W[10]) - 1)
                * (W[15] if g == HARD else 1) * (W[16] if g == EASY else 1))


def _forget_s(d, s, r):
    return min(W[11] * d ** -W[12] * ((s + 1) ** W[13] - 1) * math.exp((1 - r) * W[14]),
               s / math.exp(W[17] * W[18]))


def _expected_schedule(retention: float) -> list[timedelta]:
    """The published formulas, by hand, for: new Good, Good after 10 min, Good on the due day,
    Again on the next due day, then Good after the 10-minute relearning step."""
    out = [timedelta(minutes=10)]  # first learning step passed: on to the 10-minute step
    s, d = W[GOOD - 1], min(max(_d0(GOOD), 1), 10)
    s = s * max(math.exp(W[17] * (GOOD - 3 + W[18])) * s ** -W[19], 1.0)  # same-day review
    d = _next_d(d, GOOD)
    first = _interval(s, retention)
    out.append(timedelta(days=first))
    s, d = _recall_s(d, s, _retrievability(first, s), GOOD), _next_d(d, GOOD)
    second = _interval(s, retention)
    out.append(timedelta(days=second))
    s, d = _forget_s(d, s, _retrievability(second, s)), _next_d(d, AGAIN)
    out.append(timedelta(minutes=10))  # relearning step
    s = s * max(math.exp(W[17] * (GOOD - 3 + W[18])) * s ** -W[19], 1.0)
    out.append(timedelta(days=_interval(s, retention)))
    return out


@pytest.mark.parametrize("retention", [0.9, 0.8])
def test_intervals_on_a_fixed_history_follow_the_fsrs_formulas(tmp_path, retention):
    from engine.study.srs import SrsStore

    store = SrsStore(tmp_path / "srs.sqlite")
    store.set_retention("ada", retention)
    ratings = [GOOD, GOOD, GOOD, AGAIN, GOOD]
    now, got = T0, []
    for rating in ratings:
        card = store.review("ada", "lora-shapes", rating, now)
        got.append(card.due - now)
        now = card.due
    assert got == _expected_schedule(retention)
    assert [r.rating for r in store.history("Ada", "lora-shapes")] == ratings


def test_lower_desired_retention_gives_longer_intervals(tmp_path):
    from engine.study.srs import SrsStore

    store = SrsStore(tmp_path / "srs.sqlite")
    store.set_retention("strict", 0.95)
    store.set_retention("relaxed", 0.75)
    for who in ("strict", "relaxed"):
        store.review(who, "c", GOOD, T0)
    strict = store.preview("strict", "c", T0 + timedelta(minutes=10))
    relaxed = store.preview("relaxed", "c", T0 + timedelta(minutes=10))
    assert relaxed[GOOD] > strict[GOOD] and relaxed[EASY] > strict[EASY]
    assert strict[AGAIN] == relaxed[AGAIN] == timedelta(minutes=1)  # minutes steps don't scale


def test_counts_and_next_card_follow_the_schedule(tmp_path):
    from engine.study.srs import SrsStore

    store, ids = SrsStore(tmp_path / "srs.sqlite"), ["a", "b", "c"]
    assert store.counts("ada", ids, T0).new == 3 and store.next_card("ada", ids, T0) == "a"
    store.review("ada", "a", EASY, T0)  # straight to days
    store.review("ada", "b", AGAIN, T0)  # back in 1 minute
    counts = store.counts("ada", ids, T0)
    assert (counts.new, counts.due, counts.learning, counts.later) == (1, 0, 1, 1)
    assert store.next_card("ada", ids, T0) == "c"  # new before learning-ahead
    store.review("ada", "c", GOOD, T0)
    assert store.next_card("ada", ids, T0) == "b"  # learning card due within 20 minutes
    later = T0 + timedelta(days=60)
    assert store.counts("ada", ids, later).due == 3
    assert store.counts("ada", ids, T0 + timedelta(minutes=2)).due == 1  # b's 1-minute step
    assert store.counts("someone else", ids, T0).new == 3  # progress is per learner
    assert store.forget("ada", ids) == 3 and store.counts("ada", ids, T0).new == 3


@pytest.mark.parametrize("name", ["", "   ", "x" * 41, "<b>me</b>", "a;drop"])
def test_bad_learner_names_are_refused(tmp_path, name):
    from engine.study.srs import SrsStore

    with pytest.raises(ValueError):
        SrsStore(tmp_path / "srs.sqlite").review(name, "c", GOOD, T0)


def test_progress_survives_a_new_process(tmp_path):
    from engine.study.srs import SrsStore

    path = tmp_path / "srs.sqlite"
    script = (
        "import sys; from datetime import datetime, timezone; sys.path.insert(0, sys.argv[2]);"
        "from engine.study.srs import SrsStore; s = SrsStore(sys.argv[1]);"
        "s.set_retention('Grace', 0.85);"
        "[s.review('Grace', c, 3, datetime(2025, 3, 1, 9, tzinfo=timezone.utc)) "
        "for c in ('c1', 'c2')]")
    subprocess.run([sys.executable, "-c", script, str(path), str(ROOT)], check=True,
                   timeout=60, capture_output=True)
    reopened = SrsStore(path)  # a new store in this process: only the file connects them
    assert reopened.retention("grace") == 0.85
    assert set(reopened.cards("GRACE", ["c1", "c2", "c3"])) == {"c1", "c2"}
    assert reopened.counts("Grace", ["c1", "c2", "c3"], T0).new == 1
    assert [r.rating for r in reopened.history("Grace", "c1")] == [GOOD]


# --- Anki export ---------------------------------------------------------------------------

def test_a_deck_exports_to_an_apkg_with_every_note(tmp_path):
    from engine.study.anki import MODEL_ID, deck_id, export_apkg

    deck = load_content().deck("peft")
    data = export_apkg(deck, timestamp=1_700_000_000)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert "collection.anki2" in z.namelist()
        collection = z.read("collection.anki2")
    path = tmp_path / "collection.anki2"
    path.write_bytes(collection)
    con = sqlite3.connect(path)
    try:
        notes = con.execute("SELECT guid, mid, flds, tags FROM notes").fetchall()
        decks = json.loads(con.execute("SELECT decks FROM col").fetchone()[0])
        models = json.loads(con.execute("SELECT models FROM col").fetchone()[0])
        cards = con.execute("SELECT COUNT(*), COUNT(DISTINCT did) FROM cards").fetchone()
    finally:
        con.close()
    assert len(notes) == len(deck.cards) and cards == (len(deck.cards), 1)
    fields = {f.split("\x1f")[2]: f.split("\x1f") for _, _, f, _ in notes}
    assert set(fields) == {c.id for c in deck.cards}
    shapes = fields["lora-shapes"]
    assert shapes[0].startswith("For a layer mapping d_in") and "(d_out × r)" in shapes[1]
    assert all(mid == MODEL_ID for _, mid, _, _ in notes) and str(MODEL_ID) in models
    assert str(deck_id("peft")) in decks and decks[str(deck_id("peft"))]["name"].endswith(
        deck.title)
    assert all({"transferlab", "peft"} <= set(tags.split()) for *_, tags in notes)


def test_export_ids_are_stable_and_text_is_escaped():
    from engine.study.anki import build_package, deck_id, markdown_to_html

    assert deck_id("peft") == deck_id("peft") != deck_id("decisions")
    assert 1 << 30 <= deck_id("peft") < 1 << 31
    deck = load_content().deck("peft")
    first = [n.guid for n in build_package(deck).decks[0].notes]
    assert first == [n.guid for n in build_package(deck).decks[0].notes]
    assert markdown_to_html("r << d and **bold** `x<y>`") == (
        "r &lt;&lt; d and <b>bold</b> <code>x&lt;y&gt;</code>")
    assert markdown_to_html("Intro\n1. one\n2. two") == (
        "Intro<br><br><ol><li>one</li><li>two</li></ol>")


# --- questions from runs and predictions ---------------------------------------------------

def _records(accuracy: dict) -> pd.DataFrame:
    """Records with chosen accuracies: {(strategy, k): [accuracy per seed]}; k 0 means 'all'."""
    rows = []
    for (strategy, k), values in accuracy.items():
        for seed, value in enumerate(values):
            rows.append({"strategy": strategy, "labels_per_class": k or 126,
                         "all_labels": k == 0, "seed": seed, "test_accuracy": value,
                         "n_train": 10 * (k or 126)})
    return pd.DataFrame(rows)


RUNS = {("scratch", 1): [20.0, 24.0, 22.0], ("probe", 1): [60.0, 62.0, 61.0],
        ("finetune", 1): [50.0, 52.0, 51.0], ("scratch", 2): [34.0, 36.0, 35.0],
        ("probe", 2): [70.0, 72.0, 71.0], ("finetune", 2): [66.0, 68.0, 67.0],
        ("scratch", 0): [95.0, 95.0, 95.0], ("probe", 0): [90.0, 92.0, 91.0],
        ("finetune", 0): [97.0, 97.0, 97.0]}  # 3 seeds: the rule calls nothing on fewer


def test_questions_from_runs_are_answered_by_the_records():
    from engine.study.run_questions import run_questions

    questions = {q.id: q for q in run_questions(_records(RUNS))}
    assert {"run-winner-1", "run-winner-2", "run-winner-126", "run-margin-2", "run-head-start",
            "run-scratch-gain"} <= set(questions)
    assert questions["run-winner-2"].answer == "Linear probe"
    assert questions["run-winner-126"].answer == "Fine-tune"
    assert questions["run-margin-2"].answer == "4.0 points"  # 71 - 67
    assert questions["run-margin-126"].answer == "2.0 points"  # fine-tune 97 - scratch 95
    assert questions["run-head-start"].answer == "1"  # leads: +39 at 1, +36 at 2, +2 at all
    assert questions["run-scratch-gain"].answer == "73.0 points"  # 95 - 22
    for q in questions.values():
        assert q.answer in q.options and len(set(q.options)) == len(q.options)
        assert q.kind == "run"
    numbers = [float(o.split()[0]) for o in questions["run-margin-2"].options]
    assert numbers == sorted(numbers) and min(b - a for a, b in zip(numbers, numbers[1:])) >= 1
    assert "Linear probe 71.0%" in questions["run-winner-2"].explanation


def test_no_questions_without_two_strategies_at_a_size():
    from engine.study.run_questions import run_questions

    assert run_questions(_records({("scratch", 1): [20.0], ("probe", 2): [60.0]})) == ()
    assert run_questions(_records({})) == ()


def test_predictions_are_compared_and_drawn_apart_from_results():
    from ui.kit.figures import transfer_curve_figure
    from engine.study.predictions import compare, comparison_sentences
    from ui.kit.figures import with_predictions

    records = _records(RUNS)
    predictions = {("probe", 2): 60.0, ("scratch", 1): 22.0, ("finetune", 5): 80.0}
    table = compare(records, predictions)
    assert len(table) == 2  # nothing stored at 5 labels per class
    probe = table[table["strategy"] == "probe"].iloc[0]
    assert probe["measured"] == 71.0 and probe["error"] == 11.0
    sentences = comparison_sentences(table)
    assert ("Linear probe at 2 labels per class: you predicted 60.0%, the runs averaged 71.0% "
            "over 3 seeds (11.0 points higher than you predicted).") in sentences
    assert "(spot on)" in sentences[1] or "(spot on)" in sentences[0]
    assert sentences[-1] == "Across your 2 predictions you were off by 5.5 points on average."
    figure = transfer_curve_figure(records, ["scratch", "probe", "finetune"])
    drawn = with_predictions(figure, predictions, ["scratch", "probe", "finetune"])
    added = [t for t in drawn.data if "your prediction" in (t.name or "")]
    assert len(drawn.data) == len(figure.data) + 3 and len(added) == 3
    assert all(t.line.dash == "dash" and t.marker.symbol == "diamond-open" for t in added)
    probe_trace = next(t for t in added if t.name == "Linear probe: your prediction")
    assert list(probe_trace.x) == [2] and list(probe_trace.y) == [60.0]


# --- the advisor ---------------------------------------------------------------------------

@pytest.mark.parametrize("inputs,strategy", [
    (dict(labelled_examples=500, classes=5, domain="related"), "probe"),
    (dict(labelled_examples=3_000, classes=2, domain="near"), "probe"),
    (dict(labelled_examples=8_000, classes=10, domain="related"), "partial"),
    (dict(labelled_examples=50_000, classes=2, domain="near"), "finetune"),
    (dict(labelled_examples=50_000, classes=2, domain="near", compute="cpu"), "partial"),
    (dict(labelled_examples=5_000_000, classes=10, domain="far"), "scratch"),
    (dict(labelled_examples=50_000, classes=2, domain="related", storage="tight", tasks=40),
     "lora"),
    (dict(labelled_examples=20, classes=2, model_size="large"), "prompting"),
    (dict(labelled_examples=5_000, classes=2, model_size="large", compute="cpu"), "prompting"),
    (dict(labelled_examples=5_000, classes=2, model_size="large"), "lora"),  # 16-bit LoRA fits one GPU
    (dict(labelled_examples=5_000, classes=2, model_size="large", compute="cluster"), "lora"),
    (dict(labelled_examples=200_000, classes=2, model_size="large", compute="cluster",
          domain="far"), "finetune"),
])
def test_the_advisor_recommends_by_the_decision_rules(inputs, strategy):
    from engine.study.advisor import AdvisorInputs, advise

    advice = advise(AdvisorInputs(**inputs))
    assert advice.strategy == strategy, advice.reasons
    assert advice.reasons and advice.cautions and advice.title


def test_advisor_links_open_experiments_the_pages_accept():
    from engine.study.advisor import AdvisorInputs, advise
    from engine.experiments.lessons.curves import CurveSettings
    from engine.experiments.lessons.sources import SourceSettings

    advice = advise(AdvisorInputs(500, classes=5, domain="related"))  # 100 per class
    pages = {link.page: link.query() for link in advice.links}
    assert set(pages) == {"transfer_curves", "which_source"}
    assert pages["transfer_curves"] == {"strategies": "scratch,probe",
                                        "labels": "1,2,5,10,20,50,all", "seeds": "3"}
    for settings, page in ((CurveSettings, "transfer_curves"), (SourceSettings, "which_source")):
        assert settings.from_query(pages[page])[1] == []
    tiny = advise(AdvisorInputs(6, classes=3, domain="far"))  # 2 per class
    assert tiny.links[0].query()["labels"] == "1,2"
    assert tiny.links[1].query()["labels"] == "1"
    assert [link.page for link in advise(AdvisorInputs(500, classes=5)).links] == [
        "transfer_curves"]


@pytest.mark.parametrize("bad", [dict(labelled_examples=-1), dict(labelled_examples=10, classes=1),
                                 dict(labelled_examples=10, domain="space"),
                                 dict(labelled_examples=10, tasks=0),
                                 dict(labelled_examples=True)])
def test_advisor_inputs_are_validated(bad):
    from engine.study.advisor import AdvisorInputs

    with pytest.raises(ValueError):
        AdvisorInputs(**bad)


def test_the_pipeline_plan_exports_markdown_and_names_missing_steps():
    from engine.study.pipeline import PipelinePlan, missing_steps, plan_markdown

    plan = PipelinePlan(task="Detect spam in SMS messages", backbone="DistilBERT", labels=3000,
                        strategy="Full fine-tuning")
    assert missing_steps(plan) == ["2. Backbone", "3. Labels and strategy",
                                   "4. Biggest domain-shift risk",
                                   "5. Failure mode to test before deploying"]
    text = plan_markdown(plan)
    assert text.startswith("# A transfer learning pipeline") and "**Model:** DistilBERT" in text
    assert "3,000" in text and "_(not answered yet)_" in text
    with pytest.raises(ValueError):
        PipelinePlan(strategy="Magic")


# --- Anki export with the review history ------------------------------------------------------

def _collection(data: bytes, tmp_path, name: str = "collection.anki2") -> sqlite3.Connection:
    """The SQLite collection inside an .apkg's bytes, opened."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        (tmp_path / name).write_bytes(z.read("collection.anki2"))
    return sqlite3.connect(tmp_path / name)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def test_the_anki_export_carries_each_review_and_where_each_card_stands(tmp_path):
    import genanki

    from engine.study.anki import GUID_NAMESPACE, export_apkg
    from engine.study.srs import SrsStore

    deck = load_content().deck("peft")
    a, b, c = (card.id for card in deck.cards[:3])
    store = SrsStore(tmp_path / "srs.sqlite")
    schedule = _expected_schedule(0.9)  # Good, Good, Good, Again, then Good: by the formulas
    moments = [T0]
    for rating, step in zip((GOOD, GOOD, GOOD, AGAIN), schedule):
        store.review("ada", a, rating, moments[-1])
        moments.append(moments[-1] + step)
    t_b, t_c = T0 + timedelta(seconds=20), T0 + timedelta(seconds=40)
    store.review("ada", b, AGAIN, t_b)  # a new card forgotten: its 1-minute step
    easy = store.review("ada", c, EASY, t_c)  # straight to days
    exported_at = moments[-2] + timedelta(minutes=1)  # a minute after the lapse
    data = export_apkg(deck, timestamp=exported_at.timestamp(),
                       histories=store.histories("Ada", [card.id for card in deck.cards]))
    con = _collection(data, tmp_path)
    try:
        crt, conf = con.execute("SELECT crt, conf FROM col").fetchone()
        by_guid = dict(con.execute("SELECT notes.guid, cards.id FROM cards JOIN notes ON "
                                   "cards.nid = notes.id").fetchall())
        cid = {i: by_guid[genanki.guid_for(GUID_NAMESPACE, i)] for i in (a, b, c)}
        cards = {row[0]: row[1:] for row in con.execute(
            "SELECT id, type, queue, due, ivl, factor, reps, lapses, left FROM cards")}
        revlog = con.execute("SELECT id, cid, ease, ivl, lastIvl, factor, time, type FROM revlog "
                             "ORDER BY id").fetchall()
    finally:
        con.close()
    assert json.loads(conf)["schedVer"] == 2  # no v1 upgrade renumbering the learning buttons
    days = [round(step / timedelta(days=1)) for step in schedule]
    # card a: Good (learning step), Good (graduates), Good (review), Again (lapse, relearning)
    assert [r for r in revlog if r[1] == cid[a]] == [
        (_ms(moments[0]), cid[a], 3, -600, 0, 0, 0, 0),
        (_ms(moments[1]), cid[a], 3, days[1], -600, 2500, 0, 0),
        (_ms(moments[2]), cid[a], 3, days[2], days[1], 2500, 0, 1),
        (_ms(moments[3]), cid[a], 1, -600, days[2], 2500, 0, 1)]
    assert cards[cid[a]] == (3, 1, int(moments[4].timestamp()), days[4], 2500, 4, 1, 1)
    # card b: Again on a new card, back in a minute, both learning steps still ahead
    assert [r for r in revlog if r[1] == cid[b]] == [(_ms(t_b), cid[b], 1, -60, 0, 0, 0, 0)]
    assert cards[cid[b]] == (1, 1, int((t_b + timedelta(minutes=1)).timestamp()), 0, 0, 1, 0, 2)
    # card c: Easy on a new card, a review card due on the day Anki counts from crt
    easy_days = (easy.due - t_c) // timedelta(days=1)
    first_day = datetime.fromtimestamp(crt, timezone.utc).replace(hour=4, minute=0, second=0)
    assert [r for r in revlog if r[1] == cid[c]] == [(_ms(t_c), cid[c], 4, easy_days, 0, 2500, 0,
                                                      0)]
    assert cards[cid[c]] == (2, 2, (easy.due - first_day).days, easy_days, 2500, 1, 0, 0)
    # every other card stays new, and there are no other reviews
    assert len(revlog) == 6
    assert all(row == (0, 0, 0, 0, 0, 0, 0, 0) for i, row in cards.items()
               if i not in cid.values())


def test_an_anki_export_without_reviews_is_the_plain_deck(tmp_path):
    from engine.study.anki import export_apkg
    from engine.study.srs import SrsStore

    deck = load_content().deck("pitfalls")
    store = SrsStore(tmp_path / "srs.sqlite")
    store.review("someone else", deck.cards[0].id, GOOD, T0)
    dumps = []
    for i, histories in enumerate((None, {}, store.histories("ada", [c.id for c in deck.cards]))):
        con = _collection(export_apkg(deck, timestamp=1_700_000_000, histories=histories),
                          tmp_path, f"c{i}.anki2")
        try:
            dumps.append(list(con.iterdump()))
            assert con.execute("SELECT COUNT(*) FROM revlog").fetchone() == (0,)
            assert "schedVer" not in json.loads(con.execute("SELECT conf FROM col").fetchone()[0])
            assert set(con.execute("SELECT type, queue, ivl, reps FROM cards")) == {(0, 0, 0, 0)}
        finally:
            con.close()
    assert dumps[0] == dumps[1] == dumps[2]


def test_each_anki_note_carries_its_source_shown_under_the_answer(tmp_path):
    import html as html_module

    from engine.study.anki import FIELDS, MODEL, export_apkg

    deck = load_content().deck("pitfalls")
    con = _collection(export_apkg(deck, timestamp=1_700_000_000), tmp_path)
    try:
        fields = [f.split("\x1f") for (f,) in con.execute("SELECT flds FROM notes")]
    finally:
        con.close()
    assert FIELDS[-1] == "Source" and all(len(f) == len(FIELDS) for f in fields)
    sources = {f[2]: f[3] for f in fields}
    cited = [c for c in deck.cards if c.source]
    assert cited and all(sources[c.id] == html_module.escape(c.source, quote=False)
                         for c in cited)
    assert all(sources[c.id] == "" for c in deck.cards if not c.source)
    assert "Source: {{Source}}" in MODEL.templates[0]["afmt"]
    assert "{{Source}}" not in MODEL.templates[0]["qfmt"]  # on the back only


def test_no_option_wording_gives_the_answer_away():
    """Absolute words (all, every, never, only...) once marked a wrong option 86% of the time
    and hedges pointed to the answer; across the bank neither may stand out by more than two
    standard errors from the share of wrong (or right) options."""
    from engine.study.content import wording_cue, wording_cue_problems

    questions = [q for b in load_banks() for q in b.questions]
    assert wording_cue_problems(questions) == []
    cue = wording_cue(questions)
    assert cue.absolute >= 30  # the check measures something
    giveaway = [_question(f"q{i}", "A careful answer that usually holds", "It always holds",
                          "It never holds", "Only the first holds") for i in range(20)]
    assert len(wording_cue_problems(giveaway)) == 2


def test_every_card_asks_one_question():
    """One fact per card: no front asks two things joined by 'and' (how ..., and why?)."""
    two = re.compile(r",? and (why|how|what|which|when|where|who)\b", re.I)
    assert [c.id for c in load_content().cards if two.search(c.front)] == []
