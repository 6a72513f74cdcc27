"""Data and models: which backbones and datasets this server has, downloads, and your own images.

Layout and words only: `ui.lessons.data_models` draws the parts, and every check, download, import and
prediction behind them is an engine call."""

import streamlit as st

from engine.core.datasets import DATASETS
from engine.core.imagenet import MAX_IMAGE_MB
from engine.core.remote import REMOTE_DATASETS
from engine.core.userdata import MAX_ZIP_BYTES
from ui.lessons.data_models import (backbone_table, classify_photo, imagenet_title, import_upload,
                            ready_imagenet_models, remote_dataset, uploads_table)
from ui.kit.shell import page_setup

MB = 2**20

page_setup()
st.title("Data and models")
st.markdown(
    "Everything here works offline first. The built-in datasets and EfficientNet-Lite0's ImageNet "
    "weights come with the installed packages; other datasets and torchvision's ImageNet models "
    "are downloaded on request into the data directory, once.")

st.header("Backbones")
backbone_table()

st.subheader("Is it what it claims?")
st.markdown("An ImageNet backbone should recognise everyday photos. Upload one and see its top "
            "five ImageNet classes, computed now by the real network.")
with st.form("predict_form"):
    chosen = st.selectbox("Backbone", ready_imagenet_models(), format_func=imagenet_title)
    photo = st.file_uploader("A photo", type=["png", "jpg", "jpeg", "webp", "bmp"],
                             max_upload_size=MAX_IMAGE_MB)
    classify = st.form_submit_button("Classify", icon=":material/image_search:")
if classify:
    classify_photo(chosen, photo)

st.header("Datasets")
st.markdown("Built in, always available:\n" + "\n".join(
    f"- **{info.title}**: {info.description}" for info in DATASETS.values()))
st.markdown("Downloadable, once, into the data directory:")
for name in REMOTE_DATASETS:
    remote_dataset(name)

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
    import_upload(upload)
uploads_table()
