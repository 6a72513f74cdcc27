"""The "Which source?" lesson: three sources of frozen features on one target, one chart."""

from __future__ import annotations

import json

import pytest

from test_pages import TIMEOUT, no_jobs_left_running, open_page, texts, wait_until, widget  # noqa: F401

PAGE = "pages/which_source.py"

# Links the page wrote before its settings became `SourceSettings`, with the keys of the sweeps
# it submitted then (one job each) and of the group it submits now: the same runs, never retrained.
OLD_LINKS = [
    ({}, ["3249cee56f421433151c", "d9a491252145a95f6cb8", "9727017a755e45e8d06e"],
     "8e599c0a5572c6d94939"),
    ({"labels": "1,5,all", "seeds": "2", "target": "uci_digits", "imagenet": "efficientnet_lite0"},
     ["01095e5934e4d1b823a3", "18dd84e13e3c4cd4acb2", "cd479857470c91a95f86"],
     "3eadfd593b006ac09c32"),
    ({"labels": "1,20", "seeds": "1", "target": "uci_digits", "imagenet": "resnet18"},
     ["99cedb39825721248535", "9a6bb3bae07fa652a362"], "40aed2b1925abbc9db59"),  # no ResNet weights
]


@pytest.mark.parametrize("link,spec_keys,key", OLD_LINKS)
def test_an_old_link_opens_the_same_experiment(link, spec_keys, key, monkeypatch, tmp_path):
    from engine.experiments.lessons.sources import SourceSettings

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached torchvision weights
    settings, notices = SourceSettings.from_query(link)
    assert notices == []
    assert [s.key() for s in settings.experiment().specs] == spec_keys
    assert settings.experiment().key() == key
    assert SourceSettings.from_query(settings.to_query()) == (settings, [])


def test_bad_settings_are_refused_with_a_reason():
    from engine.experiments.lessons.sources import SourceSettings

    for fields, reason in [({"labels_per_class": ()}, "at least one"), ({"labels_per_class": (3,)}, "among"),
                           ({"seeds": 0}, "seeds"), ({"imagenet": "vgg99"}, "ImageNet")]:
        with pytest.raises(ValueError, match=reason):
            SourceSettings(**fields)


def test_page_explains_the_comparison_before_anything_is_stored(empty_default_store, no_sections_pack):
    at = open_page(PAGE)
    assert at.title[0].value == "Which source?"
    body = texts(at.markdown)
    assert "ImageNet" in body and "untrained" in body and "Domain match" not in body  # no results yet
    assert "None of the" in texts(at.info)


def test_run_draws_every_source_and_explains_why(pretrained, empty_default_store):
    from engine.core.features import features_dir
    from ui.kit.jobs import job_manager
    from engine.experiments.lessons.sources import CURVES, SourceSettings

    at = open_page(PAGE)
    widget(at.multiselect, "Labels per class").set_value([1, 20])
    widget(at.number_input, "Seeds").set_value(1)
    at.button[0].click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    group = SourceSettings((1, 20), 1).experiment()
    assert len(group.specs) == 3  # MNIST (scratch + probe), ImageNet probe, untrained probe

    def done():
        job = job_manager().status(group.key())
        return job is not None and not job.active

    wait_until(done, what="the comparison's job")
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t.get("legendgroup") for t in figure["data"]} == {c.label for c in CURVES}
    table = at.table[0].value
    assert len(table) == 4
    accuracies = {row["Features from"]: float(row["Mean test accuracy"].rstrip("%"))
                  for _, row in table.iterrows()}
    mnist, imagenet = CURVES[1].label, CURVES[2].label
    assert accuracies[mnist] > accuracies[imagenet]  # the highest mean, a fact of one seed
    assert "too few seeds to call" in texts(at.markdown)  # one seed: the rule calls nothing
    assert "mattered more than size" not in texts(at.markdown)
    assert any(b.label == "Run again with 3 seeds" for b in at.button)
    assert list(features_dir().glob("*.pt"))  # ImageNet features kept on disk for later runs
    assert at.query_params["labels"] == "1,20" and at.query_params["seeds"] == "1"


def test_a_bad_link_falls_back_with_a_notice():
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["seeds"] = "many"
    at.run()
    at.switch_page(PAGE).run()
    assert any("seeds must be a whole number" in w.value for w in at.warning)


