"""Chart exports: PNG and SVG drawn without a browser (`ui.kit.chart_image`), and the CSV of the runs
behind a chart (`ui.kit.exports`), on the default lesson pack's real runs and on figures with the
other kinds of trace the lessons draw (bars, a second axis, log axes, reference lines)."""

from __future__ import annotations

import io
import struct
import time
import xml.etree.ElementTree as ET

import pandas as pd
import plotly.graph_objects as go
import pytest

from engine.experiments.sweep import SweepSpec
from engine.infra.packs import pack_records
from ui.kit.chart_image import SCALE, WIDTH, ChartImageError, image_size, render, unsupported
from ui.kit.exports import chart_csv, figure_frame, file_stem, runs_frame
from ui.kit.figures import chart_layout, transfer_curve_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    """The default lesson's precomputed runs: three strategies, seven sizes, several seeds."""
    found, provenance = pack_records(SweepSpec())
    assert provenance is not None and len(found) > 20
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_text(data: bytes) -> str:
    root = ET.fromstring(data)  # parses as XML, or raises
    assert root.tag == f"{SVG}svg"
    return " ".join("".join(node.itertext()) for node in root.iter(f"{SVG}text"))


def mixed_figure() -> go.Figure:
    """Stacked horizontal bars on a category axis with a note, beside the app's chart style."""
    fig = go.Figure([go.Bar(y=["Full fine-tune", "LoRA"], x=[12.0, 3.0], orientation="h",
                            name="weights"),
                     go.Bar(y=["Full fine-tune", "LoRA"], x=[30.0, 1.0], orientation="h",
                            name="optimizer state")])
    fig.add_annotation(x=42, y="Full fine-tune", text=" 42 GB", showarrow=False, xanchor="left")
    fig.update_layout(barmode="stack", xaxis_title="estimated GPU memory (GB)")
    return chart_layout(fig, 420)


def second_axis_figure() -> go.Figure:
    """A line with error bars and point labels, bars on a second y axis, a reference line."""
    fig = go.Figure([go.Scatter(x=[1, 2, 3], y=[50, 70, 90], name="accuracy",
                                mode="lines+markers+text", text=["a", "b", "c"],
                                error_y={"type": "data", "array": [3, 2, 1], "visible": True}),
                     go.Bar(x=[1, 2, 3], y=[5, 50, 500], yaxis="y2", name="weights",
                            text=["5", "50", "500"])])
    fig.add_hline(y=60, line_dash="dot", annotation_text="from scratch 60%")
    fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "showticklabels": False})
    fig.update_xaxes(title="labels", tickvals=[1, 2, 3], ticktext=["1", "10", "all"])
    return chart_layout(fig, 460)


def test_a_transfer_curve_exports_as_png_of_the_stated_size(records):
    fig = transfer_curve_figure(records, marker_n=5)
    start = time.perf_counter()
    png = render(fig, "png")
    seconds = time.perf_counter() - start
    assert png_size(png) == image_size(fig) == (WIDTH * SCALE, 500 * SCALE)
    assert len(png) > 20_000  # a drawn chart, not a blank canvas
    assert seconds < 20, f"one PNG export took {seconds:.1f} s"
    assert png_size(render(fig, "png", width=760)) == image_size(fig, 760) == (760 * SCALE, 500 * SCALE)


def test_a_transfer_curve_exports_as_svg_with_its_titles_and_curves(records):
    fig = transfer_curve_figure(records)
    text = svg_text(render(fig, "svg"))
    for title in ("labelled examples per class (log scale)", "test accuracy (%)",
                  "From scratch", "Linear probe", "Fine-tune", "strategy"):
        assert title in text, title


@pytest.mark.parametrize("build", [mixed_figure, second_axis_figure])
def test_bars_notes_and_a_second_axis_export(build):
    fig = build()
    assert unsupported(fig) is None
    assert png_size(render(fig, "png")) == image_size(fig)
    text = svg_text(render(fig, "svg"))
    for trace in fig.data:
        assert trace.name in text
    for note in fig.layout.annotations:
        assert note.text.strip() in text


def test_a_chart_it_cannot_draw_is_refused_with_the_reason():
    fig = go.Figure(go.Pie(values=[1, 2], labels=["a", "b"]))
    assert "pie" in unsupported(fig)
    with pytest.raises(ChartImageError, match="pie"):
        render(fig, "png")
    with pytest.raises(ChartImageError, match="format"):
        render(go.Figure(), "gif")
    assert chart_csv(fig).splitlines() == ["series,x,y"]  # the CSV still works: no points
    points = chart_csv(go.Figure(go.Scatter(x=[1], y=[2], name="s")))
    assert points.splitlines() == ["series,x,y", "s,1,2"]


