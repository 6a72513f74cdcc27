"""Shared links: the curves page's settings live in the URL, validated against allowed values."""

import pytest
from streamlit.testing.v1 import AppTest

from engine.experiments.sweep import SweepSpec
from tests.test_pages import APP, CURVES, TIMEOUT
from ui.controls import spec_from_query, spec_to_query


def test_a_spec_round_trips_through_its_url():
    spec = SweepSpec(strategies=("probe", "scratch"), labels_per_class=(1, 0, 5), seeds=2)
    again, notices = spec_from_query(spec_to_query(spec))
    assert again == spec and notices == []
    assert spec_to_query(spec)["labels"] == "1,5,all"
    assert spec_from_query({}) == (None, [])


@pytest.mark.parametrize("params,field", [
    ({"strategies": "scratch,lora"}, "strategies"),
    ({"strategies": "<script>alert(1)</script>"}, "strategies"),
    ({"labels": "1,9999"}, "labels"),
    ({"labels": "1," * 300}, "too long"),
    ({"seeds": "0"}, "seeds"),
    ({"seeds": "nan"}, "seeds"),
    ({"seeds": "3; DROP TABLE runs"}, "seeds"),
])
def test_bad_values_fall_back_to_the_default_with_a_notice(params, field):
    spec, notices = spec_from_query(params)
    assert spec == SweepSpec() and len(notices) == 1 and field in notices[0]


def _open_curves_with(params: dict) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(CURVES).run()
    return at


def test_a_shared_link_opens_the_same_experiment():
    at = _open_curves_with({"strategies": "probe", "labels": "1,2", "seeds": "2"})
    assert not at.exception
    assert at.multiselect[0].value == ["probe"] and at.multiselect[1].value == [1, 2]
    assert at.number_input[0].value == 2
    assert not at.warning or all("link" not in w.value for w in at.warning)


def test_a_tampered_link_shows_a_notice_and_the_default():
    at = _open_curves_with({"strategies": "scratch,evil", "seeds": "-4"})
    assert not at.exception
    notices = [w.value for w in at.warning if "link" in w.value]
    assert len(notices) == 2
    assert at.multiselect[0].value == list(SweepSpec().strategies)
