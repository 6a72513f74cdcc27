"""Lesson packs: built from real runs by the CLI's code path, shipped, and read back exactly."""

import json

import pytest

from engine.infra.packs import PackError, build_pack, load_lesson, pack_records
from engine.experiments.stats import summarize
from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, stored_records


def test_shipped_default_pack_matches_the_default_spec():
    records, provenance = pack_records(SweepSpec())
    assert len(records) == 63 and provenance is not None
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


@pytest.mark.parametrize("text,message", [
    ("sweeps: []\n", "list of sweeps"),
    ("sweeps:\n  - strategies: [nope]\n", "unknown strategy"),
    ("sweeps:\n  - colour: red\n", "unknown sweep setting"),
    ("sweeps: [unclosed\n", "not valid YAML"),
])
def test_bad_lesson_files_are_refused(tmp_path, text, message):
    lesson = tmp_path / "bad.yaml"
    lesson.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_lesson(lesson)
    with pytest.raises(PackError):
        load_lesson(tmp_path / "missing.yaml")