def test_the_csv_has_a_row_per_run_and_the_columns_a_student_reads_first(records):
    frame = pd.read_csv(io.StringIO(chart_csv(transfer_curve_figure(records), records)))
    assert len(frame) == len(records)
    assert list(frame.columns[:7]) == ["strategy", "strategy_name", "labels_per_class",
                                       "all_labels", "n_train", "seed", "test_accuracy"]
    assert set(frame.columns) >= set(records.columns)
    assert set(frame["strategy_name"]) == {"From scratch", "Linear probe", "Fine-tune"}
    assert frame["test_accuracy"].tolist() == records["test_accuracy"].tolist()


def test_records_by_name_with_values_per_epoch_become_a_row_per_epoch():
    arms = {"finetune": {"arm": "finetune", "epoch": [0, 1, 2], "source_accuracy": [99, 80, 70],
                         "target_accuracy": [10, 60, 80], "settings": {"lr": 0.003},
                         "layers": ["conv1", "conv2"], "device": "cpu"},
            "freeze": {"arm": "freeze", "epoch": [0, 1, 2], "source_accuracy": [99, 95, 94],
                       "target_accuracy": [10, 50, 70], "settings": {"blocks": 2},
                       "layers": ["conv1", "conv2"], "device": "cpu"}}
    frame = runs_frame(arms)
    assert len(frame) == 6 and frame.columns[0] == "unit"
    assert frame[frame["unit"] == "freeze"]["source_accuracy"].tolist() == [99, 95, 94]
    assert frame["layers"].iloc[0] == "conv1; conv2"  # a list of another length: joined
    assert frame["settings"].iloc[0] == '{"lr": 0.003}'


def test_a_chart_without_runs_exports_its_points_with_their_error():
    frame = figure_frame(second_axis_figure())
    assert list(frame.columns) == ["series", "x", "y", "error (±)"]
    assert len(frame) == 6 and frame["error (±)"].tolist()[:3] == [3, 2, 1]
    with_band = transfer_curve_figure(pd.DataFrame({
        "strategy": ["probe"] * 4, "labels_per_class": [1, 1, 5, 5], "all_labels": [False] * 4,
        "n_train": [10, 10, 50, 50], "seed": [0, 1, 0, 1], "test_accuracy": [50., 60., 80., 82.]}))
    assert len(figure_frame(with_band)) == 2  # the ±1 std band is not a series of its own


def test_file_names_say_what_the_chart_is():
    assert file_stem("Transfer curves: UCI digits") == "transfer-curves-uci-digits"
    assert file_stem("../../etc/passwd") == "etc-passwd"
    assert file_stem("") == "chart"


def test_the_class_pages_box_plots_export():
    """The Class page's charts (a box of the class's predictions per strategy, the runs' mean
    beside it) export like every other chart: boxes, their points and the mean, in PNG and SVG,
    the same bytes every time (the points' jitter is fixed)."""
    fig = go.Figure()
    fig.add_trace(go.Box(y=[40.0, 55.0, 60.0, 70.0, 85.0], x=["Linear probe"] * 5, name="Linear probe",
                         boxpoints="all", jitter=0.5, marker={"color": "#0072B2", "size": 9},
                         line={"color": "#0072B2"}, showlegend=False))
    fig.add_trace(go.Box(y=[30.0, 35.0, 50.0], x=["From scratch"] * 3, name="From scratch",
                         boxpoints="all", marker={"color": "#D55E00"}, line={"color": "#D55E00"},
                         showlegend=False))
    fig.add_trace(go.Scatter(x=["Linear probe", "From scratch"], y=[62.0, 38.0], mode="markers",
                             name="the runs' mean"))
    fig.update_layout(height=400, title="Predicted accuracy at 5 labels per class")
    assert unsupported(fig) is None
    png = render(fig, "png")
    assert png_size(png) == image_size(fig) and render(fig, "png") == png
    text = svg_text(render(fig, "svg"))
    assert "Linear probe" in text and "From scratch" in text and "Predicted accuracy" in text
    svg = render(fig, "svg").decode()
    assert svg.count("<path") > 10  # boxes, whiskers, medians and the points are drawn
