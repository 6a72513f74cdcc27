"""The "How much to train" lesson page: configurations, code, and both experiments run live."""

from __future__ import annotations

import json

from test_pages import TIMEOUT, no_jobs_left_running, open_page, texts, wait_until, widget  # noqa: F401

PAGE = "pages/depth.py"


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
    from ui.depth import depth_specs
    from ui.jobs import job_manager

    at = open_page(PAGE)
    widget(at.select_slider, "Labels per class").set_value(1)
    widget(at.select_slider, "Seeds").set_value(1)
    at.button[0].click().run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    specs = depth_specs(1, 1)

    def done():
        jobs = [job_manager().status(s.key()) for s in specs]
        return all(j is not None and not j.active for j in jobs)

    wait_until(done, what="the depth lesson's jobs")
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    freeze, copy = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    accuracy = next(t for t in freeze["data"] if t["type"] == "scatter")
    assert list(accuracy["x"]) == [0, 1, 2, 3, 4]
    weights = next(t for t in freeze["data"] if t["type"] == "bar")
    assert list(weights["y"]) == sorted(weights["y"]) and weights["y"][0] == 1290
    assert {t["name"] for t in copy["data"]} == {"Copied blocks frozen", "Copied blocks fine-tuned"}
    body = texts(at.markdown)
    assert "In your run" in body and "the best depth is k =" in body
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
