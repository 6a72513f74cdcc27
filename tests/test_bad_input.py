"""The catalogue of bad input: what a user, a link or a damaged disk can throw at the app.

Each case has a clear message in the page (or one line and exit status 2 from the command
line), the app still serving afterwards, and nothing already stored lost or corrupted. Cases an
existing test already covers in full are listed here with that test instead of being repeated;
each listed test asserts the message and that nothing stored is lost.

| Case | Covered by |
| --- | --- |
| corrupt zip | `test_a_refused_zip_changes_nothing_stored[corrupt]`, `test_the_data_page_refuses_bad_zips_and_keeps_serving`; test_userdata.py: `test_truncated_zip_is_refused_as_corrupt`, `test_damaged_member_is_named` |
| zip with `../` paths | `...[climbing]`; test_userdata.py: `test_paths_escaping_the_folder_are_named` (absolute and drive paths too) |
| zip with symlinks | `...[symlink]`; test_userdata.py: `test_symlinks_are_named` |
| zip bomb (small file, huge uncompressed size) | `...[bomb]` (2 MB unpacking to 520 MB, refused before a byte is inflated); test_userdata.py: `test_header_that_understates_a_size_is_refused`, `test_bytes_actually_read_are_counted_too` (headers that lie) |
| non-image files | `...[not-images]`; test_userdata.py: `test_files_that_are_not_images_by_content_are_named`, `test_truncated_image_is_named` |
| one class only | `...[one-class]`; test_userdata.py: `test_fewer_than_two_classes` |
| an empty class | `...[empty-class]`; test_userdata.py: `test_empty_class_folder_counts_as_a_class_with_no_images` |
| an image of 20000x20000 pixels | `...[huge-image]` (in a zip); `test_a_huge_photo_is_refused_from_its_header` (the photo to classify: engine, page, command line); test_userdata.py: `test_images_over_the_pixel_cap_are_refused_from_their_header` |
| RGBA, 16-bit and palette images | test_userdata.py: `test_modes_are_converted_to_rgb_properly` (uploads, exact pixel values); `test_photo_modes_are_converted_to_rgb` (the photo to classify) |
| labels per class beyond what exists | `test_more_labels_than_an_upload_holds_is_refused_in_the_page`; test_engine.py: `test_spec_is_frozen_hashable_and_validated`; test_cli.py: `test_bad_input_is_refused_in_one_line[args3-at most]`; test_userdata.py: `test_class_with_fewer_images_than_asked_is_named` |
| zero or negative seeds, learning rates, ranks | `test_configs_refuse_bad_numbers`, `test_the_command_line_refuses_bad_numbers`; test_links.py: `test_a_tampered_link_shows_a_notice_and_the_default` (seeds=-4) |
| NaN in a numeric field | the `nan` cases of the two tests above; `test_nan_in_a_link_is_refused[...]`; test_engine.py: `test_budget_validation_and_steps` |
| unknown dataset, backbone or strategy in the URL | `test_unknown_names_in_a_link_fall_back_with_a_notice`; test_security.py: `test_junk_in_a_link_gives_a_warning_not_an_exception` (every page) |
| over-long or malformed query string | `test_an_overlong_or_malformed_link_gives_a_short_notice` (every page); test_browser_pages.py: `test_a_malformed_link_in_a_real_browser` (a raw URL with stray separators, a key without value, a 3,000-character key); test_links.py (`too long`) |
| a download attempted offline | test_remote.py: `test_download_offline_says_what_to_do_and_leaves_nothing` (no partial file); test_data_page.py: `test_a_download_without_network_explains_what_to_do` (the page); test_imagenet.py: `test_fetch_without_network_is_a_clear_error` (weights) |
| a truncated checkpoint file | test_engine.py: `test_truncated_checkpoint_is_retrained_not_trusted` (the pretraining cache retrains it); `test_a_truncated_weights_file_is_named_not_a_traceback` (ImageNet weights: engine, page, command line) |
| a corrupted result store file | `test_a_damaged_result_store_is_reported_and_left_untouched[garbage/truncated]` (engine, page, command line, then the page recovers) |
| a corrupted flashcard progress file | `test_a_damaged_flashcard_progress_file_is_reported_and_left_untouched` (the Flashcards page says so, then recovers) |
| two processes writing the store at once | test_jobs.py: `test_store_stays_consistent_with_concurrent_writers` (three processes, every row kept) |
| a read-only TRANSFERLAB_HOME | `test_a_read_only_data_directory_is_reported_in_the_page`, `test_a_read_only_data_directory_is_reported_by_the_command_line` |

Zips and images are built in memory; nothing touches the network. Tests that need a data
directory of their own point TRANSFERLAB_HOME at a temporary folder (read at call time).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from test_userdata import image_bytes, make_zip, noise_png, png_header_only, two_classes

APP = ROOT / "app.py"
TIMEOUT = 180
DATA_PAGE = "pages/data_models.py"
CURVES = "pages/transfer_curves.py"


def _record(i: int) -> dict:
    return {"run_key": f"kept-{i}", "strategy": "probe", "labels_per_class": 1, "seed": i,
            "test_accuracy": 50.0 + i, "n_train": 10, "all_labels": False}


def _digest_files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private data directory holding three stored runs and one imported upload."""
    from engine.core.store import ResultStore
    from engine.core.userdata import import_zip

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    store = ResultStore()
    for i in range(3):
        store.put(_record(i))
    import_zip(make_zip(two_classes()), name="kept.zip")
    return tmp_path


