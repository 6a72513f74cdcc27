"""Engine unit tests: sampling, strategies, the training core, pretraining cache, store, sweeps."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from engine.core.backbones import count_parameters, get_backbone
from engine.core.datasets import (ALL_LABELS, ALL_LABELS_TEXT, DatasetError, labels_list_text,
                                  labels_per_class_text, labels_text, load_dataset, max_labels_per_class,
                                  parse_labels_list, parse_labels_value, sample_labels, split_target)
from engine.experiments.stats import summarize
from ui.kit.figures import transfer_curve_figure
from engine.core.pretrain import PretrainConfig, load_cached, pretrain
from engine.core.store import ResultStore
from engine.core.strategies import STRATEGIES, get_strategy
from engine.experiments.sweep import SweepSpec, plan_runs, run_sweep, stored_records
from engine.core.train import TrainBudget, fit


@pytest.fixture(scope="module")
def target():
    data = load_dataset("uci_digits")
    return data, split_target(data.y)


# --- datasets and sampling -------------------------------------------------------------------

def test_builtin_datasets_have_backbone_input_format():
    for name, n in (("mnist5k", 5000), ("uci_digits", 1797)):
        data = load_dataset(name)
        assert data.x.shape == (n, 1, 28, 28) and data.x.dtype == torch.float32
        assert 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0
        assert data.n_classes == 10 and sorted(data.y.unique().tolist()) == list(range(10))


def test_test_split_is_fixed_stratified_and_disjoint(target):
    data, split = target
    again = split_target(data.y)
    assert np.array_equal(split.test_idx, again.test_idx)
    assert not set(split.test_idx) & set(split.pool_idx)
    assert len(split.test_idx) + len(split.pool_idx) == len(data.y)
    counts = np.bincount(data.y.numpy()[split.test_idx], minlength=10)
    totals = np.bincount(data.y.numpy(), minlength=10)
    assert np.all(np.abs(counts - 0.3 * totals) <= 1)


@pytest.mark.parametrize("k", [1, 5, 50])
def test_sampling_is_stratified_reproducible_and_never_touches_test(target, k):
    data, split = target
    idx = sample_labels(data.y, split, k, seed=0)
    assert np.array_equal(np.bincount(data.y.numpy()[idx], minlength=10), np.full(10, k))
    assert np.array_equal(idx, sample_labels(data.y, split, k, seed=0))
    assert not np.array_equal(idx, sample_labels(data.y, split, k, seed=1))
    assert not set(idx) & set(split.test_idx)
    assert set(sample_labels(data.y, split, 1, seed=0)) <= set(idx)  # nested within a seed


def test_sampling_all_and_too_many(target):
    data, split = target
    assert np.array_equal(sample_labels(data.y, split, ALL_LABELS, seed=3), split.pool_idx)
    limit = max_labels_per_class(data, split)
    sample_labels(data.y, split, limit, seed=0)
    with pytest.raises(DatasetError, match="cannot draw"):
        sample_labels(data.y, split, limit + 1, seed=0)


# --- "all labels": one constant, one way to write it and to read it ---------------------------

@pytest.mark.parametrize("k,text", [(1, "1"), (5, "5"), (500, "500"), (ALL_LABELS, ALL_LABELS_TEXT)])
def test_a_labels_value_round_trips_through_its_text(k, text):
    assert ALL_LABELS_TEXT == "all" and labels_text(k) == text
    assert parse_labels_value(text) == k and parse_labels_value(labels_text(k)) == k


@pytest.mark.parametrize("ks,text", [((1, 5, ALL_LABELS), "1,5,all"), ((ALL_LABELS,), "all"),
                                     ((2,), "2"), ((20, 1), "20,1")])
def test_a_labels_list_round_trips_through_its_text_in_written_order(ks, text):
    assert labels_list_text(ks) == text
    assert parse_labels_list(text) == ks and parse_labels_list(labels_list_text(ks)) == ks


def test_labels_are_read_leniently_where_the_meaning_is_plain():
    assert parse_labels_value("ALL") == parse_labels_value(" All ") == ALL_LABELS
    assert parse_labels_value(" 7 ") == parse_labels_value(7) == 7
    assert parse_labels_list(" 1, 5 ,all,") == (1, 5, ALL_LABELS)


@pytest.mark.parametrize("value,message", [
    ("two", "positive integers or 'all'"), ("", "positive integers or 'all'"),
    ("1.5", "positive integers or 'all'"), (True, "positive integers or 'all'"),
    ("0", "must be positive, got 0"), (ALL_LABELS, "must be positive, got 0"),
    ("-3", "must be positive, got -3"), ("alll", "positive integers or 'all'"),
])
def test_a_bad_labels_value_is_refused_with_a_sentence(value, message):
    with pytest.raises(ValueError, match=message):
        parse_labels_value(value)


@pytest.mark.parametrize("text,message", [
    ("", "at least one"), (" , ,", "at least one"), ("1,two", "got 'two'"), ("1,0", "got 0"),
])
def test_a_bad_labels_list_is_refused_with_a_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        parse_labels_list(text)


def test_a_labels_size_in_a_sentence():
    assert labels_per_class_text(1) == "1 label per class"
    assert labels_per_class_text(np.int64(5)) == "5 labels per class"
    assert labels_per_class_text(ALL_LABELS) == "all labels per class"
    assert labels_per_class_text("all (120)") == "all (120) labels per class"


# --- strategies and the training core -----------------------------------------------------------

def _train_a_few_steps(strategy_name, state):
    torch.manual_seed(0)
    model = get_backbone("small_cnn").build(10)
    if get_strategy(strategy_name).uses_pretrained:
        model.load_state_dict(state)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    groups = get_strategy(strategy_name).param_groups(model, 3e-3, 3e-4)
    data = load_dataset("uci_digits")
    fit(model, groups, data.x[:64], data.y[:64], steps=5, batch_size=32, seed=0)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    return model, changed


@pytest.mark.parametrize("name,expect", [
    ("scratch", "all"), ("probe", "head only"), ("finetune", "all"),
])
def test_exactly_the_intended_parameters_change(pretrained, name, expect):
    model, changed = _train_a_few_steps(name, pretrained.load_state_dict())
    names = {n for n, _ in model.named_parameters()}
    head = {n for n in names if n.startswith("head.")}
    assert changed == (names if expect == "all" else head)
    trainable, total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    assert trainable == (total if expect == "all" else sum(p.numel() for p in model.head.parameters()))


def test_finetune_gives_the_head_a_higher_learning_rate():
    model = get_backbone("small_cnn").build(10)
    groups = STRATEGIES["finetune"].param_groups(model, 3e-3, 3e-4)
    lr = {g["name"]: g["lr"] for g in groups}
    assert lr["head"] > lr["pretrained layers"]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_count_parameters_counts_a_model_or_an_optimizer_group():
    model = get_backbone("small_cnn").build(10)
    groups = {g["name"]: g["params"] for g in STRATEGIES["probe"].param_groups(model, 3e-3, 3e-4)}
    head = sum(p.numel() for p in model.head.parameters())
    assert count_parameters(groups["head"]) == (head, head)
    assert count_parameters(model.features.parameters()) == (0, count_parameters(model)[1] - head)
    assert count_parameters(model) == (head, sum(p.numel() for p in model.parameters()))
    assert count_parameters([*model.head.parameters(), *model.head.parameters()]) == (head, head)


def test_budget_validation_and_steps():
    budget = TrainBudget()
    assert budget.steps_for(10) == budget.min_steps
    assert budget.steps_for(10_000) == budget.max_steps
    for bad in ({"lr": 0}, {"lr": float("nan")}, {"batch_size": 0}, {"min_steps": 10, "max_steps": 5}):
        with pytest.raises(ValueError):
            TrainBudget(**bad)


# --- pretraining cache ------------------------------------------------------------------------

def test_pretraining_is_cached_and_reused(pretrained):
    assert pretrained.source_accuracy > 85.0
    again = pretrain(PretrainConfig())
    assert again.cached and again.checkpoint == pretrained.checkpoint
    assert again.source_accuracy == pretrained.source_accuracy


def test_truncated_checkpoint_is_retrained_not_trusted():
    config = PretrainConfig(epochs=1)  # a different key from the session's checkpoint
    first = pretrain(config)
    data = first.checkpoint.read_bytes()
    first.checkpoint.write_bytes(data[: len(data) // 2])
    assert load_cached(config) is None
    second = pretrain(config)
    assert not second.cached and second.checkpoint.stat().st_size == len(data)
    torch.load(second.checkpoint, weights_only=True)


# --- specs, store and sweeps ---------------------------------------------------------------------

def test_spec_is_frozen_hashable_and_validated():
    spec = SweepSpec(labels_per_class=(5, ALL_LABELS, 1, 5))
    assert spec.labels_per_class == (1, 5, ALL_LABELS)
    shuffled = SweepSpec(strategies=("finetune", "scratch", "probe", "scratch"))
    assert shuffled.strategies == ("scratch", "probe", "finetune") and shuffled.key() == SweepSpec().key()
    assert hash(spec) == hash(SweepSpec(labels_per_class=(1, 5, 0))) and spec.key() == SweepSpec(labels_per_class=(1, 5, 0)).key()
    with pytest.raises(Exception):
        spec.seeds = 4
    for bad in ({"strategies": ()}, {"strategies": ("lora",)}, {"target": "nope"}, {"seeds": 0},
                {"labels_per_class": (-1,)}, {"labels_per_class": ()}, {"backbone": "vgg"}):
        with pytest.raises(ValueError):
            SweepSpec(**bad)
    with pytest.raises(DatasetError):
        SweepSpec(labels_per_class=(1000,)).check_target_capacity()


def test_run_keys_are_shared_between_overlapping_specs():
    small = {p.run_key for p in plan_runs(SweepSpec(labels_per_class=(1, 2), seeds=1))}
    big = {p.run_key for p in plan_runs(SweepSpec(labels_per_class=(1, 2, 5), seeds=2))}
    assert len(small) == 6 and len(big) == 18 and small <= big


def test_store_round_trips(tmp_path):
    record = {"run_key": "abc", "strategy": "probe", "labels_per_class": 2, "seed": 0,
              "test_accuracy": 81.25, "train_seconds": 0.5, "device": "cpu", "n_train": 20,
              "all_labels": False}
    ResultStore(tmp_path / "r.sqlite").put(record)
    reopened = ResultStore(tmp_path / "r.sqlite")
    (got,) = reopened.get_many(["abc", "missing"])
    assert {k: got[k] for k in record} == record and reopened.count() == 1


def test_repeated_spec_trains_nothing_and_overlap_trains_only_missing(pretrained, fresh_store):
    spec = SweepSpec(strategies=("probe", "finetune"), labels_per_class=(1,), seeds=1)
    first = run_sweep(spec, fresh_store)
    assert (first.trained, first.reused) == (2, 0)
    again = run_sweep(spec, fresh_store)
    assert (again.trained, again.reused) == (0, 2)
    pd.testing.assert_frame_equal(first.records, again.records)
    wider = run_sweep(SweepSpec(strategies=("probe", "finetune"), labels_per_class=(1, 2), seeds=1), fresh_store)
    assert (wider.trained, wider.reused) == (2, 2)


def test_same_seed_gives_same_numbers(pretrained, tmp_path):
    spec = SweepSpec(strategies=("scratch", "probe"), labels_per_class=(2,), seeds=1)
    a = run_sweep(spec, ResultStore(tmp_path / "a.sqlite")).records
    b = run_sweep(spec, ResultStore(tmp_path / "b.sqlite")).records
    assert a["test_accuracy"].tolist() == b["test_accuracy"].tolist()


def test_cancel_keeps_finished_runs(pretrained, fresh_store):
    spec = SweepSpec(strategies=("probe",), labels_per_class=(1, 2, 5), seeds=1)
    seen = []
    # one run at a time: with runs side by side the third may finish before the stop is seen
    result = run_sweep(spec, fresh_store, on_progress=lambda e: seen.append(e),
                       should_stop=lambda: sum(e.record is not None for e in seen) >= 2,
                       concurrency=1)
    assert result.cancelled and result.trained == 2
    assert len(stored_records(spec, fresh_store)) == 2
    resumed = run_sweep(spec, fresh_store)
    assert (resumed.trained, resumed.reused) == (1, 2)


# --- plots and sentences ---------------------------------------------------------------------

def _records(rows):
    return pd.DataFrame([{"strategy": s, "labels_per_class": k, "all_labels": False, "seed": i,
                          "test_accuracy": acc, "n_train": 10 * k} for s, k, i, acc in rows])


def test_summary_and_head_start_sentence():
    from engine.experiments.readings.curves import head_start

    df = _records([("scratch", 2, 0, 60.0), ("scratch", 2, 1, 62.0), ("scratch", 2, 2, 64.0),
                   ("probe", 2, 0, 75.0), ("probe", 2, 1, 75.5), ("probe", 2, 2, 76.0),
                   ("finetune", 2, 0, 70.0), ("finetune", 2, 1, 71.0), ("finetune", 2, 2, 72.0)])
    summary = summarize(df).set_index("strategy")
    assert summary.loc["scratch", "mean"] == pytest.approx(62.0)
    assert summary.loc["scratch", "std"] == pytest.approx(2.0)
    assert head_start(df, 2).text == (
        "At 2 labels per class, the linear probe is ahead of training from scratch by 13.5 points "
        "(95% interval 9.8 to 17.2, 3 seeds).")  # paired: per-seed gaps 15, 13.5, 12
    worse = _records([("scratch", 1, i, 80.0 + i) for i in range(3)] + [("probe", 1, i, 70.0 - i) for i in range(3)])
    assert head_start(worse, 1).text.startswith(
        "At 1 label per class, the linear probe is behind training from scratch by 12.0 points (95% interval")
    assert head_start(worse, 5) is None
    # the interval holds 0: level, said as level, whichever mean is higher
    close = _records([("scratch", 2, 0, 60.0), ("scratch", 2, 1, 66.0), ("scratch", 2, 2, 63.0),
                      ("probe", 2, 0, 63.0), ("probe", 2, 1, 65.0), ("probe", 2, 2, 64.0)])
    assert head_start(close, 2).text.startswith(
        "At 2 labels per class, the linear probe (the highest mean) and training from scratch are "
        "level: the gap of +1.0 points (95% interval")


def test_a_label_size_is_one_value_read_from_the_records_pair():
    """A record keeps (labels_per_class, all_labels); every reader gets one `LabelSize` from it:
    named '5' or 'all (40)', ordered by count, a run on every label apart from a drawn run of
    the same count, and the value a spec gives back (ALL_LABELS for "all")."""
    from engine.core.datasets import LabelSize
    from engine.experiments.stats import label_sizes

    every, drawn = LabelSize.of(40, True), LabelSize.of(np.int64(40), np.False_)
    assert (str(every), every.text, every.setting) == ("all (40)", "all (40) labels per class", ALL_LABELS)
    assert (str(drawn), drawn.setting, LabelSize(1).text) == ("40", 40, "1 label per class")
    assert every != drawn and sorted([every, LabelSize(5), drawn]) == [LabelSize(5), drawn, every]
    assert LabelSize.of(5, float("nan")) == LabelSize(5)  # a record stored without the flag
    df = pd.concat([_records([(s, k, i, 50.0 + k + i) for s in ("scratch", "probe") for k in (5, 40)
                              for i in range(3)]),
                    _records([(s, 40, 0, 90.0) for s in ("scratch", "probe")]).assign(all_labels=True)],
                   ignore_index=True)
    assert label_sizes(df.drop(columns="all_labels")).map(str).tolist() == [
        str(k) for k in df["labels_per_class"]]
    summary = summarize(df)
    assert list(summary.columns[:3]) == ["strategy", "size", "labels_per_class"]
    probe = summary[summary["strategy"] == "probe"]
    assert probe["size"].map(str).tolist() == ["5", "40", "all (40)"]
    assert probe["seeds"].tolist() == [3, 3, 1] and probe["labels_per_class"].tolist() == [5, 40, 40]
    fig = transfer_curve_figure(df, ("scratch", "probe"))
    assert list(fig.layout.xaxis.ticktext) == ["5", "40", "all (40)"]


def test_figure_has_one_legend_group_per_strategy_on_a_log_axis():
    df = _records([(s, k, i, 50.0 + k + i) for s in ("scratch", "probe") for k in (1, 2, 5) for i in (0, 1)])
    fig = transfer_curve_figure(df, ("scratch", "probe"), marker_n=2)
    assert fig.layout.xaxis.type == "log"
    assert {t.legendgroup for t in fig.data} == {"scratch", "probe"}
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [list(t.x) for t in lines] == [[1, 2, 5], [1, 2, 5]]
    assert any(shape.x0 == 2 for shape in fig.layout.shapes)


def test_sources_pair_with_the_right_backbones_and_key_their_runs_apart():
    import pytest

    from engine.experiments.sweep import IMAGENET, UNTRAINED, SweepSpec, plan_runs

    with pytest.raises(ValueError, match="small_cnn has no ImageNet weights"):
        SweepSpec(source=IMAGENET)
    with pytest.raises(ValueError, match="comes pretrained on ImageNet"):
        SweepSpec(source="mnist5k", backbone="efficientnet_lite0")
    mnist = SweepSpec(strategies=("probe",), labels_per_class=(1,), seeds=1)
    photos = SweepSpec(source=IMAGENET, backbone="efficientnet_lite0", strategies=("probe",),
                       labels_per_class=(1,), seeds=1)
    random = SweepSpec(source=UNTRAINED, strategies=("probe",), labels_per_class=(1,), seeds=1)
    assert not photos.needs_pretraining() and not random.needs_pretraining() and mnist.needs_pretraining()
    assert photos.source_key() == "imagenet:efficientnet-lite0-57934424.pth"
    keys = {plan_runs(s)[0].run_key for s in (mnist, photos, random)}
    assert len(keys) == 3


def test_an_untrained_source_probes_one_fixed_random_backbone():
    import torch

    from engine.experiments.sweep import UNTRAINED, SweepContext, SweepSpec

    spec = SweepSpec(source=UNTRAINED, strategies=("probe",), labels_per_class=(1,), seeds=2)
    ctx = SweepContext(spec, torch.device("cpu"), None)
    a, b = ctx.new_model("probe", 0), ctx.new_model("probe", 1)
    assert all(torch.equal(p, q) for p, q in zip(a.features.parameters(), b.features.parameters()))
    assert not torch.equal(a.head.weight, b.head.weight)  # each seed draws its own head


def test_bfloat16_only_where_the_hardware_has_it_and_never_when_forced_off(monkeypatch):
    import torch

    from engine.core import device as dev

    cpu = torch.device("cpu")
    monkeypatch.delenv(dev.PRECISION_ENV, raising=False)
    monkeypatch.setattr(dev, "_cpu_bf16_is_faster", lambda: True)
    monkeypatch.setattr(dev, "_cpu_has_bf16", lambda: True)
    assert dev.autocast_dtype(cpu) == torch.bfloat16 and dev.precision_name(cpu) == "bf16 autocast"
    monkeypatch.setattr(dev, "_cpu_has_bf16", lambda: False)
    assert dev.autocast_dtype(cpu) is None and dev.precision_name(cpu) == "fp32"
    monkeypatch.setattr(dev, "_cpu_has_bf16", lambda: True)
    monkeypatch.setenv(dev.PRECISION_ENV, "fp32")
    assert dev.autocast_dtype(cpu) is None


def test_a_cpu_computes_in_bfloat16_only_where_it_measured_it_faster(monkeypatch, tmp_path):
    """With AVX512-BF16 but no AMX, bfloat16 can be slower than float32 (measured 1.4x slower
    on an Intel Xeon): the choice is measured once, kept in the data directory and read back
    by every later process; TRANSFERLAB_PRECISION=bf16 or =fp32 overrides it."""
    import torch

    from engine.core import device as dev

    cpu = torch.device("cpu")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    monkeypatch.delenv(dev.PRECISION_ENV, raising=False)
    monkeypatch.setattr(dev, "_cpu_has_bf16", lambda: True)
    calls = []

    def timings(fp32, bf16):
        def measure(dtype, rounds=5):
            calls.append(dtype)
            return fp32 if dtype is None else bf16
        return measure

    for fp32, bf16, wanted in ((1.0, 0.5, torch.bfloat16), (1.0, 1.4, None), (1.0, 0.95, None)):
        dev._cpu_bf16_is_faster.cache_clear()
        (tmp_path / dev.PRECISION_FILE).unlink(missing_ok=True)
        monkeypatch.setattr(dev, "_time_conv_step", timings(fp32, bf16))
        assert dev.autocast_dtype(cpu) == wanted, (fp32, bf16)
    saved = json.loads((tmp_path / dev.PRECISION_FILE).read_text())
    assert saved[dev._cpu_key()]["bf16"] is False and saved[dev._cpu_key()]["bf16_s"] == 0.95
    # a later process (cache cleared) reads the file: no measurement, the same choice
    dev._cpu_bf16_is_faster.cache_clear()
    calls.clear()
    monkeypatch.setattr(dev, "_time_conv_step", timings(1.0, 0.1))
    assert dev.autocast_dtype(cpu) is None and calls == []
    monkeypatch.setenv(dev.PRECISION_ENV, "bf16")
    assert dev.autocast_dtype(cpu) == torch.bfloat16
    dev._cpu_bf16_is_faster.cache_clear()


def test_a_run_records_its_precision(pretrained, fresh_store):
    from engine.core.device import precision_name
    from engine.experiments.sweep import SweepSpec, run_sweep

    spec = SweepSpec(strategies=("probe",), labels_per_class=(1,), seeds=1)
    record = run_sweep(spec, fresh_store).records.iloc[0]
    assert record["precision"] == precision_name(torch.device("cpu"))


# --- a probe on an earlier block, and the ImageNet input size -----------------------------------

def test_a_probe_on_an_earlier_block_trains_only_its_head(pretrained):
    from engine.core.backbones import feature_blocks

    torch.manual_seed(0)
    model = get_backbone("small_cnn").build(10)
    model.load_state_dict(pretrained.load_state_dict())
    groups = get_strategy("probe:block2").param_groups(model, 3e-3, 3e-4)  # wraps the features
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = load_dataset("uci_digits")
    fit(model, groups, data.x[:64], data.y[:64], steps=5, batch_size=32, seed=0)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"head.weight", "head.bias"}
    trainable, _ = count_parameters(model)
    assert trainable == sum(p.numel() for p in model.head.parameters())
    assert model.head.in_features == 32 * 2 * 2  # block 2's 32 channels, pooled to 2 x 2
    # the features the head reads are block 2's output (average-pooled), not the last block's
    x = load_dataset("uci_digits").x[:8]
    blocks = feature_blocks(model.features.features)
    expected = torch.nn.functional.adaptive_avg_pool2d(blocks[1](blocks[0](x)), 2).flatten(1)
    assert torch.allclose(model.features(x), expected)


def test_block_probe_names_are_parsed_like_the_other_families():
    strategy = get_strategy("probe:block3")
    assert strategy.k == 3 and strategy.frozen_features and strategy.features_view() == "block3"
    assert get_strategy("probe").features_view() == ""
    for bad in ("probe:3", "probe:block", "probe:block03", "probe:blockx"):
        with pytest.raises(ValueError, match="probe:block<k>"):
            get_strategy(bad)
    spec = SweepSpec(strategies=("probe:block2", "probe", "scratch"), labels_per_class=(1,), seeds=1)
    assert spec.strategies == ("scratch", "probe", "probe:block2")
    model = get_backbone("small_cnn").build(10)
    with pytest.raises(ValueError, match="from 1 to 3"):
        get_strategy("probe:block4").param_groups(model, 1e-3, 1e-4)  # block 4 is the last


def test_a_sweep_computes_each_probes_features_once_and_keeps_them_apart(pretrained, fresh_store):
    from engine.experiments.sweep import SweepContext

    spec = SweepSpec(strategies=("probe", "probe:block2"), labels_per_class=(2,), seeds=1)
    ctx = SweepContext(spec, torch.device("cpu"), pretrained)
    last, early = ctx.features("probe"), ctx.features("probe:block2")
    assert last.shape == (1797, 128) and early.shape == (1797, 128)
    assert not torch.equal(last, early)
    assert ctx.features("probe:block2") is early and ctx.features("partial:0") is last
    result = run_sweep(spec, fresh_store)
    assert set(result.records["strategy"]) == {"probe", "probe:block2"}


def test_the_input_size_keys_new_runs_but_leaves_old_keys_alone():
    from engine.experiments.sweep import IMAGENET

    common = dict(source=IMAGENET, backbone="efficientnet_lite0", strategies=("probe",),
                  labels_per_class=(1,), seeds=1)
    default, explicit, native = (SweepSpec(**common), SweepSpec(**common, input_size=96),
                                 SweepSpec(**common, input_size=224))
    assert default.key() == explicit.key() == "c00516f5cebeaa1b9208"  # as before the size existed
    assert plan_runs(default)[0].run_key == "8612b2a859a8d2d5f889"
    assert native.key() != default.key()
    assert plan_runs(native)[0].run_key != plan_runs(default)[0].run_key
    assert native.input_shape() == (3, 224, 224) and SweepSpec().input_shape() == (1, 28, 28)
    with pytest.raises(ValueError, match="96, 160, 224"):
        SweepSpec(**common, input_size=100)
    with pytest.raises(ValueError, match="only ImageNet backbones"):
        SweepSpec(input_size=224)


def test_the_precision_measurement_runs_inside_no_grad():
    """The first caller of `autocast_dtype` may be a probe's feature pass under no_grad; the
    measurement's backward once raised there ("element 0 of tensors does not require grad")
    and stopped the LoRA lab's first sweep on a fresh data directory."""
    import torch

    from engine.core.device import _time_conv_step

    with torch.no_grad():
        assert _time_conv_step(None, rounds=1) > 0
        assert _time_conv_step(torch.bfloat16, rounds=1) > 0
    assert torch.is_grad_enabled()
