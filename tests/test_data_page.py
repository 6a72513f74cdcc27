"""The Data and models page: what is ready, what is missing and how to get it, offline."""

from __future__ import annotations

import urllib.error
import urllib.request

from test_pages import open_page, texts

PAGE = "pages/data_models.py"


def test_the_page_says_what_is_ready_and_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached weights
    at = open_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    table = at.table[0].value
    rows = {row["Name"]: row for _, row in table.iterrows()}
    assert rows["efficientnet_lite0"]["Ready"] == "yes"
    assert rows["resnet18"]["Ready"] == "no" and "fetch-weights resnet18" in rows["resnet18"]["Status"]
    # the table keeps to one short command; the offline way is said once, with each file's address
    assert all(len(row["Status"]) < 80 for row in rows.values()), rows
    by_hand = at.expander[0]
    assert by_hand.label.startswith("Without a network")
    listed = " ".join(m.value for m in by_hand.markdown)
    assert "--file PATH" in listed and "resnet18-f37072fd.pth" in listed and "download.pytorch.org" in listed
    assert rows["small_cnn"]["Feature weights"] == "97,152"  # exact count of its feature layers
    captions = texts(at.caption)
    assert "not downloaded: missing dermamnist.npz" in captions
    assert "Your own images" in [h.value for h in at.header]


def test_a_download_without_network_explains_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    at = open_page(PAGE)
    at.button(key="download_pneumoniamnist").click().run()
    assert not at.exception, [e.value for e in at.exception]
    message = texts(at.error)
    assert "could not reach zenodo.org" in message and "pneumoniamnist.npz" in message
    assert "by hand" in message
