"""Every sentence that states a result is chosen from the runs by the one rule (`TIE_RULE`).

Each lesson's reading is fed small hand-made records, no training: runs that go the expected
way, the opposite way, and a tie, and the sentence must change with them.
"""

from __future__ import annotations

import pandas as pd
import pytest

from engine.experiments.stats import MIN_GAP, difference
from engine.experiments.verdicts import and_list, sizes_text, step_signs, summary_difference, trend


def _records(accuracy: dict) -> pd.DataFrame:
    """{(strategy, labels per class): [accuracy per seed]} -> records like the store's."""
    rows = [{"strategy": strategy, "labels_per_class": k, "all_labels": False, "seed": seed,
             "test_accuracy": value, "n_train": 10 * k}
            for (strategy, k), values in accuracy.items() for seed, value in enumerate(values)]
    return pd.DataFrame(rows)


# --- the shared helpers ------------------------------------------------------------------------

def test_summary_rows_give_the_verdict_of_their_runs():
    from engine.experiments.stats import summarize

    for a, b in [([70.0, 72.0], [60.0, 61.0]), ([70.0, 72.0], [69.5, 71.0]), ([50.0], [50.9]),
                 ([50.0], [48.9]), ([60.0, 70.0], [64.0, 66.0])]:
        summary = summarize(_records({("a", 1): a, ("b", 1): b})).set_index("strategy")
        expected = difference(a, b)
        got = summary_difference(summary.loc["a"], summary.loc["b"])
        assert got.sign == expected.sign and got.seeds == expected.seeds
        assert got.gap == pytest.approx(expected.gap) and got.threshold == pytest.approx(expected.threshold)


def test_trends_and_lists():
    assert step_signs([[10.0], [5.0], [5.5], [1.0]]) == (-1, 0, -1)
    assert trend((-1, 0, -1)) == "down" and trend((0, 0)) == "level"
    assert trend((1, -1)) == "both" and trend((0, 1)) == "up"
    assert and_list(["a"]) == "a" and and_list(["a", "b", "c"]) == "a, b and c"
    assert sizes_text([1]) == "1 label per class" and sizes_text([1, 5, 20]) == "1, 5 and 20 labels per class"


# --- When transfer hurts: negative transfer ----------------------------------------------------

def _negative(fine: dict[int, list[float]], probe: dict[int, list[float]]):
    from ui.sections.hurts import negative_curves

    curves = negative_curves("randlabels")
    accuracy = {}
    for k in fine:
        accuracy[(curves[0].label, k)] = [50.0, 52.0]  # scratch: 51 ± 1.4
        accuracy[(curves[2].label, k)] = fine[k]
        accuracy[(curves[3].label, k)] = probe[k]
    return _records(accuracy), curves


@pytest.mark.parametrize("fine,expect,absent", [
    ({1: [30.0, 32.0], 5: [40.0, 41.0]}, ["**below training from scratch at 2 of 2 label counts**",
                                           "by up to 20.0 points", "**negative transfer**"],
     ["above", "level with"]),
    ({1: [60.0, 62.0], 5: [70.0, 71.0]}, ["finished above training from scratch at 1 and 5 labels per class",
                                           "No negative transfer here"], ["below training", "level"]),
    ({1: [50.5, 51.5], 5: [51.0, 51.2]}, ["finished level with training from scratch at 1 and 5 labels",
                                           "every gap to scratch is a tie"], ["below training", "above"]),
    ({1: [30.0, 31.0], 5: [50.8, 51.4]}, ["**below training from scratch at 1 of 2 label counts** "
                                           "(1 label per class; by up to 20.5 points) and level with it "
                                           "at 5 labels per class (mean of 2 seeds)"], ["No negative"]),
])
def test_negative_verdict_follows_the_runs(fine, expect, absent):
    from ui.hurts import negative_verdict

    records, curves = _negative(fine, {k: [51.0, 51.0] for k in fine})
    text = negative_verdict(records, curves, "MNIST with random labels")
    for phrase in expect:
        assert phrase in text
    first_sentence = text.split(". ")[0]
    for phrase in absent:
        assert phrase not in first_sentence
    assert "The probe on MNIST with random labels finished level with training from scratch" in text


