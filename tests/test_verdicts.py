"""Every sentence that states a result is chosen from the runs by the one rule (`compare`).

Each lesson's reading (`engine.experiments.readings`) is fed small hand-made records, no
training: runs that go the expected way, the opposite way, a tie, too few seeds, and the cases
that once contradicted the chart; the sentences must change with them.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from engine.experiments.readings import TOO_FEW


def _records(accuracy: dict) -> pd.DataFrame:
    """{(strategy, labels per class): [accuracy per seed]} -> records like the store's."""
    rows = [{"strategy": strategy, "labels_per_class": k, "all_labels": False, "seed": seed,
             "test_accuracy": value, "n_train": 10 * k}
            for (strategy, k), values in accuracy.items() for seed, value in enumerate(values)]
    return pd.DataFrame(rows)


def _text(sentences) -> str:
    return " ".join(s.text for s in sentences)


# --- Transfer curves -------------------------------------------------------------------------------

def test_head_start_quotes_the_interval_and_says_too_few_seeds():
    from engine.experiments.readings.curves import head_start, sweep_readings

    runs = _records({("scratch", 2): [50.0, 52.0, 51.0], ("probe", 2): [63.0, 66.0, 64.5],
                     ("finetune", 2): [55.0, 57.0, 56.0]})
    s = head_start(runs, 2)
    assert s.text.startswith("At 2 labels per class, the linear probe is ahead of training from "
                             "scratch by 13.5 points (95% interval")
    assert s.text.endswith("3 seeds).") and s.claims[0].comparison.counts
    one = head_start(runs[runs["seed"] == 0], 2)
    assert TOO_FEW in one.text and one.too_few and "ahead" not in one.text
    level = head_start(_records({("scratch", 1): [50.0, 55.0, 45.0], ("probe", 1): [51.0, 49.0, 53.0]}), 1)
    assert "are level" in level.text and "is not called by the rule" in level.text
    assert "no run of training from scratch" in head_start(_records({("probe", 1): [50.0] * 3}), 1).text
    assert head_start(runs, 5) is None
    (probe,) = [s for s in sweep_readings(runs) if "Linear probe" in s.text]
    assert "is ahead of training from scratch at 2 labels per class (+13.5 points" in probe.text


# --- When transfer hurts: negative transfer ----------------------------------------------------

def _negative(fine: dict[int, list[float]], probe: dict[int, list[float]]):
    from engine.experiments.lessons.hurts import negative_curves

    curves = negative_curves("randlabels")
    accuracy = {}
    for k in fine:
        accuracy[(curves[0].label, k)] = [50.0, 52.0, 51.0]
        accuracy[(curves[2].label, k)] = fine[k]
        accuracy[(curves[3].label, k)] = probe[k]
    return _records(accuracy), curves


def _negative_text(fine, probe) -> str:
    from engine.experiments.readings.hurts import negative_readings

    records, curves = _negative(fine, probe)
    return _text(negative_readings(records, curves[0].label, curves[2].label, curves[3].label,
                                   "MNIST with random labels"))


LEVEL = {1: [51.0, 51.5, 50.5], 5: [51.0, 51.5, 50.5]}


@pytest.mark.parametrize("fine,expect,absent", [
    ({1: [30.0, 32.0, 31.0], 5: [40.0, 41.0, 42.0]},
     ["**below training from scratch** at 2 of 2 sizes", "**negative transfer**: the mismatched "
      "start cost accuracy (fine-tuning at 1 and 5 labels per class)"], ["No negative"]),
    ({1: [60.0, 62.0, 61.0], 5: [70.0, 71.0, 72.0]},
     ["finished above training from scratch at 2 of 2 sizes", "No negative transfer at these settings"],
     ["negative transfer**"]),
    ({1: [50.5, 51.5, 51.0], 5: [51.0, 51.2, 51.6]},
     ["finished level with training from scratch at 2 of 2 sizes", "No gap to scratch is called"],
     ["below", "helped"]),
    ({1: [30.0, 31.0, 32.0], 5: [50.8, 51.4, 51.6]},
     ["**below training from scratch** at 1 of 2 sizes (1 label per class: -20.0 points",
      "and level with it at 1 of 2 sizes (5 labels per class:"], ["No negative"]),
])
def test_negative_verdict_follows_the_runs(fine, expect, absent):
    text = _negative_text(fine, LEVEL)
    for phrase in expect:
        assert phrase in text
    for phrase in absent:
        assert phrase not in text
    assert "The probe on MNIST with random labels finished level with training from scratch" in text


