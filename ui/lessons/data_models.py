"""The Data and models page's parts: the backbone table, a photo classified by an ImageNet
backbone, a remote dataset's download with its progress, and the import of a learner's zip.

Every check, download, import and prediction is an engine call (`engine.core.imagenet`,
`engine.core.remote`, `engine.core.userdata`); this module only asks for them and says what
came back. The page lays these parts out.
"""

from __future__ import annotations

import streamlit as st

from engine.core.backbones import BACKBONES, feature_weights
from engine.core.datasets import USER_PREFIX, DatasetError
from engine.core.imagenet import (IMAGENET_MODELS, WeightsUnavailable, load_image, predict, weights_dir,
                                  weights_status)
from engine.core.remote import REMOTE_DATASETS, describe_status, download, missing_files
from engine.core.userdata import import_zip, list_uploads
from engine.core.quotas import QuotaError
from ui.kit.tables import Compact, show_table
from ui.kit.text import plain
from ui.kit.visitor import take_upload


def backbone_table() -> None:
    """Every backbone: its feature weights and whether it is ready to use here. A missing
    download gets one short command in the table; how to fetch it by hand (offline) is said
    once, below it, with each missing file's address."""
    rows, by_hand = [], []
    for name, info in BACKBONES.items():
        if not info.imagenet:
            ready, status = True, "trained here on a source dataset (cached after the first time)"
        else:
            ready, status = weights_status(name)
            if not ready and IMAGENET_MODELS[name].provider == "torchvision":
                status = f"not downloaded: run `python -m engine fetch-weights {name}`"
                by_hand.append(name)
        rows.append({"Backbone": info.title, "Name": name,
                     "Feature weights": f"{feature_weights(name):,}",
                     "Ready": "yes" if ready else "no", "Status": status})
    show_table(rows, "backbones", compact=Compact("{Backbone}"), markdown=["Status"])
    if by_hand:
        with st.expander("Without a network on the server: download the weights by hand"):
            st.markdown("Download each file on a machine that has a network, copy it to the "
                        f"server and run `python -m engine fetch-weights NAME --file PATH` "
                        f"(or put it in `{weights_dir()}`):")
            st.markdown("\n".join(f"- {name}: [{IMAGENET_MODELS[name].file_name}]"
                                   f"({IMAGENET_MODELS[name].url})" for name in by_hand))


def ready_imagenet_models() -> list[str]:
    """The ImageNet backbones whose weights this server has."""
    return [n for n in IMAGENET_MODELS if weights_status(n)[0]]


def imagenet_title(name: str) -> str:
    return IMAGENET_MODELS[name].title


def classify_photo(model: str | None, photo) -> None:
    """The photo beside the top five ImageNet classes `model` gives it, or why it cannot."""
    if photo is None or model is None:
        st.warning("Choose a backbone and a photo first.", icon=":material/warning:")
        return
    try:
        image = load_image(photo)  # (3, H, W); refuses a file or an image over the caps
        top = predict(model, image, top=5)
    except (ValueError, WeightsUnavailable) as err:
        st.error(f"Could not classify this file: {err}", icon=":material/error:")
        return
    left, right = st.columns([1, 2])
    left.image(photo, caption=f"{image.shape[2]}x{image.shape[1]} pixels")
    with right:
        show_table({"ImageNet class": [label for label, _ in top],
                    "Probability": [f"{p * 100:.1f}%" for _, p in top]}, "imagenet_classes")


def remote_dataset(name: str) -> None:
    """A downloadable dataset: what it is, what is on disk, and Download while files are missing."""
    info = REMOTE_DATASETS[name]
    with st.container(border=True):
        left, right = st.columns([3, 1])
        left.markdown(f"**{info.title}** (`{name}`): {info.description}")
        left.caption(f"{describe_status(name)} · {info.licence}")
        if missing_files(name) and right.button("Download", key=f"download_{name}",
                                                icon=":material/download:"):
            _download(name, left)


def _download(name: str, area) -> None:
    bar = area.progress(0.0, text="Connecting…")

    def show(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 0.0,
                     text=f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total > 1000
                     else f"{done} of {total} files")

    try:
        download(name, on_progress=show)
    except DatasetError as err:
        area.error(str(err), icon=":material/cloud_off:")
    else:
        st.rerun()


def import_upload(upload) -> None:
    """Imports an uploaded zip of class folders and says what it held, or why it was refused."""
    try:
        take_upload()
        info = import_zip(upload.getvalue(), name=upload.name)
    except (DatasetError, QuotaError) as err:
        st.error(f"This upload was refused. {err}", icon=":material/error:")
        return
    seen = "was already imported" if info.reused else "is imported"
    st.success(f"{plain(info.name)} {seen}: {info.n_images:,} images in {len(info.class_names)} "
               "classes. Pick it as the target on the Which source? page.",
               icon=":material/check_circle:")


def uploads_table() -> None:
    """The uploads this server holds, with the dataset name each is picked by."""
    uploads = list_uploads()
    if uploads:
        show_table([{"Upload": u.name, "Dataset name": f"{USER_PREFIX}{u.digest[:12]}…",
                     "Classes": ", ".join(f"{c} ({n})" for c, n in zip(u.class_names, u.counts)),
                     "Images": u.n_images} for u in uploads], "uploads", compact=Compact("{Upload}"))
