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