def test_the_probe_below_scratch_is_negative_transfer_too():
    """The page defines negative transfer as any transfer curve below scratch: fine-tuning
    above and the probe 20 points below once read 'No negative transfer here'."""
    text = _negative_text({1: [60.0, 62.0, 61.0]}, {1: [30.0, 32.0, 31.0]})
    assert "**negative transfer**" in text and "the probe at 1 label per class" in text
    assert "No negative transfer" not in text


def test_too_few_seeds_call_nothing():
    from engine.experiments.readings.hurts import negative_readings

    records, curves = _negative({1: [30.0, 31.0, 32.0]}, {1: [30.0, 31.0, 32.0]})
    one = records[records["seed"] == 0]
    text = _text(negative_readings(one, curves[0].label, curves[2].label, curves[3].label, "X"))
    assert TOO_FEW in text and "negative transfer**" not in text and "below training" not in text
    assert "at 1 of 1" not in text  # one size is named, not counted


def test_why_negative_follows_the_runs_and_states_the_random_label_finding():
    from engine.experiments.readings.hurts import OUTCOME, why_negative

    texts = {}
    for name, place, values in (("behind", "below", [30.0, 31.0, 32.0]),
                                ("level", "level with", [51.0, 50.5, 51.5]),
                                ("ahead", "above", [70.0, 71.0, 72.0])):
        records, curves = _negative({1: values, 5: values}, LEVEL)
        text = why_negative(records, "randlabels", curves[0].label, curves[2].label).text
        assert "Maennel et al." in text and "principal components" in text
        assert f"In this run fine-tuning finished {place} scratch at every size" in text
        assert OUTCOME[("randlabels", name)] in text
        texts[name] = text
    assert len(set(texts.values())) == 3
    records, curves = _negative({1: [30.0, 31.0, 32.0], 5: [70.0, 71.0, 72.0]}, LEVEL)
    mixed = why_negative(records, "permuted", curves[0].label, curves[2].label).text
    assert "below scratch at 1 label per class and above scratch at 5 labels per class" in mixed
    assert OUTCOME[("permuted", "behind")] in mixed


# --- When transfer hurts: domain shift ---------------------------------------------------------

def _shift(probe: list[list[float]], fine: list[list[float]], scratch=(50.0, 52.0, 51.0),
           levels=(0.0, 45.0, 90.0)) -> pd.DataFrame:
    """Records at each severity: scratch per seed, and the probe's and fine-tune's head start
    per seed (added to scratch's run of the same seed)."""
    rows = []
    for level, p, f in zip(levels, probe, fine):
        for seed, base in enumerate(scratch):
            for strategy, gap in (("scratch", 0.0), ("probe", p[seed]), ("finetune", f[seed])):
                rows.append({"strategy": strategy, "labels_per_class": 1, "all_labels": False,
                             "seed": seed, "test_accuracy": base + gap, "severity": level,
                             "n_train": 10})
    return pd.DataFrame(rows)


def test_shift_reading_follows_the_runs():
    from engine.experiments.readings.hurts import head_starts, shift_readings

    falls = _shift([[20.0, 21.0, 22.0], [10.0, 11.0, 12.0], [-8.0, -9.0, -10.0]],
                   [[25.0, 25.5, 24.5], [20.0, 20.5, 19.5], [15.0, 15.5, 14.5]])
    text = _text(shift_readings(falls, "rotate"))
    assert "The linear probe's head start at 1 label per class went from **+21.0** points" in text
    assert "it shrank" in text and "At 90° it is **below scratch**" in text
    assert "At 90° it is still above scratch" in text  # fine-tuning
    assert "As expected, fine-tuning kept more of its lead than the probe at 90°, by 24.0 points" in text
    frame = head_starts(falls)
    assert frame[(frame["strategy"] == "probe") & (frame["severity"] == 90.0)]["head_start"].item() == -9.0

    level = _shift([[20.0, 21.0, 22.0], [20.5, 20.0, 22.5], [21.0, 20.5, 21.5]],
                   [[5.0, 5.2, 4.8]] * 3)
    text = _text(shift_readings(level, "rotate"))
    assert "the rule calls the change level" in text and "no step is called, so step by step it stayed level" in text
    assert "Unlike the usual expectation, the probe kept more of its lead" in text


