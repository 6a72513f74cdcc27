"""The "When transfer hurts" and "Forgetting" lessons: each section renders, runs a tiny real
experiment through the server's job manager, and reads the run's own numbers back."""

from __future__ import annotations

import json

import pytest

from test_pages import TIMEOUT, no_jobs_left_running, open_page, texts, wait_until  # noqa: F401

HURTS = "pages/when_transfer_hurts.py"
FORGETTING = "pages/forgetting.py"

# Links the "When transfer hurts" page wrote before its sections' settings became dataclasses,
# with the keys of the sweep groups it submitted then (and now).
OLD_HURTS_LINKS = [
    # the page's default was 2 seeds before the rule needed 3: that link now names its seeds
    ("NegativeSettings", {"neg_seeds": "2"}, "a9c5dcd82b5ff4379dda"),
    ("NegativeSettings", {}, "975ca425c748165ae19c"),  # the default now: 3 seeds
    ("NegativeSettings", {"neg": "randlabels", "neg_labels": "1", "neg_seeds": "1"},
     "8d9c04629ff0ff1a57e7"),
    ("NegativeSettings", {"neg": "permuted", "neg_labels": "2,10,50", "neg_seeds": "5"},
     "eefc98a991b8b708d9c2"),
    ("ShiftSettings", {"shift_seeds": "2"}, "80bf2b051ee770ed82a1"),
    ("ShiftSettings", {}, "5156fcc801bfedcb3fa8"),  # the default now: 3 seeds
    ("ShiftSettings", {"shift": "noise", "shift_max": "0.6", "shift_steps": "2", "shift_labels": "1",
                       "shift_seeds": "1"}, "024bf6de71a03ec080bb"),
    ("ShiftSettings", {"shift": "blur", "shift_max": "2.5", "shift_steps": "5", "shift_labels": "5,50",
                       "shift_seeds": "3"}, "109a35c8580f29b93078"),
    ("ShiftSettings", {"shift": "invert", "shift_seeds": "2"}, "c88705f6ca6e5273de8b"),  # its own highest
    ("ShiftSettings", {"shift": "invert"}, "69007e425e56ba9fb26d"),
]


def run_buttons(at):
    return [b for b in at.button if b.label == "Run"]


def wait_for(spec, what: str) -> None:
    from ui.kit.jobs import job_manager

    def ended():
        job = job_manager().status(spec.key())
        return job is not None and not job.active
    wait_until(ended, what=what)
    job = job_manager().status(spec.key())
    assert job.state == "done", (job.state, job.error)


def no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("name,link,key", OLD_HURTS_LINKS)
def test_an_old_hurts_link_opens_the_same_experiment(name, link, key):
    from engine.experiments.lessons import hurts

    cls = getattr(hurts, name)
    settings, notices = cls.from_query(link)
    assert notices == [] and settings.experiment().key() == key
    assert cls.from_query(settings.to_query()) == (settings, [])
    assert cls.from_query({**link, "x": "1"})[0] == settings  # other pages' keys are not read


def test_hurts_settings_refuse_what_the_forms_cannot_make():
    from engine.experiments.lessons.hurts import NegativeSettings, ShiftSettings

    for make, reason in [(lambda: NegativeSettings(labels_per_class=()), "at least one"),
                         (lambda: NegativeSettings(shift="scrambled"), "mismatched"),
                         (lambda: ShiftSettings(seeds=6), "seeds"),
                         (lambda: ShiftSettings(kind="noise", highest=90.0), "highest"),
                         (lambda: ShiftSettings(steps=1), "levels")]:
        with pytest.raises(ValueError, match=reason):
            make()


def test_hurts_page_explains_both_failure_modes_before_anything_is_stored(empty_default_store, no_sections_pack):
    at = open_page(HURTS)
    assert at.title[0].value == "When transfer hurts"
    assert [h.value for h in at.header] == ["Negative transfer: a source that teaches the wrong things",
                                            "Domain shift: the same digits, a different look"]
    body = texts(at.markdown)
    assert "Negative transfer" in body and "head-start" in body
    assert "None of the 36 runs" in texts(at.info)  # 2 sources x 2 strategies x 3 sizes x 3 seeds
    assert len(at.get("image")) == 4  # the severity preview (0, 30, 60, 90°) needs no training
    assert len(run_buttons(at)) == 2


