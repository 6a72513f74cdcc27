"""Bring-your-own-images uploads: every refusal, the RGB conversions, storage and reuse.

Zips are built in memory from tiny PIL images, so these tests are fast and never touch the network.
"""

import hashlib
import io
import json
import stat
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from engine.core import userdata
from engine.core.datasets import DatasetError
from engine.core.userdata import (IMAGE_SIZE, UploadError, UserDatasetInfo, import_zip, list_uploads,
                             load_user_dataset)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private TRANSFERLAB_HOME per test (home_dir() reads the variable on every call)."""
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    return tmp_path


def image_bytes(mode="RGB", size=(16, 16), color=RED, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, fmt)
    return buf.getvalue()


def noise_png(size=(40, 40), seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def palette_png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), color).convert("P", palette=Image.Palette.ADAPTIVE).save(buf, "PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds no pixel data: decoding it would fail."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def make_zip(files: dict, dirs=(), symlinks=(), encrypted=()) -> bytes:
    """A zip of `files` (name -> bytes) and empty `dirs`; some members symlinks or "encrypted"."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in dirs:
            zf.writestr(d.rstrip("/") + "/", b"")
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    raw = bytearray(buf.getvalue())
    for name in encrypted:  # zipfile cannot encrypt: set the "encrypted" flag in both headers
        local, central = entry_offset(raw, name, b"PK\x03\x04", 30), entry_offset(raw, name)
        raw[local + 6] |= 0x1
        raw[central + 8] |= 0x1
    return bytes(raw)


def entry_offset(raw: bytes, name: str, signature=b"PK\x01\x02", name_at=46) -> int:
    """Offset of the central-directory (or local) header of member `name` in a zip's bytes."""
    at, encoded = raw.find(signature), name.encode()
    while raw[at + name_at: at + name_at + len(encoded)] != encoded:
        at = raw.find(signature, at + 4)
    return at


def two_classes(**extra) -> dict:
    files = {"cats/a.png": image_bytes(color=RED), "cats/b.png": image_bytes(color=RED),
             "dogs/a.png": image_bytes(color=BLUE), "dogs/b.png": image_bytes(color=BLUE)}
    files.update(extra)
    return files


def refusal(data, **kwargs) -> str:
    with pytest.raises(UploadError) as err:
        import_zip(data, **kwargs)
    return str(err.value)


# --- the happy path ----------------------------------------------------------------------------

def test_wrapper_folder_import_stores_and_loads_rgb_64(home):
    files = {
        "myset/cats/a.png": image_bytes(size=(8, 8), color=RED),
        "myset/cats/b.jpg": image_bytes(size=(40, 30), color=RED, fmt="JPEG"),
        "myset/cats/c.png": image_bytes(size=(20, 33), color=RED),
        "myset/dogs/a.png": image_bytes(size=(12, 12), color=BLUE),
        "myset/dogs/sub/b.png": image_bytes(size=(25, 9), color=BLUE),  # nested: still a dog
        "myset/birds/a.gif": image_bytes(size=(16, 16), color=GREEN, fmt="GIF"),
        "myset/birds/b.bmp": image_bytes(size=(10, 14), color=GREEN, fmt="BMP"),
        "__MACOSX/myset/cats/._a.png": b"AppleDouble junk, not an image",
        "myset/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "myset/cats/.hidden.png": b"not an image either",
        "myset/dogs/Thumbs.db": b"windows thumbnail cache",
    }
    raw = make_zip(files, dirs=["myset/", "myset/cats/"])
    info = import_zip(raw, name="pets.zip")

    assert info.digest == hashlib.sha256(raw).hexdigest()
    assert (info.name, info.reused) == ("pets.zip", False)
    assert info.class_names == ("birds", "cats", "dogs")
    assert info.counts == (2, 3, 2) and info.n_images == 7
    assert info.converted == {"P": 1}  # the GIF is a palette image; the PNG, JPEG and BMP are RGB
    uploads = home / "uploads"
    stored = sorted(p.name for p in uploads.iterdir())  # no temporary files left behind
    assert stored == [f"{info.digest}.json", f"{info.digest}.npz"]
    meta = json.loads((uploads / f"{info.digest}.json").read_text())
    assert meta["counts"] == [2, 3, 2] and meta["name"] == "pets.zip"

    data = load_user_dataset(info.digest)
    assert data.name == f"user:{info.digest[:12]}"
    assert data.x.shape == (7, 3, IMAGE_SIZE, IMAGE_SIZE) and data.x.dtype == torch.float32
    assert data.y.dtype == torch.int64 and data.class_names == ("birds", "cats", "dogs")
    assert float(data.x.min()) >= 0.0 and float(data.x.max()) <= 1.0
    assert torch.bincount(data.y).tolist() == [2, 3, 2]
    colour_of = {0: GREEN, 1: RED, 2: BLUE}
    for img, label in zip(data.x, data.y.tolist()):
        expected = torch.tensor(colour_of[label], dtype=torch.float32).view(3, 1, 1) / 255
        assert torch.allclose(img, expected.expand_as(img), atol=0.02), label  # JPEG is lossy
    assert data.preprocessing["source"] == "your upload pets.zip"
    assert data.preprocessing["channels"] == "converted to RGB"


