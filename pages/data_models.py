"""Data and models: which backbones and datasets this server has, downloads, and your own images.

UI only: every check, download, import and prediction is an engine call."""

import streamlit as st

from engine.core.backbones import BACKBONES, feature_weights
from engine.core.datasets import DATASETS, USER_PREFIX, DatasetError
from engine.core.imagenet import (IMAGENET_MODELS, MAX_IMAGE_MB, WeightsUnavailable, load_image,
                             predict, weights_status)
from engine.core.remote import REMOTE_DATASETS, describe_status, download, missing_files
from engine.core.userdata import MAX_ZIP_BYTES, list_uploads, import_zip
from ui.shell import page_setup

MB = 2**20

page_setup()
st.title("Data and models")
st.markdown(
    "Everything here works offline first. The built-in datasets and EfficientNet-Lite0's ImageNet "
    "weights come with the installed packages; other datasets and torchvision's ImageNet models "
    "are downloaded on request into the data directory, once.")

st.header("Backbones")
rows = []
for name, info in BACKBONES.items():
    if info.imagenet:
        ready, status = weights_status(name)
    else:
        ready, status = True, "trained here on a source dataset (cached after the first time)"
    rows.append({"Backbone": info.title, "Name": name, "Feature weights": f"{feature_weights(name):,}",
                 "Ready": "yes" if ready else "no", "Status": status})
st.dataframe(rows, hide_index=True)

st.subheader("Is it what it claims?")
st.markdown("An ImageNet backbone should recognise everyday photos. Upload one and see its top "
            "five ImageNet classes, computed now by the real network.")
ready_models = [n for n in IMAGENET_MODELS if weights_status(n)[0]]
with st.form("predict_form"):
    chosen = st.selectbox("Backbone", ready_models,
                          format_func=lambda n: IMAGENET_MODELS[n].title)
    photo = st.file_uploader("A photo", type=["png", "jpg", "jpeg", "webp", "bmp"],
                             max_upload_size=MAX_IMAGE_MB)
    classify = st.form_submit_button("Classify", icon=":material/image_search:")
if classify:
    if photo is None or chosen is None:
        st.warning("Choose a backbone and a photo first.", icon=":material/warning:")
    else:
        try:
            image = load_image(photo)  # (3, H, W); refuses a file or an image over the caps
            top = predict(chosen, image, top=5)
        except (ValueError, WeightsUnavailable) as err:
            st.error(f"Could not classify this file: {err}", icon=":material/error:")
        else:
            left, right = st.columns([1, 2])
            left.image(photo, caption=f"{image.shape[2]}x{image.shape[1]} pixels")
            right.table({"ImageNet class": [label for label, _ in top],
                         "Probability": [f"{p * 100:.1f}%" for _, p in top]})

st.header("Datasets")
st.markdown("Built in (always available): " + "; ".join(
    f"**{info.title}**: {info.description}" for info in DATASETS.values()))
for name, info in REMOTE_DATASETS.items():
    with st.container(border=True):
        left, right = st.columns([3, 1])
        left.markdown(f"**{info.title}** (`{name}`): {info.description}")
        left.caption(f"{describe_status(name)} · {info.licence}")
        if missing_files(name) and right.button("Download", key=f"download_{name}",
                                                icon=":material/download:"):
            bar = left.progress(0.0, text="Connecting…")

            def show(done: int, total: int) -> None:
                bar.progress(min(1.0, done / total) if total else 0.0,
                             text=f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total > 1000
                             else f"{done} of {total} files")

            try:
                download(name, on_progress=show)
            except DatasetError as err:
                left.error(str(err), icon=":material/cloud_off:")
            else:
                st.rerun()

st.header("Your own images")
st.markdown(
    "Upload a **zip with one folder per class** (for example `cats/001.jpg`, `dogs/002.png`). "
    "Images of any size and mode are converted to 64x64 RGB. The same zip uploaded again is "
    f"recognised by its content. Limit: {MAX_ZIP_BYTES / MB:.0f} MB.")
with st.form("upload_form"):
    upload = st.file_uploader("Image folders (zip)", type=["zip"],
                              max_upload_size=MAX_ZIP_BYTES // MB)
    send = st.form_submit_button("Import", icon=":material/upload:")
if send and upload is not None:
    try:
        info = import_zip(upload.getvalue(), name=upload.name)
    except DatasetError as err:
        st.error(f"This upload was refused. {err}", icon=":material/error:")
    else:
        seen = "was already imported" if info.reused else "is imported"
        st.success(f"{info.name} {seen}: {info.n_images:,} images in {len(info.class_names)} "
                   "classes. Pick it as the target on the Which source? page.",
                   icon=":material/check_circle:")
uploads = list_uploads()
if uploads:
    st.dataframe([{"Upload": u.name, "Dataset name": f"{USER_PREFIX}{u.digest[:12]}…",
                   "Classes": ", ".join(f"{c} ({n})" for c, n in zip(u.class_names, u.counts)),
                   "Images": u.n_images} for u in uploads], hide_index=True)