def _stored_state(home: Path) -> dict:
    """Everything the cases must leave as it was: runs and uploaded files."""
    from engine.core.store import ResultStore

    return {"runs": sorted(r["run_key"] for r in ResultStore(home / "results.sqlite")
                           .get_many(f"kept-{i}" for i in range(3))),
            "uploads": _digest_files(home / "uploads")}


def open_page(path: str | None = None, params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params or {})
    at.run()
    if path is not None:
        at.switch_page(path).run()
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _cli(capsys, *args) -> tuple[int, str]:
    from engine.__main__ import main

    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


# --- zips ------------------------------------------------------------------------------------------

def _bomb() -> bytes:
    """Two real class folders and one BMP-named member of 520 MB of zeros, deflated to ~2 MB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in two_classes().items():
            zf.writestr(name, data)
        with zf.open("cats/zeros.bmp", "w", force_zip64=True) as f:
            zeros = bytes(1 << 20)
            for _ in range(520):
                f.write(zeros)
    return buf.getvalue()


BAD_ZIPS = {  # case -> (the zip's bytes, a piece of the message that must name the problem)
    "corrupt": (lambda: make_zip(two_classes())[:300], "not a zip archive, or the zip is corrupt"),
    "climbing": (lambda: make_zip(two_classes(**{"cats/../../../etc/cron.d/x.png": image_bytes()})),
                 "climb out of their folder with '..', which are refused: cats/../../../etc/cron.d/x.png"),
    "symlink": (lambda: make_zip(two_classes(**{"dogs/link.png": b"/etc/shadow"}),
                                 symlinks={"dogs/link.png"}),
                "symbolic links, which are refused: dogs/link.png"),
    "bomb": (_bomb, "uncompressed; the limit is 500.0 MB"),
    "not-images": (lambda: make_zip(two_classes(**{"cats/notes.txt": b"hello",
                                                   "dogs/model.pt": b"PK\x03\x04 not an image"})),
                   "Not images (judged by content"),
    "one-class": (lambda: make_zip({"cats/a.png": image_bytes(), "cats/b.png": image_bytes()}),
                  "at least 2 class folders, one folder per class with its images inside; found 1 (cats)"),
    "empty-class": (lambda: make_zip(two_classes(), dirs=["birds/"]), "birds (0 images)"),
    "huge-image": (lambda: make_zip(two_classes(**{"dogs/huge.png": png_header_only(20000, 20000)})),
                   "Images over 16,777,216 pixels (width x height): dogs/huge.png"),
}


@pytest.fixture(scope="module")
def bad_zips() -> dict[str, bytes]:
    return {case: make() for case, (make, _) in BAD_ZIPS.items()}


@pytest.mark.parametrize("case", list(BAD_ZIPS))
def test_a_refused_zip_changes_nothing_stored(case, bad_zips, home, monkeypatch):
    from engine.core import userdata
    from engine.core.userdata import UploadError, import_zip, list_uploads, load_user_dataset

    (kept,) = list_uploads()
    before, pixels = _stored_state(home), load_user_dataset(kept.digest).x.clone()
    if case == "bomb":  # refused from the central directory: not one byte is inflated
        monkeypatch.setattr(userdata, "_read_member", lambda *a: pytest.fail("decompressed"))
        assert len(bad_zips[case]) < 3 * 2**20
    with pytest.raises(UploadError) as refused:
        import_zip(bad_zips[case], name=f"{case}.zip")
    assert BAD_ZIPS[case][1] in str(refused.value)
    assert _stored_state(home) == before  # no new, partial or temporary file; runs intact
    assert [u.digest for u in list_uploads()] == [kept.digest]
    assert torch.equal(load_user_dataset(kept.digest).x, pixels)


def _upload(at: AppTest, label: str, name: str, data: bytes, button: str) -> AppTest:
    next(u for u in at.get("file_uploader") if u.label == label).set_value(
        (name, data, "application/zip" if name.endswith(".zip") else "image/png"))
    return next(b for b in at.button if b.label == button).click().run()


def test_the_data_page_refuses_bad_zips_and_keeps_serving(bad_zips, home):
    before = _stored_state(home)
    at = open_page(DATA_PAGE)
    for case in ("corrupt", "climbing", "symlink", "bomb", "huge-image"):
        _upload(at, "Image folders (zip)", f"{case}.zip", bad_zips[case], "Import")
        no_exception(at)
        assert "This upload was refused." in texts(at.error)
        assert BAD_ZIPS[case][1] in texts(at.error)
        assert _stored_state(home) == before
    # still serving: a good zip is imported and listed beside the one already there
    _upload(at, "Image folders (zip)", "good.zip", make_zip(two_classes(**{"cats/c.png": image_bytes()})),
            "Import")
    no_exception(at)
    # the upload's name is the visitor's text: shown with its Markdown characters escaped
    assert not at.error and r"good\.zip is imported: 5 images in 2 classes" in texts(at.success)
    assert {row["Upload"] for row in at.table[-1].value.to_dict("records")} == {"kept.zip", "good.zip"}


# --- images to classify ----------------------------------------------------------------------------

def test_a_huge_photo_is_refused_from_its_header(tmp_path, capsys, monkeypatch):
    from engine.core import imagenet
    from engine.core.imagenet import load_image

    huge, big = png_header_only(20000, 20000), png_header_only(5000, 5000)  # headers only
    with pytest.raises(ValueError, match="far too large: images are limited to 16,777,216 pixels"):
        load_image(io.BytesIO(huge))
    with pytest.raises(ValueError, match="is 5000x5000 pixels; images are limited to 16,777,216"):
        load_image(io.BytesIO(big))
    # the page
    at = open_page(DATA_PAGE)
    _upload(at, "A photo", "huge.png", huge, "Classify")
    no_exception(at)
    assert "Could not classify this file: huge.png is far too large" in texts(at.error)
    _upload(at, "A photo", "fine.png", image_bytes(size=(64, 48)), "Classify")
    no_exception(at)
    assert not at.error and "ImageNet class" in at.table[-1].value.columns  # still serving
    # the command line
    (tmp_path / "huge.png").write_bytes(huge)
    code, err = _cli(capsys, "predict", "--image", str(tmp_path / "huge.png"))
    assert code == 2 and err.startswith("error: ") and "far too large" in err and "\n" not in err
    # and a file over the size cap, refused before it is opened
    monkeypatch.setattr(imagenet, "MAX_IMAGE_MB", 0)
    with pytest.raises(ValueError, match="image files are limited to 0 MB"):
        load_image(tmp_path / "huge.png")


@pytest.mark.parametrize("mode,color,expected", [
    ("RGBA", (255, 0, 0, 0), (1.0, 1.0, 1.0)),  # fully transparent: onto white
    ("I;16", 65535, (1.0, 1.0, 1.0)),  # 16-bit white
    ("P", None, (0.0, 0.0, 1.0)),  # palette blue
])
def test_photo_modes_are_converted_to_rgb(mode, color, expected):
    from engine.core.imagenet import load_image

    buf = io.BytesIO()
    if mode == "P":
        Image.new("RGB", (12, 10), (0, 0, 255)).convert("P", palette=Image.Palette.ADAPTIVE).save(buf, "PNG")
    else:
        Image.new(mode, (12, 10), color).save(buf, "PNG")
    image = load_image(io.BytesIO(buf.getvalue()))
    assert image.shape == (3, 10, 12) and image.dtype == torch.float32
    assert torch.allclose(image, torch.tensor(expected).view(3, 1, 1).expand_as(image))


# --- numbers ---------------------------------------------------------------------------------------

NAN = float("nan")


def _configs():
    from engine.study.advisor import AdvisorInputs
    from engine.experiments.diagnostics import DiagnosticsConfig
    from engine.experiments.forgetting import ForgettingConfig
    from engine.experiments.lora_presets import count_preset
    from engine.core.pretrain import PretrainConfig
    from engine.core.strategies import get_strategy
    from engine.experiments.sweep import SweepSpec
    from engine.core.train import TrainBudget

    return {
        "seeds=0": (lambda: SweepSpec(seeds=0), "seeds must be an integer from 1"),
        "seeds=-2": (lambda: SweepSpec(seeds=-2), "seeds must be an integer from 1"),
        "seed=-1 (forgetting)": (lambda: ForgettingConfig(seed=-1), "seed must be an integer of at least 0"),
        "seed=-1 (pretraining)": (lambda: PretrainConfig(seed=-1), "seed must be a whole number, 0 or more"),
        "lr=0": (lambda: TrainBudget(lr=0), "lr must be a positive finite number"),
        "lr=-0.001": (lambda: TrainBudget(lr=-1e-3), "lr must be a positive finite number"),
        "lr=nan": (lambda: TrainBudget(lr=NAN), "lr must be a positive finite number"),
        "pretraining lr=-1": (lambda: PretrainConfig(lr=-1.0), "learning rate must be a positive number"),
        "pretraining lr=nan": (lambda: PretrainConfig(lr=NAN), "learning rate must be a positive number"),
        "forgetting lr=nan": (lambda: ForgettingConfig(lr=NAN), "lr must be a positive finite number"),
        "replay=nan": (lambda: ForgettingConfig(replay_fraction=NAN), "replay fraction must lie in [0, 1)"),
        "backbone lr=-0.001": (lambda: DiagnosticsConfig(backbone_lrs=(-1e-3,)), "positive finite"),
        "backbone lr=nan": (lambda: DiagnosticsConfig(backbone_lrs=(NAN,)), "positive finite"),
        "factor=nan": (lambda: get_strategy("discriminative:nan"), "the factor must be a number in (0, 1]"),
        "rank=0 (strategy)": (lambda: get_strategy("lora:r0"), "the LoRA rank must be an integer from 1"),
        "rank=-2 (strategy)": (lambda: get_strategy("lora:r-2"), "is not a LoRA strategy"),
        "rank=0 (count)": (lambda: count_preset("gpt2", 0, ["c_attn"]), "rank r must be a positive integer"),
        "rank=-1 (count)": (lambda: count_preset("gpt2", -1, ["c_attn"]), "rank r must be a positive integer"),
        "examples=nan": (lambda: AdvisorInputs(NAN), "labelled examples must be a whole number"),
    }


@pytest.mark.parametrize("case", list(_configs()))
def test_configs_refuse_bad_numbers(case):
    make, message = _configs()[case]
    with pytest.raises(ValueError) as refused:  # StrategyError and LoraError are ValueErrors
        make()
    assert message in str(refused.value)


@pytest.mark.parametrize("args,message", [
    (["sweep", "--seeds", "-1"], "seeds must be an integer from 1 to"),
    (["sweep", "--labels", "1,-5"], "labels per class must be positive"),
    (["sweep", "--strategies", "lora:r0"], "the LoRA rank must be an integer from 1"),
    (["pretrain", "--epochs", "0"], "pretraining epochs must be a positive integer"),
    (["pretrain", "--epochs", "-3"], "pretraining epochs must be a positive integer"),
    (["lora-params", "--preset", "gpt2", "--rank", "-1", "--targets", "c_attn"], "positive integer"),
    (["lora-params", "--preset", "gpt2", "--rank", "4", "--targets", "c_attn", "--alpha", "nan"],
     "--alpha must be a positive number, got nan"),
    (["lora-params", "--preset", "gpt2", "--rank", "4", "--targets", "c_attn", "--alpha", "-2"],
     "--alpha must be a positive number"),
])
def test_the_command_line_refuses_bad_numbers(args, message, capsys, empty_default_store):
    code, err = _cli(capsys, *args)
    assert code == 2 and err.startswith("error: ") and message in err and "\n" not in err
    assert not empty_default_store.exists()  # refused before any store was opened or written


def test_a_number_argparse_cannot_read_exits_with_its_usage(capsys):
    from engine.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(["sweep", "--seeds", "nan"])
    assert stopped.value.code == 2
    assert "argument --seeds: invalid int value: 'nan'" in capsys.readouterr().err


@pytest.mark.parametrize("page,params,notice", [
    ("pages/when_transfer_hurts.py", {"shift_max": "nan"}, "shift_max must be a number from"),
    ("pages/forgetting.py", {"f_replay": "NaN"}, "f_replay must be a number from 0 to 0.9"),
    ("pages/forgetting.py", {"f_lr": "nan"}, "f_lr must list values among"),
    ("pages/transfer_curves.py", {"seeds": "nan"}, "seeds must be a whole number from 1"),
    ("pages/lora_lab.py", {"seeds": "-0"}, "seeds must be a whole number from 1"),
])
def test_nan_in_a_link_is_refused(page, params, notice):
    at = open_page(page, params)
    no_exception(at)
    assert notice in texts(at.warning)


# --- more labels than exist ------------------------------------------------------------------------

def test_more_labels_than_an_upload_holds_is_refused_in_the_page(home):
    from engine.core.store import ResultStore
    from engine.core.userdata import import_zip

    few = import_zip(make_zip({f"{c}/{i}.png": image_bytes(color=color) for c, color in
                               (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))) for i in range(4)}),
                     name="few.zip")
    before = _stored_state(home)
    at = open_page("pages/which_source.py", {"target": f"user:{few.digest}", "labels": "50",
                                             "seeds": "1"})
    no_exception(at)
    assert at.selectbox[0].value == f"user:{few.digest}" and not at.warning
    next(b for b in at.button if b.label == "Run").click().run()
    no_exception(at)
    error = texts(at.error)
    assert f"Not started: user:{few.digest} holds at most" in error and "50 is too many" in error
    assert _stored_state(home) == before and ResultStore().count() == 3


# --- links -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("page,params,notice", [
    ("pages/which_source.py", {"target": "imagenet21k"}, "target is not a dataset this server has"),
    ("pages/which_source.py", {"target": "user:" + "0" * 64}, "target is not a dataset this server has"),
    ("pages/which_source.py", {"imagenet": "vgg99"}, "ImageNet network is not one this app knows"),
    ("pages/transfer_curves.py", {"strategies": "scratch,lora"}, "strategies are not all among"),
    ("pages/lora_lab.py", {"preset": "gpt-5"}, "architecture is not one the lab knows"),
    ("pages/lora_lab.py", {"layers": "conv9"}, "layers"),
    ("pages/when_transfer_hurts.py", {"neg": "imagenet"}, "neg `imagenet` is not one of"),
    ("pages/when_transfer_hurts.py", {"shift": "melt"}, "shift `melt` is not one of"),
])
def test_unknown_names_in_a_link_fall_back_with_a_notice(page, params, notice):
    at = open_page(page, params)
    no_exception(at)
    assert notice in texts(at.warning)
    assert at.title, "the page drew its default settings after the notice"


@pytest.mark.parametrize("kind", ["overlong", "malformed"])
def test_an_overlong_or_malformed_link_gives_a_short_notice(kind):
    from ui.catalog import PAGES

    value = "9," * 5000 if kind == "overlong" else ",,%zz&=;\x00" + "é" * 3
    for lesson in PAGES:
        params = {key: value for key in lesson.query_keys} or {"x" * 5000: value}
        at = open_page(None if lesson.default else lesson.path, params)
        no_exception(at)
        notices = [w.value for w in at.warning if "link" in w.value]
        assert notices, lesson.path
        assert all(len(n) < 600 for n in notices), (lesson.path, max(map(len, notices)))


# --- damaged files ---------------------------------------------------------------------------------

def test_a_truncated_weights_file_is_named_not_a_traceback(home, tmp_path, capsys, monkeypatch):
    from engine.core import imagenet
    from engine.core.imagenet import WeightsUnavailable, build_imagenet_model, weights_dir

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no other copy found
    info = imagenet.get_imagenet_model("resnet18")
    buf = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(1000, 512)}, buf)
    weights = weights_dir() / info.file_name
    weights.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # an interrupted copy
    truncated = weights.read_bytes()
    with pytest.raises(WeightsUnavailable, match="cannot be read; it is damaged or truncated"):
        build_imagenet_model("resnet18")
    # the page
    at = open_page(DATA_PAGE)
    at.selectbox[0].set_value("resnet18")
    _upload(at, "A photo", "cat.png", image_bytes(size=(64, 64)), "Classify")
    no_exception(at)
    assert "Could not classify this file: the weights file" in texts(at.error)
    assert "damaged or truncated" in texts(at.error)
    # the command line
    (tmp_path / "cat.png").write_bytes(image_bytes(size=(64, 64)))
    code, err = _cli(capsys, "predict", "--backbone", "resnet18", "--image", str(tmp_path / "cat.png"))
    assert code == 2 and "damaged or truncated" in err and "\n" not in err
    assert weights.read_bytes() == truncated  # left for the user to replace, never deleted


def _damage(store_path: Path, how: str) -> None:
    if how == "garbage":
        store_path.write_bytes(b"this is not SQLite" * 100)
        return
    con = sqlite3.connect(store_path)
    con.executemany("INSERT INTO runs VALUES (?, ?)",
                    [(f"filler-{i}", json.dumps({"pad": "x" * 400})) for i in range(400)])
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = store_path.read_bytes()
    store_path.write_bytes(data[: len(data) // 2])  # a disk that filled up, a copy cut short


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_result_store_is_reported_and_left_untouched(how, home, capsys):
    from engine.core.store import ResultStore, StoreError

    store_path = home / "results.sqlite"
    _damage(store_path, how)
    damaged = store_path.read_bytes()
    with pytest.raises(StoreError, match="is damaged or is not a Transfer Lab result store") as err:
        ResultStore().count()
    assert "It was left as it is: move it away or delete it" in str(err.value)
    # every page says so, in the page and the sidebar, and keeps serving
    for path in (None, CURVES):
        at = open_page(path)
        no_exception(at)
        assert "is damaged or is not a Transfer Lab result store" in texts(at.sidebar.error)
        if path == CURVES:
            assert "is damaged or is not a Transfer Lab result store" in texts(at.main.error)
    # the command line
    code, message = _cli(capsys, "sweep", "--strategies", "probe", "--labels", "1", "--seeds", "1",
                         "--no-progress")
    assert code == 2 and "is damaged or is not a Transfer Lab result store" in message
    assert store_path.read_bytes() == damaged  # never overwritten or "repaired"
    # moved away, the page works again on a fresh store
    store_path.rename(home / "results.sqlite.damaged")
    at = open_page(CURVES)
    no_exception(at)
    assert not at.error and "**Stored runs:** 0" in texts(at.sidebar.markdown)


def test_a_damaged_flashcard_progress_file_is_reported_and_left_untouched(home):
    path = home / "flashcards.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)
    at = open_page("pages/flashcards.py")
    at.text_input[0].set_value("Ada").run()  # the learner's name: then the page opens the file
    no_exception(at)
    assert "is damaged or is not a Transfer Lab flashcard progress file" in texts(at.main.error)
    assert path.read_bytes() == b"this is not SQLite" * 100
    path.rename(home / "flashcards.sqlite.damaged")  # moved away: the cards are back
    at = open_page("pages/flashcards.py")
    at.text_input[0].set_value("Ada").run()
    no_exception(at)
    assert not at.error and any(b.label == "Show answer" for b in at.button)


def _read_only(home: Path, command: list[str]) -> list[str]:
    """`command`, run where `home` is read-only: as an unprivileged user by the folder's mode;
    root ignores modes, so for root by a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        home.chmod(0o555)
        return command
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare(1): cannot make a read-only folder")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, str(home), *command]