def test_both_sections_run_and_read_their_own_numbers(pretrained, empty_default_store):
    from engine.experiments.lessons.hurts import negative_group, shift_group, shift_levels

    at = open_page(HURTS)
    at.radio[0].set_value("randlabels")
    at.multiselect(key="neg_labels").set_value([1])
    at.number_input(key="neg_seeds").set_value(1)
    run_buttons(at)[0].click().run(timeout=TIMEOUT)
    no_exception(at)
    assert any(b.label == "Cancel" for b in at.button)  # the live panel of the running job
    at.selectbox(key="shift_kind").set_value("noise").run(timeout=TIMEOUT)
    next(s for s in at.slider if s.label.startswith("Highest severity")).set_value(0.6)
    next(s for s in at.slider if s.label == "Severity levels above 0").set_value(2)
    at.multiselect(key="shift_labels").set_value([1])
    at.number_input(key="shift_seeds").set_value(1)
    run_buttons(at)[1].click().run(timeout=TIMEOUT)
    no_exception(at)
    assert at.query_params["neg"] == "randlabels" and at.query_params["shift"] == "noise"

    wait_for(negative_group("randlabels", (1,), 1), "the negative-transfer job")
    levels = shift_levels("noise", 0.6, 2)
    assert levels == (0.0, 0.3, 0.6)
    wait_for(shift_group("noise", levels, (1,), 1), "the domain-shift job")
    at.run(timeout=TIMEOUT)
    no_exception(at)
    curves, shift = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    assert {t.get("legendgroup") for t in curves["data"]} >= {
        "From scratch", "Fine-tune from MNIST (matched source)",
        "Fine-tune from MNIST with random labels", "Probe on MNIST with random labels"}
    table = at.table[0].value
    gap = table["Mismatched fine-tune minus scratch (points)"].iloc[0]
    scratch = table["From scratch"].iloc[0]
    # the gap is computed from unrounded means; the shown accuracies are rounded to 0.1 each
    shown = table["Fine-tune from MNIST with random labels"].iloc[0] - scratch
    assert abs(gap - shown) <= 0.1 + 1e-9
    body = texts(at.markdown)
    # one seed: the rule calls nothing, whatever the gap, and offers more seeds
    assert "has too few seeds to call against training from scratch at 1 label per class" in body
    assert "below training" not in body and "finished above" not in body
    assert "Whether the mismatched start hurt: too few seeds to call" in body
    assert [b.label for b in at.button].count("Run again with 3 seeds") == 2  # both sections
    assert "Maennel et al." in body  # the random-labels mechanism, with its source
    assert "on held-out images of its own task" in body and "Why it can hurt" in texts(at.subheader)
    names = {t["name"] for t in shift["data"]}
    assert names == {"Linear probe, 1 label/class", "Fine-tune, 1 label/class",
                     "no head start (= from scratch)"}  # the zero line, named in the legend
    assert [list(t["x"]) for t in shift["data"] if t["name"] != "no head start (= from scratch)"] \
        == [[0.0, 0.3, 0.6]] * 2
    assert "head start at 1 label per class" in body and "Noise puts bright speckles" in body


def test_a_bad_link_falls_back_with_notices():
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"neg": "scrambled", "shift_max": "nan", "shift_labels": "1,7",
                            "f_lambda": "3", "d_lrs": "fast"})
    at.run()
    at.switch_page(HURTS).run()
    no_exception(at)
    warnings = texts(at.warning)
    assert "neg `scrambled` is not one of" in warnings and "shift_max must be a number" in warnings
    assert "shift_labels must list sizes" in warnings
    at.switch_page(FORGETTING).run()
    no_exception(at)
    warnings = texts(at.warning)
    assert "f_lambda must list values among" in warnings and "d_lrs must list values" in warnings


def test_forgetting_page_runs_both_sections(pretrained, empty_default_store, no_sections_pack):
    from engine.experiments.diagnostics import DiagnosticsConfig
    from engine.experiments.forgetting import ForgettingConfig, ForgettingSeeds

    at = open_page(FORGETTING)
    assert [h.value for h in at.header] == ["Catastrophic forgetting",
                                            "Where fine-tuning changed the network"]
    assert "None of the 15 arm runs" in texts(at.info)  # 5 arms x 3 seeds
    next(s for s in at.select_slider if s.label == "Target labels per class").set_value(10)
    next(n for n in at.number_input if n.label == "Seeds").set_value(1)
    next(s for s in at.slider if s.label == "Epochs").set_value(2)
    next(s for s in at.select_slider if s.label == "EWC λ").set_value(10000.0)
    run_buttons(at)[0].click().run(timeout=TIMEOUT)
    no_exception(at)
    next(s for s in at.select_slider if s.label == "Fine-tune labels per class").set_value(5)
    next(s for s in at.select_slider if s.label == "Probe labels per class").set_value(5)
    next(m for m in at.multiselect if m.label.startswith("Learning rates")).set_value([0.001])
    run_buttons(at)[1].click().run(timeout=TIMEOUT)
    no_exception(at)

    wait_for(ForgettingSeeds(ForgettingConfig(labels_per_class=10, epochs=2, ewc_lambda=10000.0), 1),
             "forgetting")
    wait_for(DiagnosticsConfig(labels_per_class=5, probe_labels_per_class=5, backbone_lrs=(0.001,)),
             "diagnostics")
    at.run(timeout=TIMEOUT)
    no_exception(at)
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figures) == 4  # source and target per epoch, probes per layer, CKA per block
    source = figures[0]
    assert [t["name"] for t in source["data"]] == ["Plain fine-tune", "Lower learning rate",
                                                    "Early layers frozen", "EWC", "Replay"]
    assert all(list(t["x"]) == [0, 1, 2] for t in source["data"])
    table = at.table[0].value
    plain = table.loc["Plain fine-tune"]
    assert plain["Source change (points)"] == round(plain["Source after (%)"] - plain["Source before (%)"], 1)
    body = texts(at.markdown)
    assert f"{plain['Source before (%)']:.1f}%" in body  # the reading quotes this run
    assert "whether it forgot, too few seeds to call" in body  # one seed: no call
    assert "λ = 10000" in table.loc["EWC", "Setting"]
    assert "CKA" in body and "lr **0.001**" in body
    assert at.query_params["f_lambda"] == "10000" and at.query_params["d_lrs"] == "0.001"
