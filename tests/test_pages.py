"""Page tests with Streamlit's AppTest: every page renders, and the transfer-curves page trains a
tiny sweep, draws it, reuses stored runs without training, and reports bad settings.

AppTest runs the scripts in this process, so the pages use the test session's data directory
(conftest) and the default result store, which `empty_default_store` empties per test.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

APP = ROOT / "app.py"
CURVES = "pages/transfer_curves.py"
TIMEOUT = 180  # seconds per script run
JOB_TIMEOUT = 300  # seconds to wait for a background job; a tiny sweep takes a few


@pytest.fixture(autouse=True)
def no_jobs_left_running():
    """Every test starts and ends with no active job on the app's shared job manager."""
    from ui.kit.jobs import job_manager

    def cancel_all():
        for job in job_manager().jobs():
            if job.active:
                job_manager().cancel(job.job_id)

    cancel_all()
    yield
    cancel_all()


def shown_spec(at: AppTest):
    """The sweep of the settings the curves page shows."""
    from ui.lessons.controls import CURVES

    return at.session_state[CURVES.key].experiment()


def wait_until(predicate, timeout: float = JOB_TIMEOUT, what: str = "the job") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def wait_for_job(at: AppTest) -> AppTest:
    """Poll the shared job manager until the job of the page's spec ends, then rerun the page."""
    from ui.kit.jobs import job_manager

    job_id = shown_spec(at).key()
    wait_until(lambda: not (job_manager().status(job_id) or _Inactive).active)
    return at.run()


class _Inactive:
    active = False


