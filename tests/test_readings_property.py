"""Every reading against random records (hypothesis): gaps, spreads, 1 to 10 seeds, missing
points, NaN runs and one strategy only. For any records: no crash; no two sentences about the
same pair disagree; every comparison a sentence rests on is recomputed here from the records
and its numbers are the ones the sentence quotes; a missing strategy or size is said, never
filled in.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.experiments.readings.common import clean, size_name
from engine.experiments.stats import level_text

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZES = (1, 2, 5, 20)


@st.composite
def runs(draw, strategies: tuple[str, ...], sizes=SIZES, severity: bool = False):
    """Records: per strategy a base accuracy, per size a gap, per seed noise; some points and
    runs dropped, some NaN; sometimes only one strategy."""
    chosen = list(strategies)
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        chosen = [draw(st.sampled_from(strategies))]
    seeds = draw(st.integers(1, 10))
    ks = draw(st.lists(st.sampled_from(sizes), min_size=1, max_size=len(sizes), unique=True))
    levels = draw(st.lists(st.sampled_from((0.0, 30.0, 60.0, 90.0)), min_size=1, max_size=4,
                           unique=True)) if severity else [None]
    spread = draw(st.sampled_from((0.0, 0.3, 2.0, 8.0)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = []
    for s in chosen:
        base = draw(st.floats(10, 90))
        for level in levels:
            for k in ks:
                if draw(st.integers(0, 5)) == 0:
                    continue  # a missing point
                gap = draw(st.sampled_from((0.0, 0.5, 3.0, -3.0, 20.0)))
                for seed in range(seeds):
                    if draw(st.integers(0, 9)) == 0:
                        continue  # a missing run
                    value = float(np.clip(base + gap + rng.normal(0, spread + 1e-9), 0, 100))
                    if draw(st.integers(0, 14)) == 0:
                        value = math.nan
                    row = {"strategy": s, "labels_per_class": k, "all_labels": False, "seed": seed,
                           "test_accuracy": value, "n_train": 10 * k}
                    if severity:
                        row["severity"] = level
                    rows.append(row)
    return pd.DataFrame(rows, columns=["strategy", "labels_per_class", "all_labels", "seed",
                                       "test_accuracy", "n_train", *(["severity"] if severity else [])])


def _quoted(sentence) -> None:
    """Each comparison's numbers appear in the sentence that rests on it."""
    for claim in sentence.claims:
        c = claim.comparison
        assert f"{abs(c.gap):.1f}" in sentence.text, (claim, sentence.text)
        assert f"{c.seeds} seed" in sentence.text, (claim, sentence.text)
        if math.isfinite(c.low):
            signed = f"{level_text(c.level)} interval {c.low:.1f} to {c.high:.1f}"
            flipped = f"{level_text(c.level)} interval {-c.high:.1f} to {-c.low:.1f}"
            assert signed in sentence.text or flipped in sentence.text, (claim, sentence.text)
        assert "nan" not in sentence.text.lower().replace("nance", "")


def _agree(sentences) -> None:
    """No two sentences about the same pair at the same point disagree (level vs ahead,
    above vs below), either way round."""
    seen: dict[tuple, tuple] = {}
    for sentence in sentences:
        for claim in sentence.claims:
            c = claim.comparison
            for key, value in (((claim.a, claim.b, claim.at), (c.sign, round(c.gap, 9))),
                               ((claim.b, claim.a, claim.at), (-c.sign, round(-c.gap, 9)))):
                assert seen.setdefault(key, value) == value, (key, seen[key], value)


def _recomputed(records: pd.DataFrame, a: str, b: str, k=None) -> tuple[float, int]:
    """The gap and seeds of a against b, from the records by numpy: paired on the seeds when
    both sides hold the same seeds, else the difference of the means."""
    ok = clean(records)
    if k is not None:
        ok = ok[ok["labels_per_class"] == k]
    ra = ok[ok["strategy"] == a].set_index("seed")["test_accuracy"]
    rb = ok[ok["strategy"] == b].set_index("seed")["test_accuracy"]
    assert len(ra) and len(rb), "a comparison was made with a side that has no run"
    if sorted(ra.index) == sorted(rb.index):
        d = (ra - rb.loc[ra.index]).to_numpy()
        return float(d.mean()), len(d)
    return float(ra.mean() - rb.mean()), min(len(ra), len(rb))


def _check_sizes(records, sentences) -> None:
    """Claims at a size name: recomputed from the records at that size."""
    names = {size_name(clean(records), k): k for k in clean(records)["labels_per_class"].unique()}
    for sentence in sentences:
        for claim in sentence.claims:
            k = names[claim.at]
            gap, seeds = _recomputed(records, claim.a, claim.b, k)
            assert math.isclose(claim.comparison.gap, gap, abs_tol=1e-9)
            assert claim.comparison.seeds == seeds


def _check_all(records, sentences) -> None:
    for s in sentences:
        _quoted(s)
    _agree(sentences)