def test_a_missing_imagenet_network_is_named_and_left_out(monkeypatch, tmp_path):
    from engine.experiments.lessons.sources import comparison_specs

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached weights
    at = open_page(PAGE)
    picker = widget(at.selectbox, "ImageNet network")
    assert "(weights not downloaded)" in picker.format_func("resnet18")
    picker.set_value("resnet18")
    widget(at.multiselect, "Labels per class").set_value([1])
    widget(at.number_input, "Seeds").set_value(1)
    at.button[0].click().run(timeout=TIMEOUT)
    warning = texts(at.warning)
    assert "ResNet-18" in warning and "resnet18-f37072fd.pth" in warning
    assert at.query_params["imagenet"] == "resnet18"
    assert [s.source for s in comparison_specs((1,), 1, imagenet="resnet18")] == ["mnist5k",
                                                                                  "untrained"]


# Links with an ImageNet input size, and the earlier-block probe's links (pinned when the size
# and the section were added): a link without `size` is the 96 px comparison above.
SIZED_LINKS = [
    ({"size": "96"}, "8e599c0a5572c6d94939"),
    ({"labels": "1,5,all", "seeds": "2", "size": "224"}, "0c2a84fe9e08b281b1d3"),
    ({"labels": "1,20", "seeds": "1", "size": "160"}, "571143b906a65222d933"),
]
BLOCK_LINKS = [
    ({}, "90a3c65e26a436413ce5"),
    ({"size": "224", "block": "7"}, "6b5c4c23952a49709f0a"),
    ({"labels": "1,5,all", "seeds": "2", "block": "4"}, "035266df0e1001bf85e1"),
]


@pytest.mark.parametrize("link,key", SIZED_LINKS)
def test_a_sized_link_opens_the_same_experiment(link, key):
    from engine.experiments.lessons.sources import SourceSettings

    settings, notices = SourceSettings.from_query(link)
    assert notices == [] and settings.experiment().key() == key
    assert SourceSettings.from_query(settings.to_query()) == (settings, [])


@pytest.mark.parametrize("link,key", BLOCK_LINKS)
def test_an_earlier_block_link_opens_the_same_experiment(link, key):
    from engine.experiments.sweep import plan_runs
    from engine.experiments.lessons.sources import EarlierBlockSettings, SourceSettings

    settings, notices = EarlierBlockSettings.from_query(link)
    assert notices == [] and settings.experiment().key() == key
    assert EarlierBlockSettings.from_query(settings.to_query()) == (settings, [])
    # its last-block probe runs are the comparison's own ImageNet runs: never trained twice
    comparison = SourceSettings.from_query(link)[0].experiment().specs[1]
    probe_keys = {p.run_key for p in plan_runs(settings.spec()) if p.strategy == "probe"}
    assert probe_keys == {p.run_key for p in plan_runs(comparison)}


def test_bad_sizes_and_blocks_in_a_link_fall_back_with_a_notice():
    from engine.experiments.lessons.sources import EarlierBlockSettings, SourceSettings

    settings, notices = SourceSettings.from_query({"size": "100"})
    assert settings.input_size == 96 and notices == ["size `100` is not one of 96, 160, 224"]
    block, notices = EarlierBlockSettings.from_query({"block": "11"})
    assert block.block == 7 and notices == ["block must be a whole number from 1 to 10, got `11`"]
    with pytest.raises(ValueError, match="96, 160, 224"):
        SourceSettings(input_size=64)


def _runs(curves: dict[str, list[float]], sizes=(1, 5)):
    import pandas as pd

    return pd.DataFrame([{"strategy": label, "labels_per_class": k, "test_accuracy": acc + k,
                          "seed": seed} for label, accs in curves.items() for k in sizes
                         for seed, acc in enumerate(accs)])


FACTS = dict(photo="EfficientNet-Lite0", big=3_371_000, small=101_000, digits=True)