def open_page(path: str | None = None) -> AppTest:
    """app.py run once, then (optionally) switched to a page, as a visitor clicking the nav."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    if path is not None:
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def legend_groups(figure: dict) -> set[str]:
    return {trace.get("legendgroup") for trace in figure["data"]}


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _in_order(node):
    """Every element and block under `node`, in the order the page draws them."""
    for key in sorted(getattr(node, "children", {}) or {}):
        child = node.children[key]
        yield child
        yield from _in_order(child)


def show_results(at: AppTest) -> AppTest:
    """Press "Show the results" (predict first hides them until then) when it is offered."""
    reveal = [b for b in at.button if b.label == "Show the results"]
    return reveal[0].click().run() if reveal else at


def press_run(at: AppTest, strategies, labels, seeds: int) -> AppTest:
    widget(at.multiselect, "Strategies").set_value(list(strategies))
    widget(at.multiselect, "Labels per class").set_value(list(labels))
    widget(at.number_input, "Seeds").set_value(seeds)
    return at.button[0].click().run()


def store_count(path) -> int:
    from engine.core.store import ResultStore

    return ResultStore(path).count()


def test_home_explains_and_links_every_lesson():
    from engine.core.device import describe_device
    from engine.core.store import home_dir
    from engine.core.strategies import STRATEGIES
    from ui.catalog import LESSONS, TOOLS

    at = open_page()
    assert at.title[0].value == "Transfer Lab"
    assert "feature" in texts(at.markdown) and "edges" in texts(at.markdown)
    basic = [STRATEGIES[name] for name in ("scratch", "probe", "finetune")]
    assert {s.value for s in at.subheader} >= {s.label for s in basic}
    for s in basic:
        assert s.description in texts(at.markdown)
    links = [link.proto.page for link in at.get("page_link")]
    assert len(links) == len(LESSONS) + len(TOOLS)  # every page but home, each once
    # the lessons are numbered in order, the practice pages and tools are not
    labels = [link.proto.label for link in at.get("page_link")]
    assert labels[:2] == ["**1. Transfer curves**", "**2. Which source?**"]
    assert "**Quiz**" in labels and "**Class**" in labels
    assert {h.value for h in at.header} >= {"Lesson path", "Practice", "Tools"}
    assert describe_device() in texts(at.main.markdown)
    sidebar = texts(at.sidebar.markdown)
    assert describe_device() in sidebar and str(home_dir()) in sidebar and "Stored runs" in sidebar
    assert re.search(r"Server jobs:\*\* \d+ running · \d+ queued · \d+ started since launch", sidebar)


@pytest.mark.parametrize("path", ["pages/home.py", CURVES])
def test_every_page_renders_with_the_sidebar(path):
    from ui.catalog import PAGES

    at = open_page(path)
    assert at.title, f"{path} drew no title"
    # Later AppTest runs execute the page without app.py (legacy pages/ mode, as on a fresh
    # server); the page must still draw the device, data directory and run count.
    assert "Device:" in texts(at.sidebar.markdown) and "Stored runs" in texts(at.sidebar.markdown)
    assert path in {p.path for p in PAGES}


def test_tiny_sweep_draws_curves_then_reuses_the_store(pretrained, empty_default_store):
    at = show_results(open_page(CURVES))
    # An empty store on the default settings: the shipped lesson pack's curves, marked as such.
    assert "Precomputed results from the lesson pack: 105 runs" in texts(at.info)
    assert legend_groups(charts(at)[0]) == {"scratch", "probe", "finetune"}
    assert store_count(empty_default_store) == 0

    press_run(at, ["scratch", "probe"], [1, 2], 1)
    assert not at.exception and not at.error, texts(at.error)
    # Training runs in a worker process; the page shows its progress until the job ends.
    wait_for_job(at)
    assert not at.exception and not at.error, texts(at.error)
    assert store_count(empty_default_store) == 4
    assert "Trained 4 new runs" in at.status[0].proto.label
    assert not charts(at)  # new settings: hidden until predicted, skipped or shown
    (figure,) = charts(show_results(at))
    assert legend_groups(figure) == {"scratch", "probe"}
    sentence = texts(at.markdown)
    assert "At 2 labels per class, the linear probe" in sentence and "too few seeds to call" in sentence
    assert "1 seed, no interval" in sentence and "is ahead of" not in sentence
    # the session's checkpoint, trained minutes ago (else older: reused)
    assert re.fullmatch(r"trained (\d+ min )?\d+ s ago|reused",
                        {m.label: m.value for m in at.metric}["Checkpoint"])
    table = at.dataframe[0].value
    assert len(table) == 4 and list(table.columns) == [
        "Strategy", "Labels per class", "Labelled examples", "Seed", "Test accuracy (%)",
        "Train time (s)", "Device"]
    assert set(table["Strategy"]) == {"From scratch", "Linear probe"}
    assert at.get("download_button")[0].proto.label.startswith("Download")

    # The n = slider moves the marker and rewrites the sentence, without training.
    widget(at.select_slider, "n =").set_value(1).run()
    assert "At 1 label per class" in texts(at.markdown)
    assert [s["x0"] for s in charts(at)[0]["layout"]["shapes"]] == [1]

    # Leaving and coming back shows the remembered settings' curves at once.
    at.switch_page("pages/home.py").run()
    at.switch_page(CURVES).run()
    assert legend_groups(charts(at)[0]) == {"scratch", "probe"} and not at.status

    # A new session asking for the same runs trains nothing.
    again = open_page(CURVES)
    press_run(again, ["probe", "scratch"], [2, 1], 1)
    assert not again.exception and not again.status
    assert "nothing was retrained" in texts(again.success)
    assert legend_groups(charts(show_results(again))[0]) == {"scratch", "probe"}
    assert store_count(empty_default_store) == 4

    # One click under the reading runs the same settings with 3 seeds (only the new seeds train).
    add = [b for b in again.button if b.label == "Run again with 3 seeds"]
    assert add, "the reading with one seed offers more seeds"
    add[0].click().run()
    assert not again.exception and not again.error, texts(again.error)
    assert again.query_params["seeds"] == "3"
    wait_for_job(again)
    assert store_count(empty_default_store) == 12
    assert "too few seeds to call" not in texts(show_results(again).markdown).split("#### ")[1][:200]


def _fake_record(plan, accuracy: float) -> dict:
    """A stored run with chosen numbers, so the page's reading of them can be checked exactly."""
    all_labels = plan.labels_per_class == 0
    k = 126 if all_labels else plan.labels_per_class
    return {"strategy": plan.strategy, "labels_per_class": k, "all_labels": all_labels,
            "seed": plan.seed, "test_accuracy": accuracy, "train_seconds": 0.5, "device": "cpu",
            "n_train": 10 * k, "steps": 60, "backbone": "small_cnn", "source": "mnist5k",
            "target": "uci_digits", "code_version": "test", "run_key": plan.run_key}


