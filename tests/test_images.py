"""Tests for segzero.images: loading any user image as 8-bit RGB, and resizing to the model frame.

Run: ``pytest tests/test_images.py -q``. Images are generated in the test (PIL/numpy), written to tmp_path
where a file is needed; nothing is downloaded.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from segzero.errors import UserError
from segzero.images import load_image, resize_to_frame


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def px(im: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    assert im.mode == "RGB"
    return tuple(int(v) for v in np.asarray(im)[y, x])


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (with an empty data stream): a decompression-bomb stand-in."""

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


RGBA = Image.fromarray(np.array([[[200, 10, 10, 255], [0, 0, 0, 0]], [[0, 0, 0, 128], [10, 200, 10, 255]]], np.uint8))
PALETTE_T = Image.new("P", (2, 1))
PALETTE_T.putpalette([0, 0, 0, 250, 0, 0] + [0] * 762)
PALETTE_T.putpixel((1, 0), 1)
PALETTE_T.info["transparency"] = 0

# (image bytes or PIL image, load kwargs, {(x, y): expected RGB})
DECODE_CASES = [
    # grayscale PNG: channels replicated
    (encode(Image.new("L", (3, 2), 77)), {}, {(0, 0): (77, 77, 77)}),
    # 1-bit PNG: 1 -> white
    (encode(Image.new("1", (3, 2), 1)), {}, {(2, 1): (255, 255, 255)}),
    # RGBA: transparent pixels composited on white, half-transparent black becomes mid grey, opaque kept
    (encode(RGBA), {}, {(0, 0): (200, 10, 10), (1, 0): (255, 255, 255), (0, 1): (127, 127, 127)}),
    # RGBA with background=None: alpha dropped (the reference's convert("RGB")): the hidden black shows
    (encode(RGBA), {"background": None}, {(1, 0): (0, 0, 0), (1, 1): (10, 200, 10)}),
    # RGBA on a custom background colour
    (encode(RGBA), {"background": (0, 0, 255)}, {(1, 0): (0, 0, 255)}),
    # LA (grey + alpha): composited on white as well
    (encode(Image.new("LA", (2, 2), (0, 0))), {}, {(1, 1): (255, 255, 255)}),
    # palette with a transparent index: transparent index -> white, the other index -> its colour
    (encode(PALETTE_T), {}, {(0, 0): (255, 255, 255), (1, 0): (250, 0, 0)}),
    # 16-bit grayscale PNG: scaled by the 16-bit range, not clipped (PIL's convert would give 255 for all)
    (
        encode(Image.fromarray(np.array([[0, 257, 32768, 65535]], np.uint16))),
        {},
        {(0, 0): (0, 0, 0), (1, 0): (1, 1, 1), (2, 0): (128, 128, 128), (3, 0): (255, 255, 255)},
    ),
    # 1x1 image: smallest valid input
    (encode(Image.new("RGB", (1, 1), (1, 2, 3))), {}, {(0, 0): (1, 2, 3)}),
    # CMYK JPEG: converted by PIL (pure cyan-free white -> near white)
    (encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG"), {}, {(4, 4): (255, 255, 255)}),
]


@pytest.mark.parametrize(("data", "kw", "expected"), DECODE_CASES)
def test_decode_modes(data, kw, expected):
    im = load_image(data, **kw)
    assert im.mode == "RGB"
    for (x, y), rgb in expected.items():
        assert px(im, x, y) == pytest.approx(rgb, abs=2), (x, y)


def test_16bit_png_from_file(tmp_path):
    # a 16-bit PNG on disk (the I;16 path), the brightest pixel white and a mid value mid grey
    path = tmp_path / "depth.png"
    Image.fromarray(np.array([[1000, 30000], [65535, 0]], np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    im = load_image(path)
    assert px(im, 0, 1) == (255, 255, 255) and px(im, 1, 0)[0] == round(30000 * 255 / 65535)


def test_wide_image_keeps_size(tmp_path):
    # 5000 x 300: an extreme aspect ratio is loaded as is (resizing is resize_to_frame's job)
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (5000, 300), (10, 20, 30)).save(path, quality=95)
    im = load_image(str(path))
    assert im.size == (5000, 300)
    assert px(im, 4999, 299) == pytest.approx((10, 20, 30), abs=3)


def test_exif_rotated_jpeg(tmp_path):
    # stored 40x20 with the left half red and EXIF orientation 6 ("rotate 90 deg clockwise to view"):
    # loaded upright it is 20x40 with the red half on top
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif.tobytes(), quality=95)
    im = load_image(path)
    assert im.size == (20, 40)
    assert px(im, 10, 5)[0] > 200 and px(im, 10, 35)[0] < 50
    # the same through a PIL image opened by the caller (not yet transposed): also upright, input untouched
    opened = Image.open(path)
    assert load_image(opened).size == (20, 40) and opened.size == (40, 20)
    # exif=False keeps the stored pixels (COCO masks index them), and loading that result again does not rotate it
    stored = load_image(path, exif=False)
    assert stored.size == (40, 20) and px(stored, 5, 10)[0] > 200
    assert load_image(stored).size == (40, 20)


@pytest.mark.parametrize(
    ("arr", "expected"),
    [
        (np.full((2, 3), 9, np.uint8), (9, 9, 9)),  # (H, W) uint8 grayscale
        (np.full((2, 3, 1), 9, np.uint8), (9, 9, 9)),  # (H, W, 1) treated as grayscale
        (np.tile(np.array([1, 2, 3], np.uint8), (2, 3, 1)), (1, 2, 3)),  # (H, W, 3) RGB order
        (np.tile(np.array([1, 2, 3, 0], np.uint8), (2, 3, 1)), (255, 255, 255)),  # (H, W, 4) transparent -> white
        (np.full((2, 3), 65535, np.uint16), (255, 255, 255)),  # uint16 scaled by the 16-bit range
        (np.ones((2, 3), bool), (255, 255, 255)),  # a bool mask shown as white
        (np.full((2, 3, 3), 0.5, np.float32), (128, 128, 128)),  # floats in [0, 1] times 255
        (np.array([[-1.0, 1.0, 0.0]]), (0, 0, 0)),  # floats outside [0, 1] stretched: min -> 0 ...
        (np.array([[1.0, -1.0, 3.0]], np.float64), (128, 128, 128)),  # ... and the mid value -> 128
        (np.array([[300, 0]], np.int32), (1, 1, 1)),  # ints up to 65535 treated as 16-bit: 300 -> 1
        (np.array([[-5, 5]], np.int64), (0, 0, 0)),  # negative ints stretched: min -> 0
    ],
)
def test_numpy_inputs(arr, expected):
    im = load_image(arr)
    assert im.mode == "RGB" and im.size == (arr.shape[1], arr.shape[0])
    assert px(im, 0, 0) == expected


def test_pil_input_is_not_modified():
    # an RGBA image passed in stays RGBA; the result is a new RGB image
    src = RGBA.copy()
    out = load_image(src)
    assert src.mode == "RGBA" and out.mode == "RGB" and out is not src


def test_file_object_and_bytearray():
    # a binary stream and a bytearray are read like bytes
    data = encode(Image.new("RGB", (4, 3), (5, 6, 7)))
    assert px(load_image(io.BytesIO(data)), 0, 0) == (5, 6, 7)
    assert px(load_image(bytearray(data)), 3, 2) == (5, 6, 7)


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def _truncated_jpeg() -> bytes:
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "JPEG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        # missing file: named in the message
        (lambda p: p / "nope.jpg", "not found"),
        # a directory instead of a file
        (lambda p: p, "directory"),
        # an empty file
        (lambda p: write(p / "empty.png", b""), "empty"),
        # a text file named .png
        (lambda p: write(p / "notes.png", b"hello, not a picture\n"), "not an image"),
        # a truncated JPEG file: the header reads, the data does not
        (lambda p: write(p / "cut.jpg", _truncated_jpeg()), "cannot decode"),
    ],
)
def test_file_errors(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(UserError, match=match) as info:
        load_image(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("src", "kw", "match"),
    [
        (b"", {}, "empty"),  # zero bytes
        (b"\x00\x01garbage" * 10, {}, "not an image"),  # random bytes
        (_truncated_jpeg(), {}, "cannot decode"),  # corrupt image bytes
        (encode(Image.new("RGB", (20, 20))), {"max_pixels": 399}, "too large"),  # our pixel limit: 400 > 399
        (png_header_only(10_001, 10_000), {}, "too large"),  # just over the 100 MP default, refused before decoding
        (png_header_only(20_000, 20_000), {"max_pixels": None}, "too large"),  # PIL's own bomb limit
        (np.zeros((0, 5), np.uint8), {}, "zero size"),  # an empty array
        (Image.new("RGB", (0, 0)), {}, "zero size"),  # an empty PIL image
        (np.zeros((4, 4, 2), np.uint8), {}, "shape"),  # two channels: not an image layout we know
        (np.zeros((4, 4), np.complex64), {}, "dtype"),  # complex numbers are not pixels
        (np.zeros((2000, 2000), np.uint8), {"max_pixels": 1000}, "too large"),  # the limit applies to arrays
        ("https://example.com/a.jpg", {}, "URL"),  # no network access from here
        (12345, {}, "int"),  # not a source at all
    ],
)
def test_user_errors(src, kw, match):
    with pytest.raises(UserError, match=match) as info:
        load_image(src, **kw)
    assert "\n" not in str(info.value)


def test_resize_to_frame():
    im = Image.new("RGB", (640, 480), (1, 2, 3))
    # default: the 840 x 840 model frame, bilinear like the reference scripts
    out = resize_to_frame(im)
    assert out.size == (840, 840)
    assert np.array_equal(np.asarray(out), np.asarray(im.resize((840, 840), Image.Resampling.BILINEAR)))
    # a (width, height) frame and another filter
    assert resize_to_frame(im, (336, 224), resample=Image.Resampling.BICUBIC).size == (336, 224)
    # numpy integers are integers too (frames often come from arrays or configs)
    assert resize_to_frame(im, np.int64(28)).size == (28, 28)
    # the input is not modified
    assert im.size == (640, 480)


@pytest.mark.parametrize(
    "frame", [0, -840, (840,), (840, 0), 840.0, True, "840"]
)  # zero, negative, malformed, float, ...
def test_resize_to_frame_rejects_bad_frames(frame):
    with pytest.raises(UserError, match="frame"):
        resize_to_frame(Image.new("RGB", (4, 4)), frame)
