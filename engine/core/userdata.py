"""Bring your own images: a user's ImageFolder zip, checked, converted and stored as a dataset.

The zip holds one folder per class (`cats/a.png`), optionally inside one wrapper folder
(`myset/cats/a.png`); `__MACOSX/`, dotfiles, `Thumbs.db` and `desktop.ini` are ignored; files in a
class folder's subfolders belong to that class, as in torchvision's ImageFolder. `import_zip`
refuses anything unsafe or unusable with an `UploadError` that says what is wrong and names the
files; else every image is converted to RGB, resized to IMAGE_SIZE x IMAGE_SIZE and stored once
under TRANSFERLAB_HOME/uploads/ as `<sha256 of the zip>.npz` plus a small `.json` of metadata, so
the same bytes uploaded again are not decoded again. `load_user_dataset` gives a `DatasetData`.

It is not a dataset registry entry, does not adapt images to a backbone's input format (that is
the caller's job), never extracts files to disk, and never imports streamlit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import time
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.core.datatypes import DatasetData, DatasetError, to_rgb
from engine.core.store import home_dir, write_atomic

MB = 1024 * 1024
MAX_ZIP_BYTES = 50 * MB  # size of the uploaded zip itself (compressed)
MAX_FILES = 20_000  # entries in the zip, folders and ignored files included
MAX_TOTAL_UNCOMPRESSED = 500 * MB  # declared sizes of all entries, and the bytes actually read
MAX_PIXELS = 4096 * 4096  # width * height of one image, checked from its header before decoding
IMAGE_SIZE = 64  # every image is stored as (3, IMAGE_SIZE, IMAGE_SIZE)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")  # what PIL may open; never EPS & co
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})  # besides any name starting "."
LIST_LIMIT = 5  # file names spelled out in a message before "and N more"
_DIGEST = re.compile(r"[0-9a-f]{64}")


class UploadError(DatasetError):
    """An upload that is refused; the message is a full sentence meant for the user."""


@dataclass(frozen=True)
class UserDatasetInfo:
    digest: str  # SHA-256 hex of the zip's bytes; the upload's id and file name
    name: str  # the name the user gave (usually the zip's file name), for display only
    class_names: tuple[str, ...]  # class folder names, sorted; label i is class_names[i]
    counts: tuple[int, ...]  # images per class, in class_names order
    n_images: int  # sum(counts)
    reused: bool  # True when import_zip found these bytes already stored and decoded nothing
    converted: dict = field(default_factory=dict)  # original mode -> images converted to RGB

    def __post_init__(self):
        if not _DIGEST.fullmatch(self.digest):
            raise ValueError(f"digest must be 64 lowercase hex characters, got {self.digest!r}")
        if len(self.counts) != len(self.class_names) or sum(self.counts) != self.n_images:
            raise ValueError(f"counts {self.counts} mismatch {self.class_names} or {self.n_images}")


class _BadImage(Exception):
    """A member that is no usable image; args: (kind, detail), kind one of `bad` in import_zip."""


def uploads_dir() -> Path:
    """Where uploads are stored; read at call time, so TRANSFERLAB_HOME may change."""
    path = home_dir() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _short(name: str, width: int = 80) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _names(items: list[str]) -> str:
    """'a, b, c' or 'a, b, c, d, e and 3 more'."""
    shown = ", ".join(_short(s) for s in items[:LIST_LIMIT])
    rest = len(items) - LIST_LIMIT
    return f"{shown} and {rest} more" if rest > 0 else shown


def _mb(n: int) -> str:
    """A size, rounded up: one just over a limit never reads as equal to it."""
    return f"{n:,} bytes" if n < MB // 10 else f"{-(-n * 10 // MB) / 10:.1f} MB"


def _read_source(data: bytes | str | os.PathLike, name: str) -> tuple[bytes, str]:
    """The zip's bytes (a file too large is refused before it is read) and a display name."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_file():
            raise UploadError(f"There is no file at {path}.")
        size, name = path.stat().st_size, name or path.name
    else:
        size = len(data)
    if size > MAX_ZIP_BYTES:
        raise UploadError(f"The upload is {_mb(size)}; uploads are limited to "
                          f"{_mb(MAX_ZIP_BYTES)}.")
    raw = path.read_bytes() if isinstance(data, (str, os.PathLike)) else bytes(data)
    return raw, (name or "upload.zip")[:200]


