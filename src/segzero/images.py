"""Load any user image as an 8-bit RGB PIL image, and resize it to the model frame.

Light core: numpy + PIL. Usage::

    from segzero.images import load_image, resize_to_frame

    image = load_image("photo.jpg")          # or a Path, bytes, a file object, a PIL image, a numpy array
    W, H = image.size                         # the ORIGINAL frame: pipeline outputs are in these pixels
    model_input = resize_to_frame(image)      # 840 x 840, what the reasoning model sees
    is_loaded(image)                          # True: later layers use it as it is (no second load)

What ``load_image`` does, in order:

1. reads the source (for files only the header is read before the pixel-count check, so a huge image is
   refused before it is decoded); multi-frame files (GIF, TIFF, MPO) give their first frame;
2. refuses more than ``max_pixels`` pixels and zero-size images (``UserError``), and maps PIL's own
   decompression-bomb error (above ``2 * PIL.Image.MAX_IMAGE_PIXELS``) to ``UserError`` too;
3. applies the EXIF orientation (``PIL.ImageOps.exif_transpose``; also to PIL images passed in, whose
   orientation tag is then already consumed if the caller transposed them);
4. converts to 8-bit RGB:
   - grayscale ("L", "1"), palette ("P"), CMYK, YCbCr: PIL's ``convert("RGB")``; palette images with a
     transparent colour go through RGBA first;
   - with alpha ("RGBA", "LA", "PA", ...): composited over ``background`` (white by default, what a viewer
     shows); ``background=None`` drops the alpha channel instead (the reference scripts'
     ``convert("RGB")``, which shows whatever colour hides under transparent pixels, often black);
   - 16-bit integers ("I;16*" modes, uint16 arrays): scaled by the 16-bit range, ``v * 255 / 65535``
     (PIL's own ``convert`` would clip everything above 255 to white);
   - 32-bit integers ("I" mode, int arrays): values within [0, 255] kept, within [0, 65535] scaled as
     16-bit, otherwise (or with negatives) stretched from [min, max] to [0, 255];
   - floats ("F" mode, float arrays): values within [0, 1] times 255, otherwise stretched from
     [min, max] to [0, 255]; NaN counts as 0; a constant image stretched maps to 0;
   - bool arrays: False -> 0, True -> 255.
   numpy arrays may be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (RGB order, the last channel alpha).

``is_loaded(image)`` says whether an image already is what ``load_image`` returns (so ``load_image`` of it would
be an equal copy): the pipeline loads each input once, at its entry, and the layers after it take such images as
they are (``ensure_loaded``).

Every failure the caller can fix raises ``segzero.errors.UserError`` with one line naming the problem
(missing file, a directory, empty or corrupt data, a non-image file, too many pixels, zero size, an
unsupported array shape or dtype).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME, frame_size

__all__ = ["DEFAULT_FRAME", "DEFAULT_MAX_PIXELS", "ensure_loaded", "is_loaded", "load_image", "resize_to_frame"]

DEFAULT_MAX_PIXELS = 100_000_000
"""default pixel limit of ``load_image`` (width * height); 100 megapixels is ~300 MB as RGB"""

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_TRANSPOSING_ORIENTATIONS = range(2, 9)  # EXIF orientations that ``ImageOps.exif_transpose`` turns or flips


def load_image(
    src,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] | None = _WHITE,
    exif: bool = True,
) -> Image.Image:
    """Load ``src`` (str/Path file name, bytes, binary file object, PIL image, numpy array) as 8-bit RGB.

    ``exif``: apply the EXIF orientation (what a viewer shows). ``False`` keeps the stored pixel order, for
    annotations that index stored pixels (COCO / RefCOCO masks), and returns an image without metadata so that
    a later ``load_image`` of it does not rotate it either.

    ``max_pixels``: refuse images with more pixels than this (``None``: only PIL's own bomb limit applies).
    ``background``: RGB colour transparent pixels are composited over; ``None`` drops alpha instead.
    The input is never modified. Raises ``UserError`` (one line) for anything unreadable; see the module doc.
    """
    image = _load(src, max_pixels=max_pixels, background=background, exif=exif)
    return image if exif else Image.fromarray(np.asarray(image))  # fresh image: no EXIF tag to rotate it later


def _load(src, *, max_pixels: int | None, background, exif: bool) -> Image.Image:
    if isinstance(src, Image.Image):
        _check_size(src.size, max_pixels, "image")
        return _to_rgb(_transposed(src, "image") if exif else src, background)
    if isinstance(src, np.ndarray):
        return _from_array(src, max_pixels=max_pixels, background=background)
    if isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise UserError("empty image data (0 bytes)")
        return _open_and_decode(io.BytesIO(bytes(src)), "image bytes", max_pixels, background, exif)
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        if isinstance(src, str) and src.startswith(("http://", "https://")):
            raise UserError(f"URLs are not loaded, download the image first: {src}")
        if not path.exists():
            raise UserError(f"image file not found: {path}")
        if path.is_dir():
            raise UserError(f"expected an image file, got a directory: {path}")
        if path.stat().st_size == 0:
            raise UserError(f"image file is empty (0 bytes): {path}")
        return _open_and_decode(path, str(path), max_pixels, background, exif)
    if hasattr(src, "read"):
        return _open_and_decode(src, "image stream", max_pixels, background, exif)
    raise UserError(f"cannot load an image from a {type(src).__name__}; pass a path, bytes, PIL image or array")


def is_loaded(image, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> bool:
    """True when ``image`` is what ``load_image`` returns: an 8-bit RGB PIL image of non-zero size within
    ``max_pixels`` with no EXIF orientation left to apply, so that ``load_image(image)`` would be an equal copy.

    >>> is_loaded(Image.new("RGB", (4, 3))), is_loaded(Image.new("L", (4, 3))), is_loaded("photo.jpg")
    (True, False, False)
    """
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        return False
    w, h = image.size
    if w <= 0 or h <= 0 or (max_pixels is not None and w * h > max_pixels):
        return False
    return image.getexif().get(ExifTags.Base.Orientation, 1) not in _TRANSPOSING_ORIENTATIONS


def ensure_loaded(image):
    """``image`` itself when ``is_loaded(image)``, else ``load_image(image)`` (any source ``load_image`` reads):
    how an entry point takes images that may already have been loaded by its caller, without loading them twice."""
    return image if is_loaded(image) else load_image(image)


def resize_to_frame(
    image: Image.Image, frame: int | tuple[int, int] = DEFAULT_FRAME, *, resample=Image.Resampling.BILINEAR
) -> Image.Image:
    """Resize to the model frame: ``frame`` is a side (square) or ``(width, height)``; returns a new image.

    The aspect ratio is not kept (Seg-Zero squashes every image to 840 x 840; answers are mapped back with
    ``x * W / frame_w``, ``y * H / frame_h``). ``resample`` defaults to bilinear because the reference
    inference and evaluation scripts use ``image.resize((840, 840), PIL.Image.BILINEAR)``; Pillow's own
    default would be bicubic. Pillow's filters antialias when shrinking.
    """
    return image.resize(_frame_size(frame), resample)


def _frame_size(frame) -> tuple[int, int]:
    """``segzero.geometry.frame_size`` with its ``ValueError`` as the ``UserError`` a resize reports."""
    try:
        return frame_size(frame)
    except ValueError as err:
        raise UserError(str(err)) from None


def _check_size(size: tuple[int, int], max_pixels: int | None, what: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise UserError(f"{what} has zero size ({w} x {h})")
    if max_pixels is not None and w * h > max_pixels:
        raise UserError(f"{what} is too large: {w} x {h} = {w * h} pixels exceeds max_pixels={max_pixels}")


def _open_and_decode(fp, what: str, max_pixels: int | None, background, exif: bool = True) -> Image.Image:
    """Open a file name or binary stream, check its size from the header, decode, orient, convert."""
    try:
        with warnings.catch_warnings():
            # our max_pixels check replaces PIL's warning; PIL's hard limit still raises (handled below)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                _check_size(im.size, max_pixels, what)
                im.load()
                oriented = ImageOps.exif_transpose(im) if exif else im.copy()
    except Image.DecompressionBombError as e:
        raise UserError(f"{what} is too large to decode safely: {e}") from e
    except UnidentifiedImageError as e:
        raise UserError(f"not an image or an unsupported format: {what}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # truncated or corrupt data (PIL raises all of these depending on the codec)
        raise UserError(f"cannot decode {what}: {e}") from e
    return _to_rgb(oriented, background)


def _transposed(im: Image.Image, what: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UserError(f"cannot decode {what}: {e}") from e


def _to_rgb(im: Image.Image, background) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (see the module doc for the rules)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(im))).convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        if background is None:
            return rgba.convert("RGB")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError as e:
        raise UserError(f"unsupported image mode {mode!r}: {e}") from e


def _scale_to_uint8(a: np.ndarray) -> np.ndarray:
    """A numeric array (any shape) -> uint8 by the rules of the module doc."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 0.0)
        if lo >= 0.0 and hi <= 1.0:
            return np.rint(f * 255.0).astype(np.uint8)
        return _stretch(f, lo, hi)
    if np.issubdtype(a.dtype, np.integer):
        i = a.astype(np.int64)
        lo, hi = (int(i.min()), int(i.max())) if i.size else (0, 0)
        if (a.dtype.kind == "u" and a.dtype.itemsize == 2) or (a.dtype.itemsize > 1 and lo >= 0 and 255 < hi <= 65535):
            return ((i * 255 + 32767) // 65535).astype(np.uint8)  # rounded v * 255 / 65535
        if lo >= 0 and hi <= 255:
            return i.astype(np.uint8)
        return _stretch(i.astype(np.float64), float(lo), float(hi))
    raise UserError(f"unsupported image array dtype {a.dtype}")


def _stretch(f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(f.shape, np.uint8)
    return np.rint((f - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _from_array(a: np.ndarray, *, max_pixels: int | None, background) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise UserError(f"image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    _check_size((a.shape[1], a.shape[0]), max_pixels, "image array")
    if a.ndim == 3 and a.shape[2] == 4:
        rgb = _scale_to_uint8(a[:, :, :3])
        alpha = _scale_to_uint8(a[:, :, 3])
        return _to_rgb(Image.fromarray(np.dstack([rgb, alpha])), background)
    u8 = np.ascontiguousarray(_scale_to_uint8(a))
    return _to_rgb(Image.fromarray(u8), background)