def test_flat_layout_from_path_defaults_name_and_accepts_images_by_content(tmp_path):
    files = two_classes(**{"dogs/photo.txt": image_bytes(color=BLUE)})  # an image, odd extension
    path = tmp_path / "animals.zip"
    path.write_bytes(make_zip(files))
    info = import_zip(path)
    assert info.name == "animals.zip"
    assert info.class_names == ("cats", "dogs") and info.counts == (2, 3)
    assert info.converted == {}


# --- conversions -------------------------------------------------------------------------------

def test_modes_are_converted_to_rgb_properly():
    files = {
        "a_grey/a.png": image_bytes("L", color=128),
        "b_palette/a.png": palette_png(BLUE),
        "c_rgba/a.png": image_bytes("RGBA", color=(255, 0, 0, 0)),  # fully transparent red
        "d_la/a.png": image_bytes("LA", color=(0, 0)),  # fully transparent black
        "e_sixteen/white.png": image_bytes("I;16", color=65535),
        "e_sixteen/half.png": image_bytes("I;16", color=32896),
        "f_cmyk/a.tif": image_bytes("CMYK", color=(0, 255, 255, 0), fmt="TIFF"),  # red in CMYK
        "g_int32/a.tif": image_bytes("I", color=65535, fmt="TIFF"),
        "h_semi/a.png": image_bytes("RGBA", color=(0, 0, 255, 128)),  # half-transparent blue
    }
    info = import_zip(make_zip(files))
    assert info.converted == {"CMYK": 1, "I": 1, "I;16": 2, "L": 1, "LA": 1, "P": 1, "RGBA": 2}

    data = load_user_dataset(info.digest)
    pixel = {}  # file order in the zip is the storage order
    for name, img in zip(files, data.x):
        assert torch.allclose(img, img[:, :1, :1].expand_as(img)), name  # uniform colour kept
        pixel[name] = img[:, 0, 0].tolist()
    assert pixel["a_grey/a.png"] == pytest.approx([128 / 255] * 3)
    assert pixel["b_palette/a.png"] == pytest.approx([0, 0, 1])
    assert pixel["c_rgba/a.png"] == pytest.approx([1, 1, 1])  # onto white, not red or black
    assert pixel["d_la/a.png"] == pytest.approx([1, 1, 1])
    assert pixel["e_sixteen/white.png"] == pytest.approx([1, 1, 1])
    assert pixel["e_sixteen/half.png"] == pytest.approx([128 / 255] * 3)  # 32896 / 257 = 128
    assert pixel["f_cmyk/a.tif"] == pytest.approx([1, 0, 0])
    assert pixel["g_int32/a.tif"] == pytest.approx([1, 1, 1])
    assert pixel["h_semi/a.png"] == pytest.approx([127 / 255, 127 / 255, 1], abs=1.5 / 255)


# --- reuse by content hash ---------------------------------------------------------------------

def test_same_bytes_are_reused_without_decoding(monkeypatch):
    raw = make_zip(two_classes())
    first = import_zip(raw, name="first.zip")

    def no_decoding(blob):
        raise AssertionError("an upload already stored was decoded again")

    monkeypatch.setattr(userdata, "_decode", no_decoding)
    again = import_zip(raw, name="renamed.zip")
    assert again.reused and not first.reused
    assert (again.digest, again.class_names, again.counts) == (first.digest, first.class_names,
                                                               first.counts)
    assert again.name == "first.zip"  # the stored entry, as first named
    # A larger labels-per-class request is still refused from the stored counts.
    assert "cats (2 images), dogs (2 images)" in refusal(raw, min_per_class=3)
    # Different bytes are decoded (and here the stub refuses to).
    with pytest.raises(AssertionError):
        import_zip(make_zip(two_classes(**{"cats/c.png": image_bytes()})))


# --- refusals: the archive ---------------------------------------------------------------------

def test_not_a_zip():
    msg = refusal(b"this is plain text, not a zip")
    assert "not a zip archive" in msg