def test_stored_default_runs_show_on_first_load_without_training(empty_default_store):
    from engine.core.store import ResultStore
    from engine.experiments.sweep import SweepSpec, plan_runs

    plans = plan_runs(SweepSpec())
    accuracy = {"scratch": 40.0, "probe": 70.0, "finetune": 65.0}
    store = ResultStore(empty_default_store)
    for plan in plans[:-5]:
        store.put(_fake_record(plan, accuracy[plan.strategy]))

    at = show_results(open_page(CURVES))  # first render, default settings, nothing pressed
    # the 5 runs not stored here come from the lesson pack, and the page says which are which
    assert ("Precomputed results from the lesson pack for 5 of these 105 runs" in texts(at.info)
            and "the other 100 were trained on this server" in texts(at.info))
    assert legend_groups(charts(at)[0]) == {"scratch", "probe", "finetune"}
    assert not at.status and store.count() == len(plans) - 5

    for plan in plans[-5:]:
        store.put(_fake_record(plan, accuracy[plan.strategy]))
    at = show_results(open_page(CURVES))
    assert not at.warning and not at.status and store.count() == len(plans)
    assert "Precomputed results" not in texts(at.info)  # all this server's own now
    assert ("At 2 labels per class, the linear probe is ahead of training from scratch by 30.0 "
            "points") in texts(at.markdown)
    assert "all (126)" in widget(at.select_slider, "n =").options
    assert len(at.dataframe[0].value) == len(plans)


def test_no_strategy_shows_an_error_not_a_traceback(empty_default_store):
    at = open_page(CURVES)
    press_run(at, [], [1], 1)
    assert not at.exception
    assert "choose at least one strategy" in texts(at.error)
    assert store_count(empty_default_store) == 0


def test_two_sessions_with_the_same_settings_share_one_job(pretrained, empty_default_store):
    from ui.kit.jobs import job_manager

    started = job_manager().jobs_started
    first, second = open_page(CURVES), open_page(CURVES)
    press_run(first, ["scratch", "probe"], [1, 2, 5], 2)
    press_run(second, ["scratch", "probe"], [1, 2, 5], 2)  # the same settings, another session
    for at in (first, second):
        assert not at.exception and not at.error, texts(at.error)
    assert shown_spec(first).key() == shown_spec(second).key()
    assert job_manager().jobs_started == started + 1
    job = job_manager().status(shown_spec(first).key())
    if job.active:  # the live panel: progress bar and a Cancel button
        second.run()
        assert second.progress and any(b.label == "Cancel" for b in second.button)
    wait_for_job(first)
    wait_for_job(second)
    assert store_count(empty_default_store) == 12
    assert legend_groups(charts(show_results(second))[0]) == {"scratch", "probe"}
    assert job_manager().jobs_started == started + 1


def test_cancel_ends_the_job_and_keeps_finished_runs(pretrained, empty_default_store):
    from ui.kit.jobs import job_manager

    at = open_page(CURVES)
    press_run(at, ["scratch", "probe", "finetune"], [1, 2, 5, 10, 20, 50], 3)  # 54 runs
    assert not at.exception and not at.error, texts(at.error)
    job_id = shown_spec(at).key()
    assert job_manager().status(job_id).active
    wait_until(lambda: store_count(empty_default_store) >= 1, what="the first stored run")
    at.run()
    assert at.progress, "an active job shows its progress"
    # right under the form, in sight after Run: above the predictions and the pretraining panel
    order = [type(node).__name__ + ":" + str(getattr(node, "label", "") or getattr(node, "value", ""))
             for node in _in_order(at.main)]
    progress = next(i for i, name in enumerate(order) if name.startswith("Progress"))
    predict = next(i for i, name in enumerate(order) if "Predict first: how accurate" in name)
    pretraining = next(i for i, name in enumerate(order) if "Step 1: pretraining" in name)
    assert progress < predict < pretraining
    widget(at.button, "Cancel").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = job_manager().status(job_id)
    assert job.state == "cancelled" and not job.active
    kept = store_count(empty_default_store)
    assert 1 <= kept < 54
    assert f"{kept} of 54 runs" in texts(at.warning)
    assert charts(show_results(at)), "the finished runs are drawn"
    time.sleep(1.0)
    assert store_count(empty_default_store) == kept, "a cancelled job trains nothing more"