@SETTINGS
@given(runs(("scratch", "probe", "finetune")))
def test_transfer_curve_readings(records):
    from engine.experiments.readings.curves import head_start, sweep_readings

    sentences = list(sweep_readings(records))
    for k in SIZES:
        found = head_start(records, k)
        if found is not None:
            sentences.append(found)
    _check_all(records, sentences)
    _check_sizes(records, sentences)
    ok = clean(records)
    for strategy in {"probe", "finetune"} & set(ok["strategy"]):
        text = " ".join(s.text for s in sentences if s.text.startswith(f"**{'Linear probe' if strategy == 'probe' else 'Fine-tune'}**"))
        for k in SIZES:
            have_a = not ok[(ok["strategy"] == strategy) & (ok["labels_per_class"] == k)].empty
            have_b = not ok[(ok["strategy"] == "scratch") & (ok["labels_per_class"] == k)].empty
            if have_a != have_b and text and ok[ok["strategy"] == "scratch"].size:
                assert re.search(r"No comparison at [^:]*" + re.escape(size_name(ok, k)), text), text


@SETTINGS
@given(runs(("scratch", "probe", "finetune")))
def test_the_uncalled_note_counts_the_gaps_the_sentences_leave_open(records):
    """For any records: the note under the readings counts exactly the quoted gaps of at least
    MIN_GAP points whose interval holds 0 with MIN_SEEDS or more seeds a side (recounted here
    from each claim's interval, not from its verdict), and is absent when there are none."""
    from engine.experiments.readings.common import uncalled_note
    from engine.experiments.readings.curves import sweep_readings
    from engine.experiments.stats import MIN_GAP, MIN_SEEDS

    sentences = sweep_readings(records)
    open_gaps = sum(1 for s in sentences for c in s.claims
                    if c.comparison.seeds >= MIN_SEEDS and abs(c.comparison.gap) >= MIN_GAP
                    and c.comparison.low <= 0 <= c.comparison.high)
    note = uncalled_note(sentences)
    if not open_gaps:
        assert note is None
    else:
        start = ("1 gap quoted above is" if open_gaps == 1
                 else f"{open_gaps} gaps quoted above are")
        assert note.startswith(f"{start} at least {MIN_GAP:g} point yet not called")


@SETTINGS
@given(runs(("scratch", "bad-fine", "bad-probe")), st.sampled_from(("permuted", "randlabels")))
def test_negative_transfer_readings(records, shift):
    from engine.experiments.readings.hurts import negative_readings, why_negative

    sentences = negative_readings(records, "scratch", "bad-fine", "bad-probe", "X")
    sentences.append(why_negative(records, shift, "scratch", "bad-fine"))
    _check_all(records, sentences)
    _check_sizes(records, sentences)
    text = " ".join(s.text for s in sentences)
    if "**negative transfer**" in text:  # said only where some transfer curve is called below
        assert any(c.comparison.sign < 0 for s in sentences for c in s.claims)
    if "No negative transfer" in text:
        assert not any(c.comparison.sign < 0 for s in sentences for c in s.claims)


@SETTINGS
@given(runs(("scratch", "probe", "finetune"), sizes=(1, 5), severity=True))
def test_domain_shift_readings(records):
    from engine.experiments.readings.hurts import head_starts, shift_readings

    sentences = shift_readings(records, "rotate")
    _check_all(records, sentences)
    frame = head_starts(records)
    assert not frame.isna().any().any()
    text = " ".join(s.text for s in sentences)
    for strategy in ("probe", "finetune"):
        present = set(clean(records)["strategy"])
        if "scratch" in present and strategy not in present:
            assert "has no run stored" in text


@SETTINGS
@given(runs(("scratch", "partial:0", "partial:1", "partial:2", "copy-frozen:1", "copy-frozen:2",
             "copy-tuned:1", "copy-tuned:2"), sizes=(5,)))
def test_depth_readings(records):
    from engine.experiments.readings.depth import copy_readings, freeze_readings

    sentences = freeze_readings(records) + copy_readings(records)
    _check_all(records, sentences)
    for s in sentences:
        for claim in s.claims:
            gap, seeds = _recomputed(records, claim.a, claim.b)
            assert math.isclose(claim.comparison.gap, gap, abs_tol=1e-9) and claim.comparison.seeds == seeds


@SETTINGS
@given(runs(("mnist", "photo", "early")), st.booleans())
def test_which_source_readings(records, digits):
    from engine.experiments.readings.sources import SourceFacts, block_reading, source_reading

    facts = SourceFacts(photo="P", size=96, big=10, small=5, digits=digits)
    readings = [r for r in (source_reading(records, "mnist", "photo", facts),
                            block_reading(records, "photo", "early", 3, "P")) if r is not None]
    sentences = [s for r in readings for s in r.sentences]
    _check_all(records, sentences)
    _check_sizes(records, sentences)
    for r in readings:
        signs = {c.comparison.sign for s in r.sentences for c in s.claims}
        if "every size" in r.heading:
            assert signs == {1} or signs == {-1}


