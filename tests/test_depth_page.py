"""The "How much to train" lesson page: configurations, code, and both experiments run live."""

from __future__ import annotations

import json

import pytest

from test_pages import TIMEOUT, no_jobs_left_running, open_page, texts, wait_until, widget  # noqa: F401

PAGE = "pages/depth.py"

# Links the page wrote before its settings became `DepthSettings`, with the keys of the two sweeps
# it submitted then (one job each) and of the group it submits now: the same runs, never retrained.
OLD_LINKS = [
    # the default was 2 seeds before the rule needed 3: the same experiment, its seeds named
    ({"labels": "5", "seeds": "2"}, ["2d02f85940eef0a5091e", "c398f7dc110e86b8e792"], "3b1d8c93bbd7223d683a"),
    ({}, ["b9f874d4d4a519d25d8f", "af2b92036f90a73c8439"], "84c14620b2cc1fe75f3d"),  # now: 3 seeds
    ({"labels": "all", "seeds": "3"}, ["995092ba1f0e0c1b725c", "3ead9295867a62e2b023"],
     "54e6e78ebe571267f3e8"),
    ({"labels": "1", "seeds": "1"}, ["6c02c475fa595f6bc5d8", "bd814fab54682e6b3ff0"],
     "4c36eda4e89108febcd6"),
]


@pytest.mark.parametrize("link,spec_keys,key", OLD_LINKS)
def test_an_old_link_opens_the_same_experiment(link, spec_keys, key):
    from engine.experiments.lessons.depth import DepthSettings

    settings, notices = DepthSettings.from_query(link)
    assert notices == []
    assert [s.key() for s in settings.experiment().specs] == spec_keys
    assert settings.experiment().key() == key
    assert DepthSettings.from_query(settings.to_query()) == (settings, [])


@pytest.mark.parametrize("link", [{"labels": "9999", "seeds": "1"}, {"labels": "5"}, {"seeds": "1e9"},
                                  {"labels": "0x10", "seeds": "2"}, {"labels": "5", "seeds": "9" * 300}])
def test_a_link_needs_both_values_and_each_one_offered(link):
    from engine.experiments.lessons.depth import DepthSettings

    settings, notices = DepthSettings.from_query(link)
    assert settings == DepthSettings() and len(notices) == 1
    assert "not ones this lesson offers" in notices[0]


def test_configurations_show_their_groups_and_code():
    at = open_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "How much of the network to train"
    table = at.table[0].value
    assert list(table["Parameter group"]) == ["block 1", "block 2", "block 3", "block 4", "head"]
    assert list(table["Learning rate"]) == ["6.26e-05", "0.000165", "0.000433", "0.00114", "0.003"]
    code = at.code[0].value
    assert "torch.optim.Adam" in code and "lr * 0.38 ** 4" in code
    exec(compile(code, "<shown>", "exec"), {})  # the shown code runs as shown

    widget(at.selectbox, "Configuration").set_value("gradual").run(timeout=TIMEOUT)
    table = at.table[0].value
    assert list(table["Trainable at the start"]) == ["0", "0", "0", "0", "1,290"]
    assert "def before_step" in at.code[0].value
    assert "trains 1,290 weights at the start and 98,442 by the end" in texts(at.markdown)


def test_both_experiments_run_and_are_read_back(pretrained, empty_default_store):
    from ui.kit.jobs import job_manager
    from engine.experiments.lessons.depth import DepthSettings

    at = open_page(PAGE)
    widget(at.select_slider, "Labels per class").set_value(1)
    widget(at.select_slider, "Seeds").set_value(1)
    at.button[0].click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    group = DepthSettings(1, 1).experiment()

    def done():
        job = job_manager().status(group.key())
        return job is not None and not job.active

    wait_until(done, what="the depth lesson's jobs")
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    # the two sections run here; the learning-rate section below shows the lesson pack's chart
    freeze, copy = (json.loads(c.proto.spec) for c in at.get("plotly_chart")[:2])
    accuracy = next(t for t in freeze["data"] if t["type"] == "scatter")
    assert list(accuracy["x"]) == [0, 1, 2, 3, 4]
    weights = next(t for t in freeze["data"] if t["type"] == "bar")
    assert list(weights["y"]) == sorted(weights["y"]) and weights["y"][0] == 1290
    assert {t["name"] for t in copy["data"]} == {"Copied blocks frozen", "Copied blocks fine-tuned"}
    body = texts(at.markdown)
    assert "In your run" in body and "the highest mean is at k =" in body
    assert "too few seeds to call against k =" in body  # one seed: no depth is called
    assert at.query_params["labels"] == "1" and at.query_params["seeds"] == "1"


def test_a_bad_link_falls_back_with_a_notice():
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["labels"] = "9999"
    at.query_params["seeds"] = "1"
    at.run()
    at.switch_page(PAGE).run(timeout=TIMEOUT)
    assert not at.exception
    assert "not ones this lesson offers" in texts(at.warning)