def test_curve_figures_are_shared_between_identical_results():
    from engine.infra.packs import pack_records
    from engine.experiments.sweep import SweepSpec
    from ui.lessons.curves import curve_figure

    spec = SweepSpec()
    records, _ = pack_records(spec)
    first = curve_figure(records, spec.strategies)
    assert curve_figure(records.copy(), spec.strategies) is first  # built once, handed out again
    changed = records.copy()
    changed.loc[0, "test_accuracy"] += 1.0  # same run keys, another result (e.g. pack vs store)
    assert curve_figure(changed, spec.strategies) is not first
    assert curve_figure(records, spec.strategies, marker_n=5) is not first


# --- one chart style on every page --------------------------------------------------------------

def _assert_readable(figure) -> None:
    """Chart text of at least 14 px and dark; the legend in rows under the plot."""
    layout = figure.layout
    assert layout.font.size >= 14 and layout.font.color == "#1A1A1A"
    legend = layout.legend  # in rows at the bottom of the figure, under the plot
    assert legend.orientation == "h" and legend.yref == "container" and legend.y == 0
    assert legend.font.size >= 14
    axes = [a for name in dir(layout) if name.startswith(("xaxis", "yaxis"))
            and (a := getattr(layout, name)) is not None]
    assert axes and all(a.tickfont.size >= 14 and a.title.font.size >= 14 for a in axes)


def _colors(figure) -> dict:
    """Each trace's name -> its line (or marker) colour."""
    return {t.name: (t.line.color if getattr(t, "line", None) is not None and t.line.color
                     else t.marker.color) for t in figure.data}


def _records(rows) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame([{"strategy": s, "labels_per_class": k, "all_labels": False, "seed": seed,
                          "test_accuracy": acc, "n_train": 10 * k, "run_key": f"{s}-{k}-{seed}"}
                         for s, k, seed, acc in rows])