@pytest.mark.parametrize("mnist,photo,size,heading,says", [
    ([70, 72, 71], [50, 52, 51], 96, "loses", ["domain match mattered more than size",
                                              "ahead of the EfficientNet-Lite0 probe at 2 of 2 sizes",
                                              "under its native 224"]),
    ([50, 52, 51], [70, 72, 71], 224, "wins", ["goes against what the lesson expects",
                                               "at its native 224 px"]),
    ([60, 64, 62], [61, 63, 62], 96, "no difference called", ["level with", "neither"]),
])
def test_the_verdict_is_read_from_the_runs(mnist, photo, size, heading, says):
    from engine.experiments.readings.sources import SourceFacts, source_reading

    records = _runs({"mnist": mnist, "photo": photo})
    reading = source_reading(records, "mnist", "photo", SourceFacts(size=size, **FACTS))
    assert heading in reading.heading
    for text in says:
        assert text in reading.text
    if heading != "loses":
        assert "mattered more than size" not in reading.text
    assert source_reading(records, "mnist", "absent", SourceFacts(size=size, **FACTS)) is None


@pytest.mark.parametrize("earlier,last,heading,says", [
    ([80, 82, 81], [60, 62, 61], "Block 7 is ahead at every size", "advice for a target far"),
    ([60, 62, 61], [80, 82, 81], "The last block is ahead at every size", "does not bear it out"),
    ([70, 74, 72], [71, 73, 72], "no difference called", "level with"),
])
def test_the_earlier_block_verdict_is_read_from_the_runs(earlier, last, heading, says):
    from engine.experiments.readings.sources import block_reading

    reading = block_reading(_runs({"early": earlier, "last": last}), "last", "early", 7,
                            "EfficientNet-Lite0")
    assert heading in reading.heading and says in reading.text


def test_page_offers_the_input_size_and_the_earlier_block_probe(empty_default_store):
    at = open_page(PAGE)
    size = widget(at.selectbox, "ImageNet input size")
    assert size.value == 96 and size.format_func(224) == "224 px (native)"
    assert widget(at.selectbox, "Earlier block").value == 7
    assert "A probe on an earlier block" in [h.value for h in at.header]
    assert "native size is 224x224" in texts(at.caption)
    assert "nonlinear map" in texts(at.caption)


def test_the_earlier_block_probe_draws_both_blocks_and_a_verdict(empty_default_store):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT
    from ui.kit.jobs import job_manager
    from engine.experiments.lessons.sources import EarlierBlockSettings

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"labels": "1,20", "seeds": "1"})
    at.run()
    at.switch_page(PAGE).run()
    widget(at.selectbox, "Earlier block").set_value(3)
    [b for b in at.button if b.label == "Run"][1].click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    settings = EarlierBlockSettings.from_query({"labels": "1,20", "seeds": "1", "block": "3"})[0]

    def done():
        job = job_manager().status(settings.experiment().key())
        return job is not None and not job.active

    wait_until(done, what="the earlier-block probe's job")
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert {t.get("legendgroup") for t in figure["data"]} == {c.label for c in settings.curves()}
    assert "The probe on block 3 has too few seeds to call against the probe on the last block" \
        in texts(at.markdown)
    assert at.query_params["block"] == "3"


def test_the_untrained_networks_probe_reads_rescaled_features_and_learns(fresh_store):
    """The random small CNN's features are about a hundred times smaller than a trained one's:
    read as they are, the probe at 10 labels per class, seed 0, ended at chance (10.0%). Its
    features are divided by their standard deviation over the training pool, and the runs' keys
    say so, so the runs made before are never reused."""
    import torch

    from engine.experiments.sweep import UNTRAINED, SweepSpec, plan_runs, run_sweep

    spec = SweepSpec(source=UNTRAINED, strategies=("probe",), labels_per_class=(10,), seeds=1)
    bench = spec.workbench(torch.device("cpu"), None)
    features = bench.features("probe")
    pool = torch.as_tensor(bench.split.pool_idx)
    assert float(features[pool].std()) == pytest.approx(1.0, abs=1e-4)
    assert spec.source_key() == "untrained:0:unit-std"
    with pytest.MonkeyPatch.context() as patch:  # the key the runs had before the rescaling
        patch.setattr(SweepSpec, "source_key", lambda self: "untrained:0")
        before = plan_runs(spec)[0].run_key
    assert plan_runs(spec)[0].run_key != before
    accuracy = run_sweep(spec, fresh_store).records["test_accuracy"].iloc[0]
    assert accuracy > 40.0  # 69.6% on the 2-core machine; 10.0% before the rescaling