def test_why_negative_follows_the_runs_and_states_the_random_label_finding():
    from engine.experiments.stats import Difference
    from ui.hurts import OUTCOME, why_negative

    below, level, above = (Difference(g, 0.0, 2) for g in (-5.0, 0.2, 5.0))
    texts = {name: why_negative("randlabels", {1: d, 5: d}) for name, d in
             (("below", below), ("level", level), ("above", above))}
    assert len(set(texts.values())) == 3
    for name, text in texts.items():
        assert "Maennel et al." in text and "principal components" in text
        assert f"In this run fine-tuning finished {name} scratch at every size" in text
        assert OUTCOME[("randlabels", name)] in text
    assert "nothing to learn that carries over" not in texts["below"]  # the corrected claim
    mixed = why_negative("permuted", {1: below, 5: above})
    assert "below scratch at 1 label per class and above scratch at 5 labels per class" in mixed
    assert OUTCOME[("permuted", "below")] in mixed
    assert why_negative("permuted", {}) == why_negative("permuted", {}).split(" In this run")[0]


# --- When transfer hurts: domain shift ---------------------------------------------------------

def _shift_frame(probe: list[list[float]], fine: list[list[float]], scratch: float = 50.0):
    """Head-starts per seed at severities 0, 30, 60 for one size, as `head_starts` builds them."""
    rows = []
    for strategy, series in (("probe", probe), ("finetune", fine)):
        for level, values in zip((0.0, 30.0, 60.0), series):
            mean = sum(values) / len(values)
            rows.append({"severity": level, "strategy": strategy, "labels_per_class": 1,
                         "head_start": mean, "std": 0.0, "seeds": len(values),
                         "scratch": scratch, "accuracy": scratch + mean, "values": tuple(values),
                         "runs": tuple(scratch + v for v in values),
                         "scratch_runs": tuple(scratch for _ in values)})
    return pd.DataFrame(rows)


def test_shift_reading_follows_the_runs():
    from ui.hurts import shift_reading

    falls = _shift_frame([[20.0, 21.0], [10.0, 11.0], [-8.0, -9.0]], [[25.0, 25.0], [20.0, 20.0], [15.0, 15.0]])
    text = shift_reading(falls, "rotate")
    probe, fine, lead = text.split("\n\n")
    assert "head-start at 1 label per class" in probe and "it shrank" in probe
    assert "It fell at every step." in probe and "it is **below scratch**" in probe
    assert "it is still above scratch" in fine
    assert lead.startswith("As expected, fine-tuning kept more of its lead than the probe at 60°")

    level = _shift_frame([[20.0, 21.0], [20.2, 20.4], [20.5, 20.0]], [[5.0, 5.0], [5.3, 5.3], [5.5, 5.5]])
    probe, fine, lead = shift_reading(level, "rotate").split("\n\n")
    assert "a change the rule calls a tie" in probe and "stayed level step by step" in probe
    assert lead.startswith("Unlike the usual expectation, the probe kept more of its lead")

    both = _shift_frame([[10.0, 10.0], [2.0, 2.0], [12.0, 12.0]], [[10.0, 10.0], [10.0, 10.0], [0.2, 0.4]])
    probe, fine, lead = shift_reading(both, "rotate").split("\n\n")
    assert "It does not move in one direction: it fell from 0° to 30° and rose from 30° to 60°" in probe
    assert "it grew" in probe
    assert "level with scratch: the head-start is gone" in fine
    assert "Every step that counts is a fall; the others are level." in fine
    assert lead.startswith("Unlike the usual expectation")
    tie = _shift_frame([[10.0, 10.0], [5.0, 5.0], [3.0, 3.0]], [[10.0, 10.0], [5.0, 5.0], [3.5, 3.5]])
    assert shift_reading(tie, "rotate").split("\n\n")[2].startswith("Fine-tuning and the probe are level at 60°")


# --- How much of the network to train -----------------------------------------------------------

