"""The LoRA lab page: counts for the chosen architecture, bad links refused with a notice, old
links opening the same trade-off, and a tiny trade-off sweep run through the job manager and
drawn, then a trained adapter merged (a job of its own)."""

from __future__ import annotations

import json

import pytest

from test_pages import TIMEOUT, no_jobs_left_running, open_page, texts, wait_until, widget  # noqa: F401

PAGE = "pages/lora_lab.py"


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_counts_follow_the_chosen_architecture():
    from engine.experiments.lora_presets import count_preset

    at = open_page(PAGE)
    assert at.title[0].value == "LoRA lab"
    assert at.get("latex")  # the update rule, typeset
    gpt3 = count_preset("gpt3-175b", 8, ["q_proj", "v_proj"])
    assert metric(at, "Trainable (LoRA)") == "37.7M"
    assert f"{gpt3.trainable:,}" in texts(at.markdown) and f"{gpt3.total:,}" in texts(at.markdown)
    widget(at.selectbox, "Architecture").set_value("bert-base-uncased").run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    bert = count_preset("bert-base-uncased", 8, ["query", "value"])
    assert f"{bert.trainable:,}" in texts(at.markdown) and f"{bert.total:,}" in texts(at.markdown)
    assert widget(at.multiselect, "Target modules").value == ["query", "value"]
    assert at.query_params["preset"] == "bert-base-uncased"
    widget(at.selectbox, "Architecture").set_value("gpt2").run(timeout=TIMEOUT)  # a second change holds
    assert f"{count_preset('gpt2', 8, ['c_attn']).total:,}" in texts(at.markdown)
    assert at.query_params["preset"] == "gpt2"
    widget(at.number_input, "Rank r").set_value(2).run(timeout=TIMEOUT)
    assert f"{count_preset('gpt2', 2, ['c_attn']).trainable:,}" in texts(at.markdown)
    widget(at.multiselect, "Target modules").set_value([]).run(timeout=TIMEOUT)
    assert "at least one target" in texts(at.error) and not at.exception


def test_a_bad_link_falls_back_with_a_notice():
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["ranks"] = "3,4"
    at.query_params["preset"] = "gpt-9"
    at.run()
    at.switch_page(PAGE).run()
    warnings = texts(at.warning)
    assert "ranks are not all among" in warnings and "architecture is not one the lab knows" in warnings
    assert not at.exception


# links shared before the settings became `LabSettings`, and the trade-off each opened then
OLD_LINKS = [
    ({}, "46636fd0bc5f3c3d2e18"),
    ({"labels": "1", "seeds": "1", "ranks": "1,2", "layers": "conv3,fc"}, "4154bd23b54debb48743"),
    ({"labels": "20", "seeds": "2", "ranks": "8,2,16", "layers": "conv1,conv2,conv3,conv4,fc"},
     "6015dfa969652a5a6506"),  # conv4 does not exist: every layer, with a notice
    ({"labels": "5", "seeds": "5", "ranks": "4"}, "bb42154cc8ee4cb91b0d"),
    ({"labels": "2", "ranks": "16,1", "layers": "fc,conv1"}, "a54ba00b7a36692eb64a"),
]


@pytest.mark.parametrize("link,key", OLD_LINKS)
def test_an_old_link_opens_the_same_trade_off(link, key):
    from engine.experiments.lessons.lora import LabSettings

    settings, notices = LabSettings.from_query(link)
    assert settings.experiment().key() == key
    assert len(notices) == ("conv4" in link.get("layers", ""))
    again, none = LabSettings.from_query(settings.to_query())
    assert again == settings and none == []


def test_the_lab_s_link_keys_are_the_page_s():
    from ui.catalog import PAGES
    from engine.experiments.lessons.lora import LabSettings

    lesson = next(p for p in PAGES if p.path == PAGE)
    assert set(LabSettings.PARAMS) == set(LabSettings().to_query()) == set(lesson.query_keys) - {"preset", "merge_rank"}


def test_the_form_s_values_become_settings_or_say_what_is_wrong():
    from engine.experiments.lessons.lora import LabSettings

    settings = LabSettings.from_form(1, 2.0, [4, 1, 4], ["fc", "conv3"])
    assert settings == LabSettings(1, 2, (1, 4), ("conv3", "fc"))
    assert LabSettings.from_form(5, 1, [2], ["conv1", "conv2", "conv3", "fc"]).layers == ()
    with pytest.raises(ValueError, match="at least one LoRA rank"):
        LabSettings.from_form(5, 1, [], ["fc"])
    with pytest.raises(ValueError, match="at least one layer"):
        LabSettings.from_form(5, 1, [2], [])
    assert settings.merge_check(2).strategy == "lora:r2@conv3+fc"


def test_the_trade_off_sweep_runs_and_is_drawn_then_merged(pretrained, empty_default_store):
    from engine.experiments.lora_presets import strategy_parameters
    from ui.kit.jobs import job_manager
    from engine.experiments.lessons.lora import LabSettings

    at = open_page(PAGE)
    widget(at.selectbox, "Labels per class").set_value(1)
    widget(at.number_input, "Seeds").set_value(1)
    widget(at.multiselect, "LoRA ranks").set_value([1, 2])
    widget(at.multiselect, "Layers LoRA wraps").set_value(["conv3", "fc"])
    next(b for b in at.button if b.label == "Run").click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    settings = LabSettings(1, 1, (1, 2), ("conv3", "fc"))
    spec = settings.experiment()
    assert spec.strategies == ("probe", "finetune", "lora:r1@conv3+fc", "lora:r2@conv3+fc")
    wait_until(lambda: not (job_manager().status(spec.key()) or _Done).active, what="the trade-off job")
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    figure = json.loads(next(c for c in at.get("plotly_chart")
                             if "accuracy" in c.proto.spec and "trainable parameters, log scale" in c.proto.spec)
                        .proto.spec)
    points = {t["name"]: t["x"] for t in figure["data"]}
    assert points["LoRA"] == [strategy_parameters(s)[0] for s in spec.strategies[2:]]
    assert points["Linear probe"] == [1_290] and points["Fine-tune"] == [98_442]
    assert at.query_params["ranks"] == "1,2" and at.query_params["layers"] == "conv3,fc"

    widget(at.selectbox, "Rank").set_value(1)
    next(b for b in at.button if b.label == "Train and merge").click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    check = settings.merge_check(1)
    wait_until(lambda: not (job_manager().status(check.key()) or _Done).active, what="the merge check")
    assert job_manager().status(check.key()).state == "done", job_manager().status(check.key()).error
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    assert float(metric(at, "Largest output difference")) < 1e-3
    assert metric(at, "Accuracy with adapter") == metric(at, "Accuracy merged")


class _Done:
    active = False
