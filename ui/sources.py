"""The "Which source?" comparison: three sweeps on one target, drawn as one chart.

The comparison is three `SweepSpec`s at the same labels per class and seeds: the small CNN
pretrained on MNIST (scratch and probe), EfficientNet-Lite0 trained on ImageNet (probe) and the
small CNN left untrained (probe). Each runs as its own background job; the records of the three
are relabelled by where their features came from and drawn together. Nothing here trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from engine.core.datasets import DATASETS, USER_PREFIX
from engine.core.imagenet import IMAGENET_MODELS, weights_status
from engine.core.remote import REMOTE_DATASETS, missing_files
from engine.core.store import ResultStore
from engine.experiments.sweep import IMAGENET, UNTRAINED, SweepSpec, plan_runs, stored_records
from engine.core.userdata import list_uploads
from ui.curves import curve_figure
from ui.jobs import POLL_SECONDS, job_manager, seconds_text

IMAGENET_BACKBONE = "efficientnet_lite0"


@dataclass(frozen=True)
class Curve:
    label: str  # the legend entry
    source: str  # the spec's source
    strategy: str  # the strategy whose runs draw this curve


def curves_for(imagenet: str = IMAGENET_BACKBONE) -> tuple[Curve, ...]:
    """The comparison's curves, in legend order, with `imagenet` as the photo network."""
    title = IMAGENET_MODELS[imagenet].title.split(" (")[0]
    return (
        Curve("From scratch (small CNN, no pretraining)", "mnist5k", "scratch"),
        Curve("Probe on the small CNN pretrained on MNIST digits", "mnist5k", "probe"),
        Curve(f"Probe on {title} trained on ImageNet photos", IMAGENET, "probe"),
        Curve("Probe on the small CNN left untrained (random weights)", UNTRAINED, "probe"),
    )


CURVES = curves_for()


def comparison_specs(labels: tuple[int, ...], seeds: int, target: str = "uci_digits",
                     imagenet: str = IMAGENET_BACKBONE) -> list[SweepSpec]:
    """The three sweeps of the comparison (on the default target, MNIST's shares its runs with
    the curves lesson); the ImageNet one only when `imagenet`'s weights are on disk."""
    common = dict(target=target, labels_per_class=labels, seeds=seeds)
    specs = [SweepSpec(strategies=("scratch", "probe"), **common),
             SweepSpec(source=UNTRAINED, strategies=("probe",), **common)]
    if weights_status(imagenet)[0]:
        specs.insert(1, SweepSpec(source=IMAGENET, backbone=imagenet, strategies=("probe",),
                                  **common))
    return specs


def spec_curves(specs: list[SweepSpec]) -> tuple[Curve, ...]:
    photo = next((s.backbone for s in specs if s.source == IMAGENET), IMAGENET_BACKBONE)
    return curves_for(photo)


def target_choices() -> dict[str, str]:
    """Targets this server can use now: name -> title (built-in digits, downloaded datasets,
    uploads)."""
    choices = {"uci_digits": DATASETS["uci_digits"].title}
    choices.update({name: info.title for name, info in REMOTE_DATASETS.items()
                    if not missing_files(name)})
    choices.update({f"{USER_PREFIX}{u.digest}": f"Your upload: {u.name}" for u in list_uploads()})
    return choices


def comparison_records(specs: list[SweepSpec]) -> pd.DataFrame:
    """Every stored run of the comparison, with `strategy` replaced by its curve's label."""
    frames = []
    store = ResultStore()
    for spec in specs:
        records = stored_records(spec, store)
        for curve in spec_curves(specs):
            if curve.source == spec.source:
                part = records[records["strategy"] == curve.strategy].copy()
                part["strategy"] = curve.label
                frames.append(part)
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def total_runs(specs: list[SweepSpec]) -> int:
    return sum(len(plan_runs(s)) for s in specs)


def active_jobs(specs: list[SweepSpec]) -> list:
    manager = job_manager()
    jobs = [manager.status(s.key()) for s in specs]
    return [j for j in jobs if j is not None and j.active]


def draw_comparison(records: pd.DataFrame, specs: list[SweepSpec], key: str) -> None:
    present = set(records["strategy"])
    st.plotly_chart(curve_figure(records, [c.label for c in spec_curves(specs)
                                           if c.label in present]), key=key)


@st.fragment(run_every=POLL_SECONDS)
def live_comparison(specs: list[SweepSpec]) -> None:
    """Progress of the comparison's jobs and the curves so far; a full rerun when all end."""
    jobs = active_jobs(specs)
    if not jobs:
        st.rerun(scope="app")
        return
    records = comparison_records(specs)
    total = total_runs(specs)
    with st.container(border=True):
        st.markdown(f"**Training the comparison: {len(records)} of {total} runs stored**")
        st.progress(len(records) / total if total else 1.0)
        lines = []
        for job in jobs:
            where = (f"waiting (position {job.queue_position})" if job.state == "queued"
                     else f"{job.done} of {job.total} runs, {job.message}")
            lines.append(f"- {job.spec.source} / {job.spec.backbone}: {where} · elapsed "
                         f"{seconds_text(job.elapsed)}")
        st.markdown("\n".join(lines))
        st.caption("Each source trains as its own background job; leaving the page does not stop "
                   "them, and every finished run is kept.")
        st.button("Cancel", icon=":material/stop:", key="cancel_comparison",
                  on_click=lambda: [job_manager().cancel(j.job_id) for j in jobs])
    if not records.empty:
        draw_comparison(records, specs, "which_source_live")