def test_truncated_zip_is_refused_as_corrupt():
    raw = make_zip(two_classes())
    assert "not a zip archive, or the zip is corrupt" in refusal(raw[: len(raw) // 2])


def test_damaged_member_is_named():
    files = two_classes(**{"dogs/noise.png": noise_png()})
    raw = bytearray(make_zip(files))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("dogs/noise.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # its compressed data
    raw[start + 100: start + 200] = bytes(100)
    msg = refusal(bytes(raw))
    assert "The zip is corrupt: dogs/noise.png could not be extracted" in msg


def test_header_that_understates_a_size_is_refused():
    """A central directory claiming 10 bytes for a larger file: reading stops there and fails."""
    raw = bytearray(make_zip(two_classes(**{"dogs/noise.png": noise_png()})))
    central = entry_offset(raw, "dogs/noise.png")
    raw[central + 24: central + 28] = struct.pack("<I", 10)  # uncompressed size
    msg = refusal(bytes(raw))
    assert "dogs/noise.png" in msg and "corrupt" in msg


def test_zip_over_size_limit(monkeypatch, tmp_path):
    raw = make_zip(two_classes())
    monkeypatch.setattr(userdata, "MAX_ZIP_BYTES", len(raw) - 1)
    msg = refusal(raw)
    assert msg.startswith("The upload is ") and "; uploads are limited to " in msg
    path = tmp_path / "big.zip"
    path.write_bytes(raw)
    assert "uploads are limited to" in refusal(path)  # refused from its size on disk
    monkeypatch.setattr(userdata, "MAX_ZIP_BYTES", len(raw))
    assert import_zip(raw).n_images == 4  # exactly at the limit is fine


def test_too_many_entries(monkeypatch):
    monkeypatch.setattr(userdata, "MAX_FILES", 3)
    msg = refusal(make_zip(two_classes()))
    assert msg == "The zip holds 4 entries; the limit is 3."


def test_declared_uncompressed_total_over_limit(monkeypatch):
    black = image_bytes(size=(400, 400), color=(0, 0, 0), fmt="BMP")
    files = two_classes(**{"dogs/zeros.bmp": black})
    raw = make_zip(files)
    monkeypatch.setattr(userdata, "MAX_TOTAL_UNCOMPRESSED", 200_000)  # the BMP alone is ~480 kB
    assert len(raw) < 200_000
    msg = refusal(raw)
    assert "uncompressed" in msg and "the limit is 0.2 MB" in msg


def test_bytes_actually_read_are_counted_too(monkeypatch):
    """Second line of defence: were the declared sizes not checked (or lying), the bytes read
    from the members still stop the import at the cap."""
    noise = {f"dogs/noise{k}.png": noise_png(size=(20, 20), seed=k) for k in range(3)}
    assert all(1000 < len(blob) < 1500 for blob in noise.values())  # each under the cap, not all
    monkeypatch.setattr(userdata, "_check_entries", lambda infos: None)
    monkeypatch.setattr(userdata, "MAX_TOTAL_UNCOMPRESSED", 3000)
    msg = refusal(make_zip(two_classes(**noise)))
    assert "unpack to more than their headers declare" in msg and "dogs/noise2.png" in msg


def test_paths_escaping_the_folder_are_named():
    files = two_classes(**{"/etc/evil.png": image_bytes(), "cats/../../up.png": image_bytes(),
                           "C:/windows/x.png": image_bytes()})
    msg = refusal(make_zip(files))
    assert "absolute or climb out" in msg
    for name in ("/etc/evil.png", "cats/../../up.png", "C:/windows/x.png"):
        assert name in msg
    assert "cats/a.png" not in msg


def test_symlinks_are_named():
    files = two_classes(**{"cats/link.png": b"/etc/passwd"})
    msg = refusal(make_zip(files, symlinks={"cats/link.png"}))
    assert msg == "The zip holds symbolic links, which are refused: cats/link.png."


def test_password_protected_members_are_named():
    msg = refusal(make_zip(two_classes(), encrypted={"dogs/b.png"}))
    assert "password-protected" in msg and "dogs/b.png" in msg


# --- refusals: the layout ----------------------------------------------------------------------

@pytest.mark.parametrize("stray", ["readme.png", "myset/stray.png"])
def test_files_outside_class_folders(stray):
    prefix = "myset/" if stray.startswith("myset/") else ""
    files = {prefix + k: v for k, v in two_classes().items()}
    files[stray] = image_bytes()
    msg = refusal(make_zip(files))
    assert "inside a class folder" in msg and f"top level: {stray}." in msg


def test_fewer_than_two_classes():
    files = {"cats/a.png": image_bytes(), "cats/b.png": image_bytes()}
    msg = refusal(make_zip(files))
    assert "at least 2 class folders" in msg and "found 1 (cats)." in msg
    assert "found 0." in refusal(make_zip({"__MACOSX/._x": b"junk"}))


def test_class_with_fewer_images_than_asked_is_named():
    files = two_classes(**{"cats/c.png": image_bytes()})  # cats 3, dogs 2
    msg = refusal(make_zip(files), min_per_class=3)
    assert msg.startswith("Each class needs at least 3 images")
    assert "dogs (2 images)" in msg and "cats" not in msg
    assert import_zip(make_zip(files), min_per_class=2).counts == (3, 2)


def test_empty_class_folder_counts_as_a_class_with_no_images():
    raw = make_zip(two_classes(), dirs=["empty/"])
    assert "empty (0 images)" in refusal(raw)
    wrapped = make_zip({"set/cats/a.png": image_bytes()}, dirs=["set/", "set/dogs/"])
    assert "dogs (0 images)" in refusal(wrapped)  # 2 classes, one of them empty


def test_many_offenders_are_listed_up_to_five():
    files = two_classes(**{f"cats/n{i}.txt": b"plain text" for i in range(8)})
    msg = refusal(make_zip(files))
    assert "cats/n0.txt, cats/n1.txt, cats/n2.txt, cats/n3.txt, cats/n4.txt and 3 more" in msg


# --- refusals: the images ----------------------------------------------------------------------

def test_files_that_are_not_images_by_content_are_named():
    files = two_classes(**{"cats/notes.txt": b"hello", "dogs/fake.png": b"not really a png"})
    msg = refusal(make_zip(files))
    assert msg.startswith("2 files could not be imported. Not images")
    assert "cats/notes.txt" in msg and "dogs/fake.png" in msg


def test_truncated_image_is_named():
    blob = noise_png()
    files = two_classes(**{"dogs/cut.png": blob[: len(blob) // 2]})
    msg = refusal(make_zip(files))
    assert "Unreadable or truncated images: dogs/cut.png." in msg


def test_images_over_the_pixel_cap_are_refused_from_their_header():
    # Header-only PNGs: had they been decoded, they would be "unreadable", not "over the cap".
    files = two_classes(**{"cats/huge.png": png_header_only(5000, 5000),
                           "dogs/bomb.png": png_header_only(20000, 20000)})  # PIL's bomb error
    msg = refusal(make_zip(files))
    assert "Images over 16,777,216 pixels" in msg
    assert "cats/huge.png (5000x5000)" in msg and "dogs/bomb.png" in msg
    assert "Unreadable" not in msg


def test_pixel_cap_is_width_times_height(monkeypatch):
    monkeypatch.setattr(userdata, "MAX_PIXELS", 20 * 20)
    files = two_classes(**{"cats/big.png": image_bytes(size=(21, 20)),
                           "dogs/ok.png": image_bytes(size=(20, 20))})
    msg = refusal(make_zip(files))
    assert "cats/big.png (21x20)" in msg and "dogs/ok.png" not in msg


def test_all_image_problems_are_reported_together():
    blob = noise_png()
    files = two_classes(**{"cats/notes.txt": b"hi", "dogs/cut.png": blob[:200],
                           "dogs/huge.png": png_header_only(5000, 4000)})
    msg = refusal(make_zip(files))
    assert msg.startswith("3 files could not be imported.")
    assert "cats/notes.txt" in msg and "dogs/cut.png" in msg and "dogs/huge.png (5000x4000)" in msg


# --- ids and listing ---------------------------------------------------------------------------

@pytest.mark.parametrize("digest", ["../../etc/passwd", "abc", "g" * 64, "0" * 63, ""])
def test_malformed_digest_is_refused_before_any_lookup(digest):
    with pytest.raises(UploadError, match="is not an upload id"):
        load_user_dataset(digest)


def test_unknown_digest_is_a_dataset_error():
    with pytest.raises(DatasetError, match="No upload with id 000000000000"):
        load_user_dataset("0" * 64)
    assert issubclass(UploadError, DatasetError)


def test_list_uploads(home):
    assert list_uploads() == []
    a = import_zip(make_zip(two_classes()), name="a.zip")
    b = import_zip(make_zip(two_classes(**{"cats/c.png": image_bytes()})), name="b.zip")
    (home / "uploads" / ("f" * 64 + ".json")).write_text("{not json")  # skipped, not fatal
    listed = list_uploads()
    assert all(isinstance(i, UserDatasetInfo) for i in listed)
    assert {i.digest: (i.name, i.counts) for i in listed} == {a.digest: ("a.zip", (2, 2)),
                                                              b.digest: ("b.zip", (3, 2))}
    assert [i.digest for i in listed] == [b.digest, a.digest]  # newest first


def test_min_per_class_must_be_positive():
    with pytest.raises(ValueError):
        import_zip(make_zip(two_classes()), min_per_class=0)
