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
    from ui.sections.sources import SourceSettings

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached torchvision weights
    settings, notices = SourceSettings.from_query(link)
    assert notices == []
    assert [s.key() for s in settings.experiment().specs] == spec_keys
    assert settings.experiment().key() == key
    assert SourceSettings.from_query(settings.to_query()) == (settings, [])


def test_bad_settings_are_refused_with_a_reason():
    from ui.sections.sources import SourceSettings

    for fields, reason in [({"labels_per_class": ()}, "at least one"), ({"labels_per_class": (3,)}, "among"),
                           ({"seeds": 0}, "seeds"), ({"imagenet": "vgg99"}, "ImageNet")]:
        with pytest.raises(ValueError, match=reason):
            SourceSettings(**fields)


def test_page_explains_the_comparison_before_anything_is_stored(empty_default_store):
    at = open_page(PAGE)
    assert at.title[0].value == "Which source?"
    body = texts(at.markdown)
    assert "ImageNet" in body and "untrained" in body and "Domain match" not in body  # no results yet
    assert "None of the" in texts(at.info)


def test_run_draws_every_source_and_explains_why(pretrained, empty_default_store):
    from engine.core.features import features_dir
    from ui.jobs import job_manager
    from ui.sections.sources import CURVES, SourceSettings

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
    assert accuracies[mnist] > accuracies[imagenet]  # domain match beats size at 1 label
    assert "Domain match matters more than size" in texts(at.markdown)
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
    from ui.sections.sources import comparison_specs

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