def _parts(filename: str) -> list[str]:
    return [p for p in filename.replace("\\", "/").split("/") if p not in ("", ".")]


def _unsafe(filename: str) -> bool:
    """Absolute (/x, \\x, C:x) or climbing out of the folder (any '..' component)."""
    name = filename.replace("\\", "/")
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in name.split("/")


def _ignored(parts: list[str]) -> bool:
    return any(p in IGNORED_NAMES or p.startswith(".") for p in parts)


def _check_entries(infos: list[zipfile.ZipInfo]) -> None:
    """Refusals decided from the central directory alone, before any byte is decompressed."""
    if len(infos) > MAX_FILES:
        raise UploadError(f"The zip holds {len(infos):,} entries; the limit is {MAX_FILES:,}.")
    declared = sum(i.file_size for i in infos)
    if declared > MAX_TOTAL_UNCOMPRESSED:
        raise UploadError(f"The zip's files add up to {_mb(declared)} uncompressed; the limit is "
                          f"{_mb(MAX_TOTAL_UNCOMPRESSED)}.")
    unsafe = [i.filename for i in infos if _unsafe(i.filename)]
    if unsafe:
        raise UploadError("The zip holds paths that are absolute or climb out of their folder "
                          f"with '..', which are refused: {_names(unsafe)}.")
    links = [i.filename for i in infos if stat.S_ISLNK(i.external_attr >> 16)]
    if links:
        raise UploadError(f"The zip holds symbolic links, which are refused: {_names(links)}.")
    locked = [i.filename for i in infos if i.flag_bits & 0x1]
    if locked:
        raise UploadError(f"The zip holds password-protected files, which cannot be read: "
                          f"{_names(locked)}.")


def _layout(infos: list[zipfile.ZipInfo]
            ) -> tuple[tuple[str, ...], list[tuple[zipfile.ZipInfo, int]]]:
    """Class names (sorted folder names) and (member, label) for every file to decode."""
    files = [(i, _parts(i.filename)) for i in infos if not i.is_dir()]
    files = [(i, p) for i, p in files if p and not _ignored(p)]
    dirs = [p for p in (_parts(i.filename) for i in infos if i.is_dir()) if p and not _ignored(p)]
    tops = {p[0] for _, p in files} | {p[0] for p in dirs}
    # One wrapper folder (myset/cats/a.png): the only top-level name, holding folders, no files.
    if (len(tops) == 1 and all(len(p) > 1 for _, p in files)
            and (any(len(p) > 2 for _, p in files) or any(len(p) > 1 for p in dirs))):
        files = [(i, p[1:]) for i, p in files]
        dirs = [p[1:] for p in dirs if len(p) > 1]
    stray = [i.filename for i, p in files if len(p) == 1]
    if stray:
        raise UploadError("Every image must sit inside a class folder, but these files are at the "
                          f"top level: {_names(stray)}. Move each into the folder of its class.")
    class_names = tuple(sorted({p[0] for _, p in files} | {p[0] for p in dirs}))
    if len(class_names) < 2:
        found = f" ({_names(list(class_names))})" if class_names else ""
        raise UploadError("The zip needs at least 2 class folders, one folder per class with its "
                          f"images inside; found {len(class_names)}{found}.")
    return class_names, [(i, class_names.index(p[0])) for i, p in files]