@SETTINGS
@given(runs(("lora:r1", "lora:r4", "lora:r8", "probe", "finetune"), sizes=(5,)))
def test_lora_readings(records):
    from engine.experiments.readings.lora import tradeoff_readings

    sentences = tradeoff_readings(records, lambda s: 1000, 10_000)
    _check_all(records, sentences)
    for s in sentences:
        for claim in s.claims:
            gap, _ = _recomputed(records, claim.a, claim.b)
            assert math.isclose(claim.comparison.gap, gap, abs_tol=1e-9)


@SETTINGS
@given(runs(("finetune", "ewc", "replay"), sizes=(1,)))
def test_forgetting_readings(records):
    from engine.experiments.readings.forgetting import forgetting_readings

    ok = clean(records)
    arms = {arm: [{"seed": int(r.seed), "source_before": 95.0, "source_after": float(r.test_accuracy),
                   "target_after": 100.0 - float(r.test_accuracy)} for r in part.itertuples()]
            for arm, part in ok.groupby("strategy")}
    sentences = forgetting_readings(arms)
    _check_all(records, sentences)
    if "finetune" not in arms and len(arms):
        assert "Plain fine-tuning is not stored yet" in " ".join(s.text for s in sentences)


@SETTINGS
@given(runs(("scratch", "probe", "finetune")))
def test_questions_from_runs_never_crash_and_quote_their_answers(records):
    from engine.study.run_questions import run_questions

    for q in run_questions(records):
        assert q.answer in q.options and "nan" not in q.explanation.lower()


@st.composite
def text_shift_runs(draw):
    """Text shift records: per strategy, target and side (with the source or alone) a curve
    over the target labels added; k = 0 only with the source, SOURCE_LABELS only alone."""
    from engine.experiments.text_sweep import SOURCE_LABELS

    sides = tuple(f"{s}|{t}|{src}" for s in ("probe", "scratch") for t in ("amazon_reviews", "tweets")
                  for src in ("movie_reviews", ""))
    records = draw(runs(sides, sizes=(0, 5, 20, SOURCE_LABELS)))
    parts = records["strategy"].str.split("|", expand=True) if not records.empty else None
    if parts is None:
        return records.assign(target=[], train_source=[])
    records = records.assign(strategy=parts[0], target=parts[1], train_source=parts[2])
    keep = ~(((records["labels_per_class"] == 0) & (records["train_source"] == ""))
             | ((records["labels_per_class"] == SOURCE_LABELS) & (records["train_source"] != "")))
    return records[keep].reset_index(drop=True)


@SETTINGS
@given(text_shift_runs())
def test_text_shift_readings(records):
    from engine.experiments.readings.text import corpus_name, shift_readings
    from engine.experiments.text_sweep import SOURCE_LABELS

    sentences = shift_readings(records, "movie_reviews")
    _check_all(records, sentences)
    ok = clean(records)
    targets = {corpus_name(t): t for t in ("amazon_reviews", "tweets")}
    for sentence in sentences:
        for claim in sentence.claims:
            if claim.b.endswith(" alone"):  # adaptation: source + k against k alone
                strategy, _, rest = claim.b.partition(" on ")
                target = rest.removesuffix(" alone")
                assert claim.a == f"{strategy} on {target} + movie_reviews"
                assert sentence.text.startswith(f"On {corpus_name(target)},")
                k = int(claim.at.split()[0])
                at = ok[(ok["target"] == target) & (ok["strategy"] == strategy)
                        & (ok["labels_per_class"] == k)]
                side = at.assign(strategy=np.where(at["train_source"] == "", "b", "a"))
            else:  # the shift: the source alone against the target's own SOURCE_LABELS
                strategy = claim.a.split(" on ")[0]
                target = targets[claim.at]
                at = ok[(ok["target"] == target) & (ok["strategy"] == strategy)]
                a = at[(at["train_source"] != "") & (at["labels_per_class"] == 0)]
                b = at[(at["train_source"] == "") & (at["labels_per_class"] == SOURCE_LABELS)]
                side = pd.concat([a.assign(strategy="a"), b.assign(strategy="b")])
            gap, seeds = _recomputed(side, "a", "b")
            assert math.isclose(claim.comparison.gap, gap, abs_tol=1e-9), (claim, gap)
            assert claim.comparison.seeds == seeds
    # a shift sentence is made exactly where some target has both sides
    for strategy in ("probe", "scratch"):
        runs_ = ok[ok["strategy"] == strategy]
        both = any(not runs_[(runs_["target"] == t) & (runs_["train_source"] != "")
                             & (runs_["labels_per_class"] == 0)].empty
                   and not runs_[(runs_["target"] == t) & (runs_["train_source"] == "")
                                 & (runs_["labels_per_class"] == SOURCE_LABELS)].empty
                   for t in targets.values())
        said = any(s.text.startswith("Trained on") and
                   ("linear probe" if strategy == "probe" else "training from scratch") in s.text
                   for s in sentences)
        assert both == said