def _summary(means: dict[str, float], std: float = 0.5, seeds: int = 2) -> pd.DataFrame:
    return pd.DataFrame([{"strategy": s, "labels_per_class": 5, "all_labels": False, "mean": m,
                          "std": std, "seeds": seeds, "n_train": 50} for s, m in means.items()])


def test_freeze_reading_names_ties_with_the_best_depth():
    from ui.depth import freeze_reading

    clear = freeze_reading(_summary({f"partial:{k}": m for k, m in enumerate([50, 60, 70, 65, 62])}))
    assert clear.startswith("**In your run** the best depth is k = 2 (70.0%)")
    assert "ahead of every other depth by the rule" in clear and "level with it" not in clear
    tied = freeze_reading(_summary({f"partial:{k}": m for k, m in enumerate([50, 60, 70, 69.5, 62])}))
    assert "but k = 3 is level with it: the run does not single out one depth" in tied
    assert "(mean of 2 seeds)" in tied


def _copies(frozen: list[float], tuned: list[float], scratch: float = 60.0) -> pd.DataFrame:
    means = {"scratch": scratch}
    means.update({f"copy-frozen:{k}": m for k, m in enumerate(frozen, start=1)})
    means.update({f"copy-tuned:{k}": m for k, m in enumerate(tuned, start=1)})
    return _summary(means, seeds=3)


def test_copy_reading_says_whether_the_run_agrees_with_the_paper():
    from ui.depth import copy_reading

    expected = copy_reading(_copies([70, 65, 55, 40], [70, 68, 66, 64]))
    assert "accuracy falls from 70.0% (k = 1) to 40.0% (k = 4), with no step up on the way, as in the published" in expected
    assert "finishes above the scratch baseline (60.0%) at k = 1, 2, 3, 4" in expected
    assert "as in the published experiment, never below it" in expected and "(mean of 3 seeds)" in expected
    opposite = copy_reading(_copies([40, 50, 55, 70], [50, 68, 60.3, 64]))
    assert "accuracy rises from 40.0%" in opposite and "unlike the published experiment, where it fell" in opposite
    assert "finishes below the scratch baseline (60.0%) at k = 1, level with it at k = 3, above it at k = 2, 4" in \
        opposite.replace(" and above", ", above")
    assert "where fine-tuned copies never fell below it" in opposite
    tie = copy_reading(_copies([60, 62, 59.8, 60.2], [60, 60.4, 60.2, 59.9]))
    assert "accuracy ends level with its start, 60.0% (k = 1) to 60.2% (k = 4)" in tie and "not in one direction" in tie
    assert "finishes level with the scratch baseline (60.0%) at k = 1, 2, 3, 4" in tie


# --- Forgetting ------------------------------------------------------------------------------------

def _arm(before: float, after: float, target: float) -> dict:
    return {"source_before": before, "source_after": after, "source_accuracy": [before, after],
            "target_after": target}


def test_forgetting_reading_follows_the_runs_and_says_one_seed():
    from ui.forgetting import ONE_SEED, forgetting_reading

    forgot = forgetting_reading({"finetune": _arm(98.0, 60.0, 90.0), "ewc": _arm(98.0, 85.0, 88.0),
                                 "replay": _arm(98.0, 60.5, 92.0), "freeze": _arm(98.0, 50.0, 90.3)})
    assert "the source task fell from **98.0%** to **60.0%** (down 38.0 points" in forgot
    assert "EWC**: source 98.0% → 85.0% (-13.0 points), target 88.0%; against plain fine-tuning it " \
        "kept **more** of the source (+25.0 points) and paid 2.0 points on the target." in forgot
    assert "kept as much of the source (level, +0.5 points) and did better on the target (+2.0 points): " \
        "here it did not protect the source" in forgot
    assert "kept **less** of the source (-10.0 points) and was level on the target" in forgot
    assert ONE_SEED in forgot and "one seed" in ONE_SEED
    level = forgetting_reading({"finetune": _arm(98.0, 97.5, 90.0)})
    assert "the source task stayed level: 98.0% to 97.5% (-0.5 points). No forgetting that counts" in level
    rose = forgetting_reading({"finetune": _arm(96.0, 98.0, 90.0)})
    assert "the source task rose: 96.0% to 98.0%" in rose and "fell" not in rose


