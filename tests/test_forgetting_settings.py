"""The Forgetting page's settings: every link shared before they became `ForgettingSettings` and
`DiagnosticsSettings` opens the same experiment (the same stored arms and models), a link
round-trips, and a bad value falls back with the page's notice. Nothing here trains."""

from __future__ import annotations

import pytest

from engine.experiments.lessons.forgetting import DiagnosticsSettings, ForgettingSettings

PAGE = "pages/forgetting.py"

# links and the experiment key each opened before the settings classes existed
FORGETTING_LINKS = [
    ({}, "forgetting-af068f2a132576c2e933"),
    ({"f_labels": "20", "f_epochs": "4", "f_lr": "0.01", "f_low": "0.3", "f_freeze": "1",
      "f_lambda": "100", "f_replay": "0.5", "f_seed": "3"}, "forgetting-48bc1a4719d263f8f096"),
    ({"f_labels": "all", "f_lambda": "10000", "f_epochs": "2"}, "forgetting-f79716b02d147dbf766d"),
    ({"f_labels": "10", "f_epochs": "2", "f_lambda": "10000", "f_lr": "0.003", "f_low": "0.1",
      "f_freeze": "2", "f_replay": "0.25", "f_seed": "0"}, "forgetting-6f997cf5742589583800"),
]
DIAGNOSTICS_LINKS = [
    ({}, "diagnostics-7d3e3041002e2e971a08"),
    ({"d_labels": "all", "d_lrs": "0.0001,0.01", "d_probe": "all"}, "diagnostics-3af3423e87d183c8a42f"),
    ({"d_labels": "5", "d_probe": "5", "d_lrs": "0.001"}, "diagnostics-9c8e81dfcc63411b4d3a"),
]


@pytest.mark.parametrize("cls,link,key", [(ForgettingSettings, *case) for case in FORGETTING_LINKS]
                         + [(DiagnosticsSettings, *case) for case in DIAGNOSTICS_LINKS])
def test_an_old_link_opens_the_same_experiment(cls, link, key):
    """An old forgetting link now runs 3 seeds from its seed: its first seed is the old
    experiment, so every arm it stored is reused."""
    def first(settings):
        experiment = settings.experiment()
        return experiment.parts()[0].key() if cls is ForgettingSettings else experiment.key()

    settings, notices = cls.from_query(link)
    assert first(settings) == key and notices == []
    again, none = cls.from_query(settings.to_query())
    assert first(again) == key and none == []
    assert cls.from_query({k: v for k, v in link.items() if k not in cls.PARAMS})[0] == cls()


def test_the_sections_write_the_page_s_link_keys():
    from ui.catalog import PAGES

    lesson = next(p for p in PAGES if p.path == PAGE)
    written = set(ForgettingSettings().to_query()) | set(DiagnosticsSettings().to_query())
    assert written == set(ForgettingSettings.PARAMS) | set(DiagnosticsSettings.PARAMS) == set(lesson.query_keys)


@pytest.mark.parametrize("cls,link,notice", [
    (ForgettingSettings, {"f_replay": "NaN"}, "f_replay must be a number from 0 to 0.9"),
    (ForgettingSettings, {"f_lr": "nan"}, "f_lr must list values among"),
    (ForgettingSettings, {"f_lambda": "3"}, "f_lambda must list values among"),
    (ForgettingSettings, {"f_labels": "10,20"}, "f_labels must be one size"),
    (ForgettingSettings, {"f_seed": "10"}, "f_seed must be a whole number from 0 to 9"),
    (DiagnosticsSettings, {"d_labels": "lots"}, "d_labels must list sizes among"),
    (DiagnosticsSettings, {"d_lrs": "0.5"}, "d_lrs must list values"),
])
def test_a_bad_value_falls_back_to_the_default_with_a_notice(cls, link, notice):
    settings, notices = cls.from_query(link)
    assert settings == cls() and len(notices) == 1 and notice in notices[0]


def test_the_forms_values_become_settings_or_say_what_is_wrong():
    settings = ForgettingSettings.from_form(10, 2, 3e-3, 0.1, 2, 10000.0, 0.25000001, 1.0)
    assert settings.replay_fraction == 0.25 and settings.seed == 1
    assert settings.to_query()["f_replay"] == "0.25" and settings.to_query()["f_lambda"] == "10000"
    diagnostics = DiagnosticsSettings.from_form(5, [0.01, 0.001], 5)
    assert diagnostics.to_query()["d_lrs"] == "0.001,0.01"
    with pytest.raises(ValueError, match="at least one"):
        DiagnosticsSettings.from_form(5, [], 5)