def test_a_head_start_of_ten_on_every_seed_is_above_scratch_everywhere():
    """Every seed fine-tune = scratch + 10 once read 'level with scratch: the head-start is
    gone' (unpaired means) beside 'kept more of its lead than the probe'."""
    from engine.experiments.readings.hurts import shift_readings

    text = _text(shift_readings(_shift([[10.0, 10.0, 10.0], [5.0, 6.0, 4.0], [4.0, 4.5, 3.5]],
                                       [[10.0, 10.0, 10.0]] * 3, scratch=(40.0, 60.0, 50.0)), "rotate"))
    assert "At 90° it is still above scratch (+10.0 points" in text
    assert "no longer calls a head start" not in text.split("Fine-tuning's")[1]


def test_a_head_start_that_turns_from_below_to_above_is_not_still_above():
    from engine.experiments.readings.hurts import shift_readings

    text = _text(shift_readings(_shift([[-10.0, -10.5, -9.5], [0.0, 0.5, -0.5], [10.0, 10.5, 9.5]],
                                       [[1.0, 1.0, 1.0]] * 3), "rotate"))
    assert "At 90° it is above scratch" in text and "still above" not in text.split("Fine-tuning's")[0]
    assert "it grew" in text


# --- How much of the network to train -----------------------------------------------------------

def _depth(means: dict[str, float], spread=(0.0, 0.5, -0.5)) -> pd.DataFrame:
    return _records({(s, 5): [m + d for d in spread] for s, m in means.items()})


def test_freeze_reading_names_ties_with_the_best_depth():
    from engine.experiments.readings.depth import freeze_readings

    clear = _text(freeze_readings(_depth({f"partial:{k}": m for k, m in enumerate([50, 60, 70, 65, 62])})))
    assert clear.startswith("**In your run** the highest mean is at k = 2 (70.0%)")
    assert "ahead of k = 0, 1, 3 and 4" in clear and "The run singles out this depth." in clear
    tied = _text(freeze_readings(_depth({f"partial:{k}": m for k, m in enumerate([50, 60, 70, 69.5, 62])})))
    assert "level with k = 3" in tied and "does not single out one depth" in tied
    only = _text(freeze_readings(_depth({"partial:4": 70.0})))
    assert "the only depth stored so far" in only and "ahead" not in only


def _copies(frozen: list[float], tuned: list[float], scratch: float = 60.0) -> pd.DataFrame:
    means = {"scratch": scratch}
    means.update({f"copy-frozen:{k}": m for k, m in enumerate(frozen, start=1)})
    means.update({f"copy-tuned:{k}": m for k, m in enumerate(tuned, start=1)})
    return _depth(means)


def test_copy_reading_says_whether_the_run_agrees_with_the_paper():
    from engine.experiments.readings.depth import copy_readings

    expected = _text(copy_readings(_copies([70, 65, 55, 40], [70, 68, 66, 64])))
    assert "accuracy falls from 70.0% (k = 1) to 40.0% (k = 4)" in expected
    assert "as in the published experiment, where it fell" in expected
    assert "finish above the scratch baseline (60.0%) at k = 1, 2, 3 and 4" in expected
    assert "as in the published experiment, above the baseline at every depth" in expected
    opposite = _text(copy_readings(_copies([40, 50, 55, 70], [50, 68, 60.3, 64])))
    assert "accuracy rises from 40.0%" in opposite and "unlike the published experiment, where it fell" in opposite
    assert "below the scratch baseline (60.0%) at k = 1" in opposite
    assert "where fine-tuned copies never fell below it" in opposite
    level = _text(copy_readings(_copies([60, 62, 59.8, 60.2], [60, 60.4, 60.2, 59.9])))
    assert "level with the scratch baseline (60.0%) at k = 1, 2, 3 and 4" in level
    assert "as in the published experiment" not in level.split("Fine-tuned")[1]
    assert "the published boost above the baseline shows at no depth here" in level
    one = _text(copy_readings(_copies([70], [70])))
    assert "only k = 1 is stored" in one and "to 70.0% (k = 1)" not in one


# --- Which source? ---------------------------------------------------------------------------------