def test_every_figure_builder_uses_the_strategy_colours_and_readable_text():
    import pandas as pd

    from engine.experiments.diagnostics import BASELINE
    from engine.experiments.lora_presets import memory_estimates
    from engine.experiments.stats import summarize
    from ui.lessons import depth, forgetting, hurts, lora
    from ui.lessons.curves import curve_figure
    from ui.kit.figures import COLORS, strategy_color, transfer_curve_figure
    from ui.kit.text import count_text

    scratch, probe, tune = COLORS["scratch"], COLORS["probe"], COLORS["finetune"]
    assert len(set(COLORS.values())) == len(COLORS)  # one colour per strategy
    curves = transfer_curve_figure(_records([(s, k, 0, 50.0) for s in ("scratch", "probe", "finetune")
                                             for k in (1, 2)]))
    assert {k: v for k, v in _colors(curves).items() if v} == {
        "From scratch": scratch, "Linear probe": probe, "Fine-tune": tune}
    # a lesson's own curve names take their strategy's colour; curves of one strategy differ by dash
    named = curve_figure(_records([("From scratch (small CNN)", 1, 0, 30.0),
                                   ("Probe on MNIST", 1, 0, 60.0), ("Probe on ImageNet", 1, 0, 40.0)]),
                         ["From scratch (small CNN)", "Probe on MNIST", "Probe on ImageNet"],
                         strategy_of={"From scratch (small CNN)": "scratch", "Probe on MNIST": "probe",
                                      "Probe on ImageNet": "probe"})
    lines = {t.name: t.line for t in named.data}
    assert lines["From scratch (small CNN)"].color == scratch
    assert lines["Probe on MNIST"].color == lines["Probe on ImageNet"].color == probe
    assert lines["Probe on MNIST"].dash != lines["Probe on ImageNet"].dash

    shift = pd.DataFrame([{"severity": v, "strategy": s, "labels_per_class": 1, "head_start": 5.0,
                           "std": 0.0, "seeds": 1, "scratch": 40.0, "accuracy": 45.0}
                          for v in (0.0, 30.0) for s in ("probe", "finetune")])
    head_start = hurts.head_start_figure(shift, "rotate")
    reference = "no head start (= from scratch)"  # the zero line, named in the legend
    assert set(c for name, c in _colors(head_start).items() if name != reference) == {probe, tune}
    assert [t.x for t in head_start.data if t.name == reference] == [(None,)]
    assert not any(t.error_y.visible for t in head_start.data)  # one seed: no error bars

    depth_summary = summarize(_records(
        [(f"{f}:{k}", 1, seed, 50.0 + seed) for f in ("partial", "copy-frozen", "copy-tuned")
         for k in (1, 2) for seed in (0, 1)] + [("scratch", 1, 0, 30.0)]))
    freeze = depth.freeze_figure(depth_summary)
    assert _colors(freeze)["Test accuracy"] == tune
    assert [t.text for t in freeze.data if t.type == "bar"] == [  # counts written out, not 113.19k
        tuple(count_text(depth.trainable_weights(f"partial:{k}")) for k in (1, 2))]
    copy = depth.copy_figure(depth_summary)
    assert _colors(copy) == {"Copied blocks frozen": strategy_color("copy-frozen"),
                             "Copied blocks fine-tuned": strategy_color("copy-tuned")}

    arms = {arm: {"epoch": [0, 1], "source_accuracy": [90.0, 80.0], "target_accuracy": [10.0, 60.0]}
            for arm in forgetting.ARM_COLORS}
    per_epoch = forgetting.forgetting_figure(arms, "source")
    assert _colors(per_epoch)["Plain fine-tune"] == tune
    layers = ["input", "block1", "block2"]
    units = {BASELINE: {"layers": layers, "pixels_probe": 50.0, "untrained_probe": [40.0, 30.0],
                        "pretrained_probe": [70.0, 80.0]},
             "lr": {"layers": layers, "backbone_lr": 0.001, "finetuned_probe": [72.0, 85.0],
                    "cka_target": [0.99, 0.9], "cka_source": [0.98, 0.8]}}
    probes, cka = forgetting.probe_figure(units), forgetting.cka_figure(units)
    assert _colors(probes)["Pretrained (before fine-tuning)"] == probe
    assert tune in _colors(probes).values()
    assert cka.layout.yaxis.range[1] > 1.05  # room above the line at 1 for its label

    trade = lora.tradeoff_figure(lora.tradeoff_table(_records(
        [(s, 1, 0, 60.0) for s in ("probe", "finetune", "lora:r2", "lora:r8")])))
    assert _colors(trade) == {"LoRA": COLORS["lora"], "Linear probe": probe, "Fine-tune": tune}
    preset = "gpt3-175b"
    figures = [curves, named, head_start, freeze, copy, per_epoch, probes, cka, trade,
               lora.rank_figure(preset),
               lora.memory_figure(memory_estimates(preset, 8, ("q_proj", "v_proj")))]
    for figure in figures:
        _assert_readable(figure)


def test_the_data_page_lists_each_built_in_dataset_on_its_own_line():
    from engine.core.datasets import DATASETS

    at = open_page("pages/data_models.py")
    assert not at.exception
    listing = next(m.value for m in at.markdown if m.value.startswith("Built in, always available:"))
    lines = listing.splitlines()[1:]
    assert lines == [f"- **{i.title}**: {i.description}" for i in DATASETS.values()]
    assert ".;" not in listing


def test_the_checkpoint_says_when_it_was_trained_or_that_it_was_reused():
    from ui.lessons.curves import FRESH_CHECKPOINT_S, checkpoint_state

    assert checkpoint_state(1000.0, 1042.0) == "trained 42 s ago"
    assert checkpoint_state(1000.0, 1000.0 + 185) == "trained 3 min 05 s ago"
    assert checkpoint_state(1000.0, 1000.0 + FRESH_CHECKPOINT_S) == "reused"
