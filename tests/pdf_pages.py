"""What a PDF that Chromium printed shows, page by page, read with the standard library only:
each page's text (uncompressed objects, Flate streams, fonts with ToUnicode maps, strings as
<hex> in Tj and TJ) and how many images it draws. Enough for Chromium's PDFs, not a general
reader. Used by the handout tests (tests/test_browser_tables.py, tests/test_browser_class.py).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass


def _stream(body: bytes) -> bytes:
    """An object's stream, inflated. The end-of-line before `endstream` is left in the data: a
    compressed stream may itself end in a carriage return, and a decompressor stops at the end
    of its stream anyway (what follows becomes its unused data)."""
    match = re.search(rb"stream\r?\n(.*?)endstream", body, re.S)
    if match is None:
        return b""
    data = match.group(1)
    if b"/FlateDecode" in body[:match.start()]:
        return zlib.decompressobj().decompress(data)
    return data.removesuffix(b"\n").removesuffix(b"\r")


def _cmap(data: bytes) -> dict[bytes, str]:
    """A ToUnicode CMap: glyph code (bytes) -> text."""
    def text(hexa: bytes) -> str:
        return bytes.fromhex(hexa.decode()).decode("utf-16-be", "replace")

    out = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, value in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[bytes.fromhex(code.decode())] = text(value)
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, value in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first, width = int(lo, 16), len(lo) // 2
            start = bytes.fromhex(value.decode()).decode("utf-16-be", "replace")
            for i in range(int(hi, 16) - first + 1):
                out[(first + i).to_bytes(width, "big")] = start[:-1] + chr(ord(start[-1]) + i)
    return out


def _objects(pdf: bytes) -> dict[int, bytes]:
    return {int(n): body for n, body in re.findall(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S)}


def _font_names(objects: dict[int, bytes]) -> dict[bytes, dict[bytes, str]]:
    """Resource name (/F4) -> glyph code -> text, over every font of the file."""
    fonts = {}  # font object -> its code -> text map
    for number, body in objects.items():
        ref = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if ref:
            fonts[number] = _cmap(_stream(objects[int(ref.group(1))]))
    names = {}  # resource name (/F4) -> code -> text
    for body in objects.values():
        for block in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, number in re.findall(rb"/([\w.+-]+) (\d+) 0 R", block):
                names[name] = fonts.get(int(number), {})
    return names


def _drawn_text(body: bytes, names: dict[bytes, dict[bytes, str]]) -> str:
    """The text one content stream draws ("" for an image, a font or a stream with no text)."""
    if b"stream" not in body or re.search(rb"/Subtype\s*/Image|/Length1|/ToUnicode", body):
        return ""  # an image, a font file or a font: no text drawn
    try:
        content = _stream(body)
    except zlib.error:
        return ""
    words = []
    if re.search(rb"\bBT\b", content):
        cmap: dict[bytes, str] = {}
        for match in re.finditer(rb"/([\w.+-]+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>|\bT[Jj]\b", content):
            if match.group(1):
                cmap = names.get(match.group(1), {})
            elif match.group(2) is not None:
                digits = match.group(2).decode()
                raw = bytes.fromhex(digits + "0" * (len(digits) % 2))  # an odd last digit: 0
                width = len(next(iter(cmap), b"\0\0")) or 2
                words.append("".join(cmap.get(raw[i:i + width], "") for i in range(0, len(raw), width)))
            else:
                words.append(" ")
    return "".join(words)


def pdf_text(pdf: bytes) -> str:
    """The text a PDF draws, page after page."""
    return "".join(page.text for page in pdf_pages(pdf))


@dataclass(frozen=True)
class Page:
    text: str  # what the page draws, in drawing order
    images: int  # images it draws (its XObjects of subtype Image)


def pdf_pages(pdf: bytes) -> list[Page]:
    """Each page of the PDF, in order (the page tree's /Kids, one level as Chromium writes it).
    A page's text includes that of the forms it draws (Chromium puts translucent text, such as
    captions, in form XObjects), after the page's own."""
    objects = _objects(pdf)
    names = _font_names(objects)
    root = next(body for body in objects.values() if re.search(rb"/Type\s*/Pages\b", body))
    kids = re.search(rb"/Kids\s*\[(.*?)\]", root, re.S).group(1)
    pages = []
    for number in (int(n) for n in re.findall(rb"(\d+) 0 R", kids)):
        body = objects[number]
        contents = re.search(rb"/Contents\s*(\[.*?\]|\d+ 0 R)", body, re.S).group(1)
        text = "".join(_drawn_text(objects[int(n)], names)
                       for n in re.findall(rb"(\d+) 0 R", contents))
        more, images = _xobjects(body, objects, names, set())
        pages.append(Page(text + more, images))
    return pages


def _xobjects(body: bytes, objects: dict[int, bytes], names, seen: set[int]) -> tuple[str, int]:
    """The text of the forms that `body`'s resources name (and of theirs), and their images."""
    ref = re.search(rb"/Resources\s+(\d+) 0 R", body)
    resources = objects.get(int(ref.group(1)), b"") if ref else body
    listed = re.search(rb"/XObject\s*<<(.*?)>>", resources, re.S)
    text, images = "", 0
    for number in (int(n) for n in re.findall(rb"(\d+) 0 R", listed.group(1) if listed else b"")):
        xobject = objects.get(number, b"")
        if number in seen:
            continue
        seen.add(number)
        if re.search(rb"/Subtype\s*/Image", xobject):
            images += 1
        elif re.search(rb"/Subtype\s*/Form", xobject):
            inner_text, inner_images = _xobjects(xobject, objects, names, seen)
            text += _drawn_text(xobject, names) + inner_text
            images += inner_images
    return text, images