def _facts(digits: bool):
    from engine.experiments.readings.sources import SourceFacts

    return SourceFacts(photo="EfficientNet-Lite0", size=224, big=3_000_000, small=100_000, digits=digits)


def test_source_reading_reads_every_size_and_fits_the_target():
    from engine.experiments.readings.sources import source_reading

    runs = _records({("mnist", 1): [60.0, 61.0, 62.0], ("photo", 1): [40.0, 41.0, 42.0],
                     ("mnist", 50): [70.0, 71.0, 72.0], ("photo", 50): [90.0, 91.0, 92.0]})
    reading = source_reading(runs, "mnist", "photo", _facts(True))
    assert reading.heading == "Which source leads depends on the labelled-set size"
    assert "behind the EfficientNet-Lite0 probe at 1 of 2 sizes (50 labels per class: -20.0" in reading.text
    assert "ahead of it at 1 of 2 sizes (1 label per class: +20.0" in reading.text
    assert "behind" in reading.text and "loses here" not in reading.heading
    fashion = source_reading(runs[runs["labels_per_class"] == 1], "mnist", "photo", _facts(False))
    assert fashion.heading == "Why the bigger network loses here"
    assert "digit shapes" not in fashion.text and "digits of different classes" not in fashion.text
    assert "digit shapes" in source_reading(runs[runs["labels_per_class"] == 1], "mnist", "photo",
                                            _facts(True)).text


def test_block_reading_is_not_a_win_at_one_size_of_six():
    from engine.experiments.readings.sources import block_reading

    accuracy = {}
    for k in (1, 2, 5, 10, 20, 50):
        accuracy[("last", k)] = [60.0, 61.0, 59.0]
        accuracy[("early", k)] = [70.0, 71.0, 69.0] if k == 1 else [60.5, 60.0, 59.5]
    reading = block_reading(_records(accuracy), "last", "early", 7, "EfficientNet-Lite0")
    assert reading.heading == "Block 7 is ahead at 1 of 6 sizes"
    assert "beats" not in reading.text and "holds in this run" not in reading.text


# --- Forgetting ------------------------------------------------------------------------------------

def _arm(before: float, after: float, target: float, seeds: int = 3) -> list[dict]:
    jitter = (0.0, 0.4, -0.4, 0.2, -0.2)
    return [{"seed": s, "source_before": before, "source_after": after + jitter[s],
             "source_accuracy": [before, after + jitter[s]], "target_after": target - jitter[s]}
            for s in range(seeds)]


def test_forgetting_reading_follows_the_runs():
    from engine.experiments.readings.forgetting import forgetting_readings

    forgot = _text(forgetting_readings({"finetune": _arm(98.0, 60.0, 90.0), "ewc": _arm(98.0, 85.0, 88.0),
                                        "replay": _arm(98.0, 60.5, 92.0), "freeze": _arm(98.0, 50.0, 90.3)}))
    assert "the source task **fell** from **98.0%** to **60.0%** (-38.0 points, 95% interval" in forgot
    assert "**EWC** against plain fine-tuning: kept **more** of the source (+25.0 points" in forgot
    assert "did worse on the target (-2.0 points" in forgot
    assert "was level with it on the source (+0.5 points" in forgot
    assert "here it protected the source less than plain fine-tuning did" in forgot
    assert "kept **less** of the source (-10.0 points" in forgot
    level = _text(forgetting_readings({"finetune": _arm(98.0, 97.8, 90.0)}))
    assert "the source task went from 98.0% to 97.8%" in level and "does not call" in level
    rose = _text(forgetting_readings({"finetune": _arm(96.0, 98.0, 90.0)}))
    assert "the source task rose: 96.0% to 98.0%" in rose and "fell" not in rose
    one = _text(forgetting_readings({"finetune": _arm(98.0, 60.0, 90.0, seeds=1),
                                     "ewc": _arm(98.0, 85.0, 88.0, seeds=1)}))
    assert f"whether it forgot, {TOO_FEW}" in one and "fell" not in one and "more**" not in one


def _diagnostics(cka: list[float], pretrained: float, untrained: float, pixels: float) -> dict:
    from engine.experiments.diagnostics import BASELINE

    layers = ["input", "block1", "block2", "block3", "block4"]
    return {"ft": {"backbone_lr": 0.001, "target_accuracy": 90.0, "cka_target": cka, "layers": layers,
                   "relative_change": [0.01, 0.02, 0.03, 0.04]},
            BASELINE: {"pretrained_probe": [80.0, 85.0, 88.0, pretrained],
                       "untrained_probe": [70.0, 60.0, 50.0, untrained], "pixels_probe": pixels,
                       "layers": layers}}


