"""The lesson's claim, from real runs: transfer gives a head-start at few labels that vanishes
with many. Reduced to the two ends of the curve (1 and 50 labels per class), 3 seeds each."""

from engine.experiments.stats import summarize
from engine.experiments.sweep import SweepSpec, run_sweep


def test_transfer_head_start_at_one_label_and_convergence_at_fifty(pretrained, fresh_store):
    spec = SweepSpec(labels_per_class=(1, 50), seeds=3)
    result = run_sweep(spec, fresh_store)
    assert result.trained == 18
    mean = summarize(result.records).set_index(["strategy", "labels_per_class"])["mean"]
    best_transfer = max(mean["probe", 1], mean["finetune", 1])
    assert best_transfer - mean["scratch", 1] >= 8.0, mean.to_dict()
    at_fifty = [mean[s, 50] for s in ("scratch", "probe", "finetune")]
    assert max(at_fifty) - min(at_fifty) <= 5.0, mean.to_dict()
    assert min(at_fifty) >= 85.0, mean.to_dict()
