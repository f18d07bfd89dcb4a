"""Request limits of the HTTP API and the checks that enforce them (image bytes, pixels, type, query).

Every violation raises ``ApiError``, which the app turns into a JSON error body::

    {"error": {"code": "max_pixels", "message": "...", "limit": "max_pixels", "limit_value": 40000000}}

``code`` names the limit (or the problem, e.g. ``invalid_image``, ``empty_query``); ``limit``/``limit_value``
are present when a configured limit was exceeded. Image types are sniffed from the bytes (magic numbers, then
PIL's own identification), never from a file name or a client-sent content type. Nothing here writes to disk.

    from segzero.serve.limits import ServeLimits, decode_image, check_query
    limits = ServeLimits(max_upload_bytes=5 * 2**20)
    image = decode_image(data, limits)        # PIL RGB (EXIF applied) or ApiError
    query = check_query(" the red circle ", limits)
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from segzero.errors import UserError
from segzero.prompts import MAX_QUERY_CHARS, Query, QueryError
from segzero.prompts import check_query as check_query_text

IMAGE_TYPES: tuple[str, ...] = ("png", "jpeg", "webp", "gif", "bmp", "tiff")
"""image types the server can be configured to accept (names as ``sniff_image_type`` returns them)"""

# PIL's format names for each sniffed type (a JPEG with several frames opens as MPO)
_PIL_FORMATS: dict[str, tuple[str, ...]] = {
    "png": ("PNG",),
    "jpeg": ("JPEG", "MPO"),
    "webp": ("WEBP",),
    "gif": ("GIF",),
    "bmp": ("BMP", "DIB"),
    "tiff": ("TIFF",),
}


@dataclass(frozen=True)
class ServeLimits:
    """Limits applied to every ``POST /v1/segment`` request (before any model work)."""

    max_upload_bytes: int = field(
        default=10 * 2**20, metadata={"help": "largest image file in bytes (decoded bytes for base64 JSON)"}
    )
    max_pixels: int = field(
        default=40_000_000, metadata={"help": "largest image width * height, read from the header"}
    )
    max_query_chars: int = field(
        default=MAX_QUERY_CHARS, metadata={"help": "longest query in characters (after stripping)"}
    )
    allowed_image_types: tuple[str, ...] = field(
        default=("png", "jpeg", "webp", "gif", "bmp"), metadata={"help": "accepted types, sniffed from the content"}
    )
    max_queue: int = field(default=256, metadata={"help": "requests waiting for the model before 503 queue_full"})

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_query_chars", "max_queue"):
            if int(getattr(self, name)) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        unknown = sorted(set(self.allowed_image_types) - set(IMAGE_TYPES))
        if unknown or not self.allowed_image_types:
            raise UserError(f"allowed image types must be a non-empty subset of {list(IMAGE_TYPES)}, got {unknown}")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body read: the image as base64 (4/3) plus the query (4 bytes/char) and 64 KiB of framing."""
        return (self.max_upload_bytes * 4) // 3 + 4 + 4 * self.max_query_chars + 64 * 1024


class ApiError(Exception):
    """An HTTP error with a JSON body: ``status``, machine-readable ``code``, one-line ``message``, the limit."""

    def __init__(self, status: int, code: str, message: str, *, limit: str | None = None, limit_value=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.limit, self.limit_value = limit, limit_value

    def body(self) -> dict:
        err: dict = {"code": self.code, "message": self.message}
        if self.limit is not None:
            err["limit"], err["limit_value"] = self.limit, self.limit_value
        return {"error": err}


def limit_error(status: int, limit: str, value, message: str) -> ApiError:
    """An ``ApiError`` whose code is the name of the exceeded limit."""
    return ApiError(status, limit, message, limit=limit, limit_value=value)


def sniff_image_type(data: bytes) -> str | None:
    """The image type from the first bytes (``IMAGE_TYPES`` names), or None when they match no known type."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM" and len(data) >= 26:
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def decode_image(data: bytes, limits: ServeLimits) -> Image.Image:
    """Check ``data`` against the limits and decode it to an 8-bit RGB PIL image (EXIF orientation applied): the
    request's one ``load_image``; the pipeline takes the loaded image as it is.

    Order: size in bytes (413 ``max_upload_bytes``), empty (400 ``invalid_image``), sniffed type (415
    ``allowed_image_types``), header width * height (413 ``max_pixels``, before any pixel is decoded), full
    decode (400 ``invalid_image`` for corrupt or truncated data). Runs on a worker thread (decoding is CPU work).
    """
    from segzero.images import load_image

    if len(data) > limits.max_upload_bytes:
        raise limit_error(
            413,
            "max_upload_bytes",
            limits.max_upload_bytes,
            f"image is {len(data)} bytes, the limit is {limits.max_upload_bytes} (max_upload_bytes)",
        )
    if not data:
        raise ApiError(400, "invalid_image", "the image is empty (0 bytes)")
    kind = sniff_image_type(data)
    if kind is None or kind not in limits.allowed_image_types:
        what = f"a {kind} image" if kind else "not a recognised image (content sniffed, file name ignored)"
        raise limit_error(
            415,
            "allowed_image_types",
            list(limits.allowed_image_types),
            f"upload is {what}; allowed image types: {', '.join(limits.allowed_image_types)}",
        )
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            fmt, (w, h) = header.format, header.size
    except Image.DecompressionBombError as err:
        raise limit_error(413, "max_pixels", limits.max_pixels, f"image has too many pixels: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ApiError(400, "invalid_image", f"cannot read the {kind} image: {err}") from None
    if fmt not in _PIL_FORMATS[kind]:
        raise ApiError(400, "invalid_image", f"content starts like {kind} but decodes as {fmt}")
    if w * h > limits.max_pixels:
        raise limit_error(
            413,
            "max_pixels",
            limits.max_pixels,
            f"image is {w}x{h} = {w * h} pixels, the limit is {limits.max_pixels} (max_pixels)",
        )
    try:
        return load_image(data, max_pixels=limits.max_pixels)
    except UserError as err:
        raise ApiError(400, "invalid_image", f"cannot decode the {kind} image: {err}") from None


def check_query(query, limits: ServeLimits) -> Query:
    """The query as ``segzero.prompts.check_query`` returns it (a stripped ``Query``, which the pipeline takes as it
    is), within ``limits.max_query_chars``.

    Each refusal is a 422 whose code is the ``QueryError``'s: ``invalid_query`` (not a string, not valid UTF-8),
    ``empty_query`` (nothing left after the prompt's normalisation: "..." is empty too) or ``max_query_chars``.
    """
    try:
        return check_query_text(query, max_chars=limits.max_query_chars)
    except QueryError as err:
        if err.code == "max_query_chars":
            raise limit_error(422, err.code, limits.max_query_chars, f"{err} (max_query_chars)") from None
        raise ApiError(422, err.code, str(err)) from None