def test_diagnostics_reading_describes_one_run_and_calls_nothing():
    from engine.experiments.diagnostics import BASELINE
    from engine.experiments.readings.forgetting import diagnostics_readings

    falls = _text(diagnostics_readings(_diagnostics([0.99, 0.95, 0.90, 0.70], 90.0, 40.0, 80.0), BASELINE, "10"))
    assert "CKA is lower at each deeper block in every fine-tune" in falls
    assert "**90.0%**, on an untrained network's **40.0%**, on the raw pixels **80.0%**" in falls
    assert "ahead" not in falls and TOO_FEW in falls and "lr **0.001**" in falls
    mixed = _text(diagnostics_readings(_diagnostics([0.99, 0.90, 0.95, 0.70], 80.5, 80.0, 85.0), BASELINE, "10"))
    assert "CKA is not lower at every deeper block in the fine-tune at lr 0.001" in mixed


# --- LoRA lab --------------------------------------------------------------------------------------

def test_tradeoff_reading_judges_each_gap_by_the_rule():
    from engine.experiments.readings.lora import tradeoff_readings

    def read(means, spread=(0.0, 0.5, -0.5)):
        runs = _records({(s, 5): [m + d * (-1) ** i for d in spread]
                         for i, (s, m) in enumerate(means.items())})
        return _text(tradeoff_readings(runs, lambda s: 1000 * (1 + len(s)), 100_000))

    text = read({"lora:r1": 60.0, "lora:r4": 70.0, "probe": 50.0, "finetune": 75.0})
    assert text.startswith("The highest LoRA mean here is **LoRA r=4")
    assert "is above it by 5.0 points" in text and "is below it by 20.0 points" in text
    assert "Holm-corrected over 3 comparisons" in text and "level" not in text
    tie = read({"lora:r1": 69.6, "lora:r4": 70.0, "finetune": 69.4})
    assert tie.count("is level with it") == 2
    noisy = read({"lora:r4": 70.0, "finetune": 72.0}, spread=(0.0, 5.0, -5.0))
    assert "is level with it (+2.0 points" in noisy


def test_merge_sentence_follows_the_check():
    from types import SimpleNamespace

    from ui.lessons.lora import merge_sentence

    check = SimpleNamespace(strategy="lora:r2@conv3+fc", lora_params=100, lora_bytes=400, lora_bytes_fp16=200,
                            head_bytes=50, full_bytes=5000, max_abs_diff=2e-6, accuracy=90.0,
                            merged_accuracy=90.0)
    assert "only floating-point rounding, and the accuracy is unchanged" in merge_sentence(check)
    changed = merge_sentence(SimpleNamespace(**{**vars(check), "max_abs_diff": 0.5, "merged_accuracy": 85.0}))
    assert "more than floating-point rounding, so this merge changed the model" in changed


# --- Missing and failed runs -----------------------------------------------------------------------

def test_nan_runs_are_left_out_and_an_all_nan_side_is_said_missing():
    from engine.experiments.readings.curves import head_start, sweep_readings

    runs = _records({("scratch", 1): [50.0, math.nan, 51.0, 52.0], ("probe", 1): [math.nan] * 4})
    assert "only training from scratch has runs" in head_start(runs, 1).text
    text = _text(sweep_readings(runs))
    assert "nan" not in text.lower()


# --- Questions from the learner's runs -------------------------------------------------------------

