"""Decodes adarat export's figures with the standard library alone and prints, one line per file in
name order: the name, its size, and for SVG the text it shows. A PNG is decoded whole: its chunks'
CRCs, its IHDR, and its IDAT inflated to exactly one filter byte and width x 3 bytes per row; an
SVG is parsed as XML."""
import struct
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path


def png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    at, idat, size = 8, b"", None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 2), "expected 8-bit RGB"
            size = (width, height)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height = size
    pixels = zlib.decompress(idat)
    assert len(pixels) == height * (1 + 3 * width), "wrong amount of pixel data"
    rows = [pixels[r * (1 + 3 * width)] for r in range(height)]
    assert all(f <= 4 for f in rows), "bad row filter"
    # Not a blank image: more than one colour among the pixels.
    assert len(set(pixels[1:1 + 3 * width * 10])) > 1 or len(set(pixels)) > 2, "blank image"
    return f"{width}x{height}"


def svg(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), root.tag
    texts = [" ".join("".join(t.itertext()).split()) for t in root.iter() if t.tag.endswith("text")]
    return f"{root.get('width')}x{root.get('height')} " + " | ".join(texts)


for path in sorted(Path(sys.argv[1]).iterdir()):
    print(path.name, png(path) if path.suffix == ".png" else svg(path))