@pytest.fixture
def read_only_home():
    """A data directory with one stored run, made read-only for a command (see _read_only)."""
    from engine.core.store import ResultStore

    home = Path(tempfile.mkdtemp(prefix="transferlab-ro-"))
    home.chmod(0o755)
    ResultStore(home / "results.sqlite").put(_record(0))
    con = sqlite3.connect(home / "results.sqlite")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every row in the main file
    con.close()
    before = _digest_files(home)
    yield home, before
    home.chmod(0o755)
    assert _digest_files(home) == before, "the read-only directory was changed"
    shutil.rmtree(home, ignore_errors=True)


def _run_read_only(home: Path, command: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRANSFERLAB_HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.run(_read_only(home, command), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if os.geteuid() == 0 and proc.returncode != 0 and "mount" in proc.stderr.split("\n")[0]:
        pytest.skip(f"running as root and cannot mount a read-only folder: {proc.stderr[:200]}")
    return proc


PAGE_SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
out = {}
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
for path in ("pages/home.py", "pages/transfer_curves.py", "pages/advisor.py"):
    if path != "pages/home.py":
        at.switch_page(path).run()
    out[path] = {"exceptions": [str(e.value) for e in at.exception],
                 "main_errors": [e.value for e in at.main.error],
                 "sidebar_errors": [e.value for e in at.sidebar.error],
                 "titles": [t.value for t in at.title]}
print(json.dumps(out))
"""


def test_a_read_only_data_directory_is_reported_in_the_page(read_only_home):
    home, _ = read_only_home
    proc = _run_read_only(home, [sys.executable, "-c", PAGE_SCRIPT, str(APP)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    pages = json.loads(proc.stdout.strip().splitlines()[-1])
    said = f"The data directory {home} is read-only."
    for path, seen in pages.items():
        assert not seen["exceptions"], (path, seen["exceptions"])
        assert seen["titles"], f"{path} drew nothing"
        assert any(said in e for e in seen["sidebar_errors"]), (path, seen)
    assert any(said in e for e in pages["pages/transfer_curves.py"]["main_errors"])
    assert not pages["pages/advisor.py"]["main_errors"]  # it needs no data directory


def test_a_read_only_data_directory_is_reported_by_the_command_line(read_only_home):
    home, _ = read_only_home
    for args in (["sweep", "--strategies", "probe", "--labels", "1", "--seeds", "1", "--no-progress"],
                 ["pretrain"]):
        proc = _run_read_only(home, [sys.executable, "-m", "engine", *args])
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip() == (f"error: The data directory {home} is read-only. Transfer "
                                       "Lab keeps its results, checkpoints and uploads there: make "
                                       "it writable, or set TRANSFERLAB_HOME to a folder that is.")



def test_every_test_the_catalogue_lists_exists():
    """The table above names real tests: a renamed or deleted one fails here."""
    import ast
    import re

    rows = [line for line in __doc__.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= 19
    defined: dict[str, set[str]] = {}
    for row in rows:
        for part in row.split("|")[2].split(";"):  # "f.py: `a`, `b`; `c`": c is in this file
            where = Path(__file__).name
            for match in re.finditer(r"(test_\w+\.py)|`(test_\w+)", part):
                if match.group(1):  # the names after it are in that file
                    where = match.group(1)
                    continue
                if where not in defined:
                    tree = ast.parse((ROOT / "tests" / where).read_text())
                    defined[where] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
                assert match.group(2) in defined[where], f"{where} has no {match.group(2)}: {row[:60]}"