def test_a_tie_at_the_top_is_the_answer_not_a_winner():
    from engine.study.run_questions import NO_WINNER, run_questions

    tied = {q.id: q for q in run_questions(_records({
        ("probe", 2): [70.0, 71.0, 70.5], ("finetune", 2): [70.4, 69.6, 70.0], ("scratch", 2): [40.0, 41.0, 42.0]}))}
    assert tied["run-winner-2"].answer == NO_WINNER and NO_WINNER in tied["run-winner-2"].options
    assert "level by the rule" in tied["run-winner-2"].explanation
    assert "run-margin-2" not in tied
    clear = {q.id: q for q in run_questions(_records({
        ("probe", 2): [75.0, 76.0, 75.5], ("finetune", 2): [70.4, 69.6, 70.0], ("scratch", 2): [40.0, 41.0, 42.0]}))}
    assert clear["run-winner-2"].answer == "Linear probe" and "counts by the rule" in clear["run-winner-2"].explanation
    assert clear["run-margin-2"].answer == "5.5 points"
    noisy = {q.id: q for q in run_questions(_records({  # 3 points apart, but the seeds spread 5
        ("probe", 2): [70.0, 80.0, 75.0], ("finetune", 2): [72.0, 72.0, 72.0]}))}
    assert noisy["run-winner-2"].answer == NO_WINNER
    few = {q.id for q in run_questions(_records({("probe", 2): [75.0, 76.0], ("finetune", 2): [60.0, 61.0]}))}
    assert "run-winner-2" not in few  # two seeds: nothing to call, so nothing to ask


def test_the_margin_and_the_head_start_quote_one_comparison_with_missing_runs():
    """With a missing run, the margin question once said 19.0 points and the head-start
    question +20.0 for the same pair; both now quote the one comparison of that pair."""
    from engine.study.run_questions import run_questions

    runs = _records({("probe", 1): [70.0, 71.0, 72.0, 73.0], ("scratch", 1): [50.0, 51.0, 52.0],
                     ("probe", 5): [80.0, 80.5, 81.0], ("scratch", 5): [79.0, 79.5, 80.0]})
    qs = {q.id: q for q in run_questions(runs)}
    assert qs["run-margin-1"].answer == "20.5 points"  # 71.5 - 51.0, both sides whole


def test_the_scratch_gain_text_checks_who_gained_the_most():
    from engine.study.run_questions import run_questions

    expected = {q.id: q for q in run_questions(_records({
        ("scratch", 1): [20.0, 22.0, 21.0], ("probe", 1): [60.0, 61.0, 62.0],
        ("scratch", 20): [90.0, 91.0, 92.0], ("probe", 20): [80.0, 81.0, 82.0]}))}["run-scratch-gain"]
    assert "It gained more than linear probe (+20.0): a network with no pretraining" in expected.explanation
    opposite = {q.id: q for q in run_questions(_records({
        ("scratch", 1): [20.0, 22.0, 21.0], ("probe", 1): [10.0, 11.0, 12.0], ("finetune", 1): [40.0, 41.0, 42.0],
        ("scratch", 20): [40.0, 42.0, 41.0], ("probe", 20): [80.0, 81.0, 82.0],
        ("finetune", 20): [60.5, 60.5, 61.5]}))}
    text = opposite["run-scratch-gain"].explanation
    assert "usually gains the most" in text and "level with fine-tune" in text and \
        "less than linear probe (+70.0)" in text
    flat = {q.id for q in run_questions(_records({
        ("scratch", 1): [20.0, 22.0, 21.0], ("probe", 1): [60.0, 61.0, 62.0],
        ("scratch", 20): [20.5, 21.9, 21.0], ("probe", 20): [80.0, 81.0, 82.0]}))}
    assert "run-scratch-gain" not in flat  # scratch gained nothing that counts: no question


def test_the_head_start_question_needs_a_lead_that_counts():
    from engine.study.run_questions import run_questions

    def head_start(leads: dict[int, list[float]]):
        accuracy = {}
        for k, lead in leads.items():
            accuracy[("scratch", k)] = [50.0 + i for i in range(len(lead))]
            accuracy[("probe", k)] = [50.0 + i + v for i, v in enumerate(lead)]
        return {q.id: q for q in run_questions(_records(accuracy))}.get("run-head-start")

    usual = head_start({1: [30.0, 31.0, 32.0], 5: [10.0, 11.0, 12.0], 20: [1.0, 2.0, 3.0]})
    assert usual.answer == "1" and "As usual, pretraining helped most where labels were scarcest" in usual.explanation
    unusual = head_start({1: [5.0, 6.0, 7.0], 5: [20.0, 21.0, 22.0], 20: [1.0, 2.0, 3.0]})
    assert unusual.answer == "5" and "your runs show the largest lead at a bigger labelled set" in unusual.explanation
    assert head_start({1: [20.0, 21.0, 22.0], 5: [20.3, 20.5, 21.0], 20: [1.0, 2.0, 3.0]}) is None