def _diagnostics(cka: list[float], pretrained: float, untrained: float, pixels: float) -> dict:
    from engine.experiments.diagnostics import BASELINE

    layers = ["input", "block1", "block2", "block3", "block4"]
    return {"ft": {"backbone_lr": 0.001, "target_accuracy": 90.0, "cka_target": cka, "layers": layers,
                   "relative_change": [0.01, 0.02, 0.03, 0.04]},
            BASELINE: {"pretrained_probe": [80.0, 85.0, 88.0, pretrained],
                       "untrained_probe": [70.0, 60.0, 50.0, untrained], "pixels_probe": pixels,
                       "layers": layers}}


def test_diagnostics_reading_judges_the_cka_trend_and_the_probes():
    from engine.experiments.diagnostics import DiagnosticsConfig
    from ui.forgetting import diagnostics_reading

    config = DiagnosticsConfig()
    falls = diagnostics_reading(_diagnostics([0.99, 0.95, 0.90, 0.70], 90.0, 40.0, 80.0), config)
    assert "CKA falls with depth in every fine-tune" in falls
    assert "the pretrained features are ahead of the untrained ones and ahead of the raw pixels" in falls
    assert "rest on one seed" in falls and "lr **0.001**" in falls
    mixed = diagnostics_reading(_diagnostics([0.99, 0.90, 0.95, 0.70], 80.5, 80.0, 85.0), config)
    assert "does not fall steadily with depth in the fine-tune at lr 0.001, unlike the usual pattern" in mixed
    assert "level with the untrained ones and behind the raw pixels" in mixed
    level = diagnostics_reading(_diagnostics([0.999, 0.995, 0.992, 0.990], 80.0, 80.0, 80.0), config)
    assert "CKA stays level from block to block (no step reaches 0.01)" in level


# --- LoRA lab --------------------------------------------------------------------------------------

def _tradeoff(means: dict[str, float], std: float = 0.5) -> pd.DataFrame:
    rows = [{"strategy": s, "Strategy": s.replace("lora:", "LoRA "), "Trainable parameters": 1000 * (i + 1),
             "% of the model": 1.0 * (i + 1), "Mean test accuracy (%)": m, "± std": std, "Seeds": 3}
            for i, (s, m) in enumerate(means.items())]
    return pd.DataFrame(rows)


def test_tradeoff_sentence_judges_each_gap_by_the_rule():
    from ui.lora import tradeoff_sentence

    text = tradeoff_sentence(_tradeoff({"lora:r1": 60.0, "lora:r4": 70.0, "probe": 50.0, "finetune": 75.0}))
    assert text.startswith("The best LoRA rank here is **LoRA r4**: 70.0%")
    assert "fine-tuning reaches 75.0% with 4,000, 5.0 points above it" in text
    assert "the linear probe reaches 50.0% with 3,000, 20.0 points below it" in text
    assert "level" not in text and text.endswith("(mean of 3 seeds).")
    tie = tradeoff_sentence(_tradeoff({"lora:r1": 69.6, "lora:r4": 70.0, "probe": 50.0, "finetune": 69.4}))
    assert "LoRA r1 is level with it" in tie and "fine-tuning reaches 69.4% with 4,000, level with it" in tie
    noisy = tradeoff_sentence(_tradeoff({"lora:r4": 70.0, "finetune": 72.0}, std=3.0))
    assert "fine-tuning reaches 72.0% with 2,000, level with it (2.0 points apart)" in noisy


def test_merge_sentence_follows_the_check():
    from types import SimpleNamespace

    from ui.lora import merge_sentence

    check = SimpleNamespace(strategy="lora:r2@conv3+fc", lora_params=100, lora_bytes=400, lora_bytes_fp16=200,
                            head_bytes=50, full_bytes=5000, max_abs_diff=2e-6, accuracy=90.0,
                            merged_accuracy=90.0)
    assert "only floating-point rounding, and the accuracy is unchanged" in merge_sentence(check)
    changed = merge_sentence(SimpleNamespace(**{**vars(check), "max_abs_diff": 0.5, "merged_accuracy": 85.0}))
    assert "more than floating-point rounding, so this merge changed the model" in changed