def _check_counts(class_names: tuple[str, ...], counts: tuple[int, ...],
                  min_per_class: int) -> None:
    short = [f"{c} ({n} image{'s' if n != 1 else ''})"
             for c, n in zip(class_names, counts) if n < min_per_class]
    if short:
        raise UploadError(f"Each class needs at least {min_per_class} image"
                          f"{'s' if min_per_class != 1 else ''} (the most labels per class asked "
                          f"for), but these classes have fewer: {_names(short)}.")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """A member's bytes, counted as they come: a header may lie about its size."""
    chunks, total = [], 0
    try:
        with zf.open(info) as f:
            while chunk := f.read(MB):
                total += len(chunk)
                if total > budget:
                    raise UploadError("The zip's files unpack to more than their headers declare "
                                      f"and past the limit of {_mb(MAX_TOTAL_UNCOMPRESSED)} "
                                      f"uncompressed (stopped in {_short(info.filename)}).")
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            OSError) as exc:
        raise UploadError(f"The zip is corrupt: {_short(info.filename)} could not be extracted "
                          f"({exc}).") from exc
    return b"".join(chunks)


def _decode(raw: bytes) -> tuple[np.ndarray, str]:
    """One file's bytes -> (3, IMAGE_SIZE, IMAGE_SIZE) uint8 RGB and the image's original mode.

    The header's size is checked before any pixel is decoded. PIL's process-wide bomb limit
    (Image.MAX_IMAGE_PIXELS, left as it is) lies far above MAX_PIXELS; it reports "large" too.
    """
    try:
        img = Image.open(io.BytesIO(raw), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise _BadImage("large", "far too large") from exc
    except UnidentifiedImageError as exc:
        raise _BadImage("not_image", "") from exc
    except Exception as exc:  # noqa: BLE001 - any failure of PIL's header parsing
        raise _BadImage("unreadable", str(exc)) from exc
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise _BadImage("large", f"{width}x{height}")
    mode = img.mode
    try:
        if img.format == "JPEG":
            img.draft("RGB", (IMAGE_SIZE, IMAGE_SIZE))  # let libjpeg skip detail we resize away
        img.load()
        img = ImageOps.exif_transpose(img)  # camera photos upright
        small = to_rgb(img).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    except Image.DecompressionBombError as exc:
        raise _BadImage("large", "far too large") from exc
    except Exception as exc:  # noqa: BLE001 - truncated, corrupt or unconvertible data
        raise _BadImage("unreadable", str(exc)) from exc
    return np.asarray(small, dtype=np.uint8).transpose(2, 0, 1).copy(), mode  # (3, S, S)


def _image_refusal(bad: dict[str, list[str]]) -> UploadError:
    n = sum(len(v) for v in bad.values())
    parts = [f"{n} file{'s' if n != 1 else ''} could not be imported."]
    if bad["not_image"]:
        parts.append(f"Not images (judged by content; {', '.join(FORMATS)} are read): "
                     f"{_names(bad['not_image'])}.")
    if bad["unreadable"]:
        parts.append(f"Unreadable or truncated images: {_names(bad['unreadable'])}.")
    if bad["large"]:
        parts.append(f"Images over {MAX_PIXELS:,} pixels (width x height): "
                     f"{_names(bad['large'])}.")
    return UploadError(" ".join(parts))


def _info_from_meta(meta: dict, reused: bool) -> UserDatasetInfo:
    return UserDatasetInfo(meta["digest"], meta["name"], tuple(meta["class_names"]),
                           tuple(meta["counts"]), int(meta["n_images"]), reused,
                           dict(meta.get("converted", {})))


def _read_meta(digest: str) -> dict | None:
    meta_path = uploads_dir() / f"{digest}.json"
    if not (meta_path.is_file() and meta_path.with_suffix(".npz").is_file()):
        return None
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def import_zip(data: bytes | str | os.PathLike, *, min_per_class: int = 1,
               name: str = "") -> UserDatasetInfo:
    """Check, convert and store an ImageFolder zip (its bytes or its path); else UploadError.

    `min_per_class`: the fewest images every class must have (the largest labels-per-class the
    caller will ask for). Bytes already stored are recognised: `reused=True`, nothing decoded.
    """
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be at least 1, got {min_per_class}")
    raw, name = _read_source(data, name)
    digest = hashlib.sha256(raw).hexdigest()
    meta = _read_meta(digest)
    if meta is not None:
        info = _info_from_meta(meta, reused=True)
        _check_counts(info.class_names, info.counts, min_per_class)
        return info

    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise UploadError(f"The upload is not a zip archive, or the zip is corrupt ({exc}). "
                          "Upload a .zip file holding one folder per class.") from exc
    with zf:
        infos = zf.infolist()
        _check_entries(infos)
        class_names, members = _layout(infos)
        counts = tuple(sum(k == c for _, k in members) for c in range(len(class_names)))
        _check_counts(class_names, counts, min_per_class)

        pixels, labels, converted = [], [], Counter()
        bad: dict[str, list[str]] = {"not_image": [], "unreadable": [], "large": []}
        budget = MAX_TOTAL_UNCOMPRESSED
        for member, label in members:
            blob = _read_member(zf, member, budget)
            budget -= len(blob)
            try:
                image, mode = _decode(blob)  # (3, S, S) uint8
            except _BadImage as exc:
                kind, detail = exc.args
                bad[kind].append(member.filename + (f" ({detail})" if kind == "large" else ""))
                continue
            pixels.append(image)
            labels.append(label)
            if mode != "RGB":
                converted[mode] += 1
    if any(bad.values()):
        raise _image_refusal(bad)

    x = np.stack(pixels).astype(np.uint8)  # (N, 3, S, S)
    y = np.asarray(labels, dtype=np.int64)  # (N,)
    folder = uploads_dir()
    write_atomic(folder / f"{digest}.npz", lambda f: np.savez_compressed(
        f, x=x, y=y, class_names=np.asarray(class_names, dtype=str)))
    meta = {"digest": digest, "name": name, "class_names": list(class_names),
            "counts": list(counts), "n_images": int(len(y)),
            "converted": dict(sorted(converted.items())),
            "image_size": IMAGE_SIZE, "created_at": time.time()}
    write_atomic(folder / f"{digest}.json",
                  lambda f: f.write(json.dumps(meta, indent=1).encode("utf-8")))
    return _info_from_meta(meta, reused=False)


def load_user_dataset(digest: str) -> DatasetData:
    """A stored upload as a DatasetData: x (N, 3, IMAGE_SIZE, IMAGE_SIZE) float32 in [0, 1]."""
    key = digest.strip().lower() if isinstance(digest, str) else ""
    if not _DIGEST.fullmatch(key):  # checked before any file is touched: it may come from a URL
        raise UploadError(f"{_short(str(digest), 70)!r} is not an upload id: an id is the zip's "
                          "SHA-256, 64 hexadecimal characters.")
    digest = key
    meta = _read_meta(digest)
    if meta is None:
        raise UploadError(f"No upload with id {digest[:12]}… is stored under {uploads_dir()}; "
                          "upload its zip again.")
    try:
        with np.load(uploads_dir() / f"{digest}.npz", allow_pickle=False) as stored:
            x8, y, names = stored["x"], stored["y"], stored["class_names"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise UploadError(f"The stored upload {digest[:12]}… is damaged ({exc}); upload its zip "
                          "again.") from exc
    return DatasetData(
        name=f"user:{digest[:12]}",
        title=f"Your images: {meta['name']}",
        x=torch.from_numpy(x8.astype(np.float32) / 255.0),  # (N, 3, S, S) in [0, 1]
        y=torch.from_numpy(y.astype(np.int64)),  # (N,)
        class_names=tuple(str(c) for c in names),
        preprocessing={"source": f"your upload {meta['name']}", "original_size": "varied",
                       "resize": f"{IMAGE_SIZE}x{IMAGE_SIZE}, bilinear (antialiased)",
                       "scaling": "pixel / 255", "channels": "converted to RGB",
                       "transparency": "composited onto white", "16-bit": "value / 257"},
    )


def list_uploads() -> list[UserDatasetInfo]:
    """Every stored upload, newest first; unreadable metadata files are skipped."""
    found = []
    for meta_path in uploads_dir().glob("*.json"):
        meta = _read_meta(meta_path.stem) if _DIGEST.fullmatch(meta_path.stem) else None
        try:
            found.append((float(meta.get("created_at", 0)), _info_from_meta(meta, reused=False)))
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return [info for _, info in sorted(found, key=lambda t: -t[0])]
