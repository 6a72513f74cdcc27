"""Shared links: the curves page's settings live in the URL, validated against allowed values,
and every link a learner may have shared keeps opening the same experiment."""

import pytest
from streamlit.testing.v1 import AppTest

from engine.experiments.sweep import SweepSpec
from tests.test_pages import APP, CURVES, TIMEOUT
from engine.experiments.lessons.links import QueryReader
from engine.experiments.lessons.curves import CurveSettings


def test_settings_round_trip_through_their_url():
    settings = CurveSettings(strategies=("probe", "scratch"), labels_per_class=(1, 0, 5), seeds=2)
    again, notices = CurveSettings.from_query(settings.to_query())
    assert again == settings and notices == []
    assert settings.to_query()["labels"] == "1,5,all"
    assert CurveSettings.from_query({}) == (CurveSettings(), [])
    assert CurveSettings().experiment() == SweepSpec()


# Keys of the sweeps that links of the form the page has always written open (computed before
# the settings became `CurveSettings`): they key stored runs and jobs, so they must not change.
PINNED_KEYS = [
    ({"seeds": "3"}, "25207e4a83844fa1503d"),  # the default before it became 5 seeds
    ({}, "793038a0c0feacbcc22b"),  # the default now: 5 seeds
    ({"strategies": "scratch,probe", "labels": "1,2,all", "seeds": "2"}, "1ab087e8068bef64985f"),
    ({"strategies": "finetune,discriminative:0.5", "labels": "5,10", "seeds": "1"},
     "a7abe5f496198b90a71b"),
    ({"strategies": "scratch,probe,finetune,gradual,lpft,discriminative:0.38",
      "labels": "1,2,5,10,20,50,all", "seeds": "20"}, "34e5222a6efed36dfb4f"),
    ({"strategies": "probe,discriminative:0.1", "labels": "all", "seeds": "3"},
     "a9e70e59b885f5cb9fdc"),
    ({"seeds": "5"}, "793038a0c0feacbcc22b"),
    ({"strategies": "scratch,probe", "labels": "1,2,5,10,20,50,all", "seeds": "3"},  # the advisor's
     "2d65bab1c5cbc0fb4548"),
]


@pytest.mark.parametrize("params,key", PINNED_KEYS)
def test_an_old_link_opens_the_same_experiment(params, key):
    settings, notices = CurveSettings.from_query(params)
    assert notices == [] and settings.experiment().key() == key
    assert CurveSettings.from_query(settings.to_query()) == (settings, [])


@pytest.mark.parametrize("params,field", [
    ({"strategies": "scratch,lora"}, "strategies"),
    ({"strategies": "<script>alert(1)</script>"}, "strategies"),
    ({"strategies": "discriminative:0.5,discriminative:0.1"}, "strategies"),
    ({"labels": "1,9999"}, "labels"),
    ({"labels": "1," * 300}, "too long"),
    ({"seeds": "0"}, "seeds"),
    ({"seeds": "nan"}, "seeds"),
    ({"seeds": "²"}, "seeds"),
    ({"seeds": "3; DROP TABLE runs"}, "seeds"),
])
def test_bad_values_fall_back_to_the_default_with_a_notice(params, field):
    settings, notices = CurveSettings.from_query(params)
    assert settings == CurveSettings() and len(notices) == 1 and field in notices[0]


def test_settings_that_cannot_run_are_refused():
    with pytest.raises(ValueError, match="choose at least one strategy"):
        CurveSettings.from_form([], 0.38, [1], 1)
    with pytest.raises(ValueError, match="this lesson compares"):
        CurveSettings(strategies=("lora:4",))
    assert CurveSettings.from_form(["probe", "discriminative"], 0.5, [5, 1], 2) == \
        CurveSettings(strategies=("discriminative:0.5", "probe"), labels_per_class=(1, 5), seeds=2)


def test_the_query_reader_reads_items_and_seeds():
    reader = QueryReader({"s": "Probe, ,LPFT", "seeds": "4", "bad": "4,5", "long": "1," * 300})
    assert reader.items("s") == ["probe", "lpft"] and reader.items("absent") is None
    assert reader.seeds("seeds", 3) == 4 and reader.notices == []
    assert reader.seeds("bad", 3) == 3
    assert "bad must be a whole number from 1 to 20" in reader.notices[0]
    assert reader.items("long") is None and "too long" in reader.notices[1]
    numbers = QueryReader({"i": "7", "x": "nan", "labels": "5,all"})
    assert numbers.integer("i", 1, 5, 2) == 2 and numbers.number("x", 0, 1, 0.5) == 0.5
    assert numbers.labels("labels", (1, 5, 0), (1,)) == (0, 5)
    assert numbers.notices == ["i must be a whole number from 1 to 5, got `7`",
                               "x must be a number from 0 to 1, got `nan`"]


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


def test_the_ui_sections_are_the_engine_lessons_sections():
    """Each lesson section is declared once per side and the two agree: `ui.catalog`'s sections
    (with their drawing) are exactly `engine.experiments.lessons.catalog.LESSONS` (settings by
    lesson and name, what `python -m engine lesson` runs), and each lesson's page is
    pages/<lesson>.py."""
    from engine.experiments.lessons.catalog import LESSONS
    from ui.catalog import SECTIONS, lesson_of

    assert {(s.lesson, s.name): s.settings for s in SECTIONS} == {
        (lesson, name): cls for lesson, sections in LESSONS.items() for name, cls in sections.items()}
    for section in SECTIONS:
        assert lesson_of(section).path == f"pages/{section.lesson}.py"
    assert len({s.key for s in SECTIONS}) == len(SECTIONS)  # one session key per section


def test_the_command_line_names_every_lesson(capsys):
    """`python -m engine lesson --help` lists the lessons from the catalog, so a new lesson is
    named there without a second list to keep."""
    from engine.__main__ import build_parser
    from engine.experiments.lessons.catalog import LESSONS

    with pytest.raises(SystemExit):
        build_parser().parse_args(["lesson", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert len(LESSONS) >= 7 and all(name.replace("_", "-") in shown for name in LESSONS)


def test_a_sections_sweeps_are_built_once_per_settings():
    """A page rerun asks a section for its experiment several times (Run, the live panel, the
    results): the sweeps are built and validated once per distinct settings."""
    from engine.experiments.lessons.curves import CurveSettings
    from engine.experiments.lessons.depth import DepthSettings
    from engine.experiments.lessons.hurts import NegativeSettings, ShiftSettings

    def sweeps(experiment):
        return experiment.parts() if hasattr(experiment, "parts") else (experiment,)

    for cls in (CurveSettings, DepthSettings, NegativeSettings, ShiftSettings):
        first, again = sweeps(cls().experiment()), sweeps(cls().experiment())
        assert all(a is b for a, b in zip(first, again)), cls.__name__
    with pytest.raises(ValueError):
        CurveSettings(strategies=(), labels_per_class=(1,))