# --- Questions and cards from the learner's runs ----------------------------------------------------

def test_a_tie_at_the_top_is_the_answer_not_a_winner():
    from engine.study.run_questions import NO_WINNER, run_questions

    # a 0.5-point gap over 3 seeds: the old rule (0.05 points) called it a win
    tied = {q.id: q for q in run_questions(_records({
        ("probe", 2): [70.0, 71.0, 70.5], ("finetune", 2): [70.4, 69.6, 70.0], ("scratch", 2): [40.0, 41.0, 42.0]}))}
    assert tied["run-winner-2"].answer == NO_WINNER and NO_WINNER in tied["run-winner-2"].options
    assert "a tie by the rule" in tied["run-winner-2"].explanation
    assert "run-margin-2" not in tied
    clear = {q.id: q for q in run_questions(_records({
        ("probe", 2): [75.0, 76.0, 75.5], ("finetune", 2): [70.4, 69.6, 70.0], ("scratch", 2): [40.0, 41.0, 42.0]}))}
    assert clear["run-winner-2"].answer == "Linear probe" and "counts by the rule" in clear["run-winner-2"].explanation
    assert clear["run-margin-2"].answer == "5.5 points"
    noisy = {q.id: q for q in run_questions(_records({  # 3 points apart, but the seeds spread 5
        ("probe", 2): [70.0, 80.0, 75.0], ("finetune", 2): [72.0, 72.0, 72.0]}))}
    assert noisy["run-winner-2"].answer == NO_WINNER


def test_the_scratch_gain_text_checks_who_gained_the_most():
    from engine.study.run_questions import run_questions

    expected = {q.id: q for q in run_questions(_records({
        ("scratch", 1): [20.0, 22.0], ("probe", 1): [60.0, 61.0],
        ("scratch", 20): [90.0, 91.0], ("probe", 20): [80.0, 81.0]}))}["run-scratch-gain"]
    assert "It gained more than linear probe (+20.0): a network with no pretraining" in expected.explanation
    opposite = {q.id: q for q in run_questions(_records({
        ("scratch", 1): [20.0, 22.0], ("probe", 1): [10.0, 11.0], ("finetune", 1): [40.0, 41.0],
        ("scratch", 20): [40.0, 42.0], ("probe", 20): [80.0, 81.0], ("finetune", 20): [60.5, 60.5]}))}
    text = opposite["run-scratch-gain"].explanation
    assert "usually gains the most" in text and "here its gain was level with fine-tune (+20.0) " \
        "and less than linear probe (+70.0)" in text
    flat = {q.id for q in run_questions(_records({
        ("scratch", 1): [20.0, 22.0], ("probe", 1): [60.0, 61.0],
        ("scratch", 20): [20.5, 21.9], ("probe", 20): [80.0, 81.0]}))}
    assert "run-scratch-gain" not in flat  # scratch gained nothing that counts: no question


def test_the_head_start_question_needs_a_lead_that_counts():
    from engine.study.run_questions import run_questions

    def head_start(leads: dict[int, list[float]]):
        accuracy = {}
        for k, lead in leads.items():
            accuracy[("scratch", k)] = [50.0] * len(lead)
            accuracy[("probe", k)] = [50.0 + v for v in lead]
        return {q.id: q for q in run_questions(_records(accuracy))}.get("run-head-start")

    usual = head_start({1: [30.0, 31.0], 5: [10.0, 11.0], 20: [1.0, 2.0]})
    assert usual.answer == "1" and "As usual, pretraining helped most where labels were scarcest" in usual.explanation
    unusual = head_start({1: [5.0, 6.0], 5: [20.0, 21.0], 20: [1.0, 2.0]})
    assert unusual.answer == "5" and "your runs show the largest lead at a bigger labelled set" in unusual.explanation
    assert head_start({1: [20.0, 21.0], 5: [20.3, 20.5], 20: [1.0, 2.0]}) is None  # a tie for the lead
    assert MIN_GAP == 1.0  # the pinned examples above assume the 1-point floor
