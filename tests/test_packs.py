"""Lesson packs: built from real runs by the CLI's code path, shipped, and read back exactly."""

import json

import pytest

from engine.infra.packs import LESSONS_DIR, PackError, build_pack, load_lesson, pack_records, spec_from_dict
from engine.experiments.stats import summarize
from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, stored_records


def test_shipped_default_pack_matches_the_default_spec():
    records, provenance = pack_records(SweepSpec())
    assert len(records) == 105 and provenance is not None
    assert {"built_at", "device", "code_version", "seeds"} <= set(provenance)
    mean = summarize(records).set_index(["strategy", "labels_per_class"])["mean"]
    assert max(mean["probe", 1], mean["finetune", 1]) - mean["scratch", 1] >= 8.0


def test_build_pack_writes_the_stored_runs_with_provenance(tmp_path, pretrained):
    lesson = tmp_path / "tiny.yaml"
    lesson.write_text("name: tiny\ntitle: Tiny\nsweeps:\n  - strategies: [probe]\n"
                      "    labels_per_class: [1, all]\n    seeds: 1\n")
    store = ResultStore(tmp_path / "store.sqlite")
    path = build_pack(lesson, tmp_path / "packs", store=store)
    pack = json.loads(path.read_text())
    assert pack["name"] == "tiny" and pack["provenance"]["seeds"] == [1]
    spec = load_lesson(lesson)["specs"][0]
    records, _ = pack_records(spec, tmp_path / "packs")
    stored = stored_records(spec, store)
    assert sorted(records["run_key"]) == sorted(stored["run_key"]) and len(records) == 2


@pytest.mark.parametrize("entry,key", [
    ({"labels_per_class": [1, 2, 5, 10, 20, 50, "all"], "seeds": 3}, "25207e4a83844fa1503d"),
    ({"labels_per_class": [1, 2, 5, 10, 20, 50, "all"]}, "793038a0c0feacbcc22b"),  # now 5 seeds
    ({"strategies": ["probe"], "labels_per_class": [1, "all"], "seeds": 1}, "1d3534d5275ed733c5bf"),
    ({"strategies": ["finetune", "scratch"], "labels_per_class": [5, "ALL", 2], "seeds": 3},
     "b20ea8b8441ecf49a291"),
])
def test_lesson_entries_keep_their_experiment_keys(entry, key):
    """Shipped packs are found by these keys: reading a lesson must never change them."""
    assert spec_from_dict(entry).key() == key


def test_the_default_lesson_is_the_default_sweep():
    assert [s.key() for s in load_lesson(LESSONS_DIR / "default.yaml")["specs"]] == [SweepSpec().key()]
    assert SweepSpec().key() == "793038a0c0feacbcc22b"


@pytest.mark.parametrize("text,message", [
    ("sweeps: []\n", "list of sweeps"),
    ("sweeps:\n  - strategies: [nope]\n", "unknown strategy"),
    ("sweeps:\n  - colour: red\n", "unknown sweep setting"),
    ("sweeps: [unclosed\n", "not valid YAML"),
    ("sweeps:\n  - labels_per_class: [1, two]\n", "positive integers or 'all', got 'two'"),
    ("sweeps:\n  - labels_per_class: [0]\n", "must be positive, got 0"),
    ("sweeps:\n  - labels_per_class: 5\n", "must be a list, e.g. \\[1, 5, all\\]"),
])
def test_bad_lesson_files_are_refused(tmp_path, text, message):
    lesson = tmp_path / "bad.yaml"
    lesson.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_lesson(lesson)
    with pytest.raises(PackError):
        load_lesson(tmp_path / "missing.yaml")


# --- the sections pack: every lesson section's default settings, shipped ----------------------

def _default_sections():
    from engine.experiments.lessons.catalog import LESSONS

    return [(lesson, name, cls.from_query({})[0])
            for lesson, classes in LESSONS.items() for name, cls in classes.items()]


@pytest.mark.parametrize("lesson, name, settings", _default_sections(),
                         ids=[f"{lesson}.{name}" for lesson, name, _ in _default_sections()])
def test_the_sections_pack_holds_every_default_section_whole(lesson, name, settings):
    """Each section's default settings: every unit is in the shipped pack, under the key the
    code gives it now (a change of key fails here: rebuild with `python -m engine pack
    sections`), and the section reads its records from the pack as from the store."""
    from engine import ENGINE_VERSION
    from engine.experiments.protocol import all_units
    from engine.infra.packs import pack_store

    pack = pack_store()
    keys = [u.key for u in all_units(settings.experiment())]
    held = {r["run_key"] for r in pack.get_many(keys)}
    assert held == set(keys), f"{lesson}.{name}: {len(set(keys) - held)} of {len(keys)} missing"
    assert pack.provenance["code_version"] == ENGINE_VERSION
    assert {"built_at", "device", "torch", "python"} <= set(pack.provenance)
    records = settings.records(pack)
    assert records is not None and (len(records) > 0 if hasattr(records, "__len__") else True)
    assert all(r.get("code_version") == ENGINE_VERSION for r in pack.get_many(keys))


def test_the_sections_pack_is_read_back_exactly_and_a_bad_one_is_empty(tmp_path, pretrained):
    from engine.experiments.lessons.curves import CurveSettings
    from engine.infra.packs import PackStore, pack_store

    settings = CurveSettings(strategies=("probe",), labels_per_class=(1,), seeds=1)
    store = ResultStore(tmp_path / "store.sqlite")
    from engine.experiments.protocol import run_experiment, stored_units

    run_experiment(settings.experiment(), store)
    units = stored_units(settings.experiment(), store)
    path = tmp_path / "sections.json"
    path.write_text(json.dumps({"kind": "sections", "provenance": {"device": "x"}, "units": units}))
    assert PackStore(path).get_many(units) == store.get_many(units)
    assert pack_store(path).count() == 1
    for bad in ("{", "[1, 2]", json.dumps({"units": [1]})):
        path.write_text(bad)
        assert PackStore(path).count() == 0 and PackStore(path).get_many(["a"]) == []
    assert PackStore(tmp_path / "missing.json").count() == 0


def _lessons_with_sections():
    from ui.catalog import PAGES

    return [lesson for lesson in PAGES if lesson.sections]


@pytest.mark.parametrize("lesson", _lessons_with_sections(), ids=lambda lesson: lesson.path)
def test_a_first_visit_shows_every_section_from_the_pack(lesson, empty_default_store):
    """A fresh data directory: every section of every lesson page shows the pack's results,
    each said to be precomputed (where, when, by which engine), and the page draws its charts."""
    from tests.test_pages import open_page

    at = open_page(lesson.path)
    assert not at.exception, [e.value for e in at.exception]
    notes = [i.value for i in at.info if i.value.startswith("Precomputed results from the lesson pack")]
    assert len(notes) == len(lesson.sections), notes
    assert all("CPU" in n and "engine 0.1.0" in n and "Press Run" in n for n in notes)
    assert not any(i.value.startswith("None of the") for i in at.info)
    reveal = [b for b in at.button if b.key == "predict.reveal"]  # behind Predict first
    if reveal:
        reveal[0].click().run()
    assert at.get("plotly_chart")


def test_a_merged_store_takes_the_packs_record_only_where_the_store_has_none(tmp_path):
    """Lessons share units: the store's own run wins, the pack fills in the rest."""
    from ui.kit.jobs import MergedStore

    store = ResultStore(tmp_path / "store.sqlite")
    store.put({"run_key": "a", "test_accuracy": 71.0})
    path = tmp_path / "sections.json"
    path.write_text(json.dumps({"units": {"a": {"run_key": "a", "test_accuracy": 60.0},
                                          "b": {"run_key": "b", "test_accuracy": 80.0}}}))
    from engine.infra.packs import PackStore

    merged = MergedStore(store, PackStore(path))
    got = {r["run_key"]: r["test_accuracy"] for r in merged.get_many(["a", "b", "c"])}
    assert got == {"a": 71.0, "b": 80.0}


def test_a_section_partly_trained_here_shows_the_rest_from_the_pack(empty_default_store):
    """Transfer curves' own scratch runs are also the negative-transfer section's: with them
    stored, When transfer hurts shows whole curves, the pack's runs for the rest, and says
    which are which."""
    from engine.experiments.lessons.hurts import NegativeSettings
    from engine.experiments.protocol import all_units
    from engine.infra.packs import pack_store
    from tests.test_pages import open_page

    settings = NegativeSettings.from_query({})[0]
    units = all_units(settings.experiment())
    shared = pack_store().get_many([units[0].key])  # one of its runs, as if trained here
    store = ResultStore(empty_default_store)
    store.put(shared[0])
    at = open_page("pages/when_transfer_hurts.py")
    assert not at.exception, [e.value for e in at.exception]
    notes = [i.value for i in at.info if i.value.startswith("Precomputed results")]
    total = len({u.key for u in units})
    assert any(f"for {total - 1} of these {total} runs" in n and "the other 1 were trained on "
               "this server" in n for n in notes), notes
    assert not any("not stored yet" in w.value for w in at.warning)


def test_a_level_reading_with_enough_seeds_says_it_is_not_shown_equal(empty_default_store):
    """Transfer on text from the pack (3 seeds): the gaps the rule leaves uncalled although
    their sides have 3 seeds are named under the reading, as the engine words them
    (`uncalled_note`), with the way to narrow them."""
    from engine.core.store import ResultStore
    from engine.experiments.lessons.text import TextCurveSettings
    from engine.experiments.readings.common import uncalled_note
    from engine.infra.packs import pack_store
    from tests.test_pages import open_page
    from ui.kit.jobs import MergedStore

    at = open_page("pages/transfer_on_text.py")
    reveal = [b for b in at.button if b.key == "predict.reveal"]
    if reveal:
        reveal[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    note = uncalled_note(TextCurveSettings().readings(MergedStore(ResultStore(), pack_store())))
    assert note is not None and "gaps quoted above are at least 1 point yet not called" in note
    assert note + (" Raise Seeds in the form above and press Run: only the new seeds train."
                   ) in [c.value for c in at.caption]
