"""The FastAPI app: ``POST /v1/segment``, ``GET /healthz``, the web demo at ``/``, examples, OpenAPI at ``/docs``.

    from segzero.pipeline import SegZeroPipeline
    from segzero.serve import ServeConfig, create_app
    pipe = SegZeroPipeline.from_pretrained(reasoner="models/reasoner", segmenter="models/segmenter")
    app = create_app(pipe, ServeConfig(max_batch_size=8, max_wait_ms=10))
    # uvicorn.run(app, host="127.0.0.1", port=8000)   (what `segzero serve` does)

The pipeline is loaded once by the caller and shared. Each request is read in memory and checked against
``ServeLimits`` (4xx JSON naming the limit), decoded on a thread, then queued in a ``BatchQueue`` that runs
``pipeline.batch`` on one worker thread for up to ``max_batch_size`` concurrent requests at a time; each answer
returns to its own requester (the optional ``id`` field is echoed back). Errors are JSON
``{"error": {"code", "message", ["limit", "limit_value"]}}``; a model failure is a 500 with no traceback.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from segzero.serve.batching import BatchQueue, ModelFailure, QueueClosed, QueueFull
from segzero.serve.encoding import result_payload
from segzero.serve.examples import Examples, NoExamples
from segzero.serve.inputs import read_segment_input
from segzero.serve.limits import ApiError, ServeLimits, check_query, decode_image, limit_error
from segzero.serve.page import render_page


@dataclass(frozen=True)
class ServeConfig:
    """How the app batches, limits and describes itself."""

    limits: ServeLimits = field(default_factory=ServeLimits, metadata={"help": "request limits"})
    max_batch_size: int = field(default=8, metadata={"help": "most requests per model call (1 = no batching)"})
    max_wait_ms: float = field(default=10.0, metadata={"help": "how long the first request waits for company"})
    title: str = field(default="segzero", metadata={"help": "page and API title"})
    model_description: str = field(
        default="", metadata={"help": "one line naming the models, shown on / and /healthz"}
    )
    examples: Examples = field(default_factory=NoExamples, metadata={"help": "demo examples (list(), png(i))"})


class SegmentJSONRequest(BaseModel):
    """``POST /v1/segment`` as JSON."""

    image: str = Field(description="the image file, base64 (a data: URL is accepted)")
    query: str = Field(description="what to segment, in free form")
    id: str | None = Field(default=None, description="any client id, echoed back in the response")
    mask_png: bool = Field(default=False, description="also return the mask as a base64 PNG")


class SegObjectOut(BaseModel):
    box: list[float] | None = Field(description="inclusive pixel box [x1, y1, x2, y2] in original-image pixels")
    points: list[list[float]] = Field(description="[[x, y], ...] in original-image pixels")


class MaskRLE(BaseModel):
    size: list[int] = Field(description="[h, w]")
    counts: str = Field(description="COCO compressed RLE counts (pycocotools), column-major")


class SegmentResponse(BaseModel):
    id: str | None = Field(description="the request's id, if it sent one")
    reasoning: str | None = Field(description="the model's <think> text")
    objects: list[SegObjectOut]
    scores: list[float] = Field(description="SAM's predicted IoU per object")
    mask_rle: MaskRLE
    mask_area: int
    image_size: list[int] = Field(description="[w, h] of the image after EXIF orientation")
    parse_ok: bool
    parse_error: str
    completion: str = Field(description="raw model output")
    answer: dict = Field(description="the parsed answer in the model frame")
    mask_png: str | None = Field(default=None, description="base64 0/255 PNG mask, when asked for")
    timing: dict = Field(description="milliseconds spent decoding, waiting + in the model, in total")


class ErrorBody(BaseModel):
    code: str = Field(description="the exceeded limit's name, or the problem (invalid_image, empty_query, ...)")
    message: str
    limit: str | None = None
    limit_value: int | list[str] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["image", "query"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "image file; type sniffed from content"},
        "query": {"type": "string", "description": "what to segment"},
        "id": {"type": "string", "description": "echoed back"},
        "mask_png": {"type": "boolean", "description": "also return a base64 PNG mask"},
    },
}


def create_app(pipeline, config: ServeConfig | None = None) -> FastAPI:
    """The app serving ``pipeline`` (anything with ``batch(images, queries, *, batch_size) -> list[SegResult]``)."""
    config = config or ServeConfig()
    limits = config.limits
    queue = BatchQueue(
        lambda images, queries: pipeline.batch(images, queries, batch_size=config.max_batch_size),
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        max_queue=limits.max_queue,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await queue.close()

    app = FastAPI(
        title=f"{config.title} API",
        version="1",
        description="Reasoning segmentation: a VLM reasons and answers with boxes and points, SAM2 makes the mask.",
        lifespan=lifespan,
    )
    app.state.queue, app.state.pipeline, app.state.config = queue, pipeline, config
    _install_error_handlers(app)
    errors = {s: {"model": ErrorResponse} for s in (400, 413, 415, 422, 500, 503)}

    @app.post(
        "/v1/segment",
        summary="Segment what a query refers to in an image",
        response_model=SegmentResponse,
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
                    "application/json": {"schema": SegmentJSONRequest.model_json_schema()},
                },
            }
        },
    )
    async def segment(request: Request):
        start = time.perf_counter()
        req = await read_segment_input(request, limits)
        query = check_query(req.query, limits)
        image = await run_in_threadpool(decode_image, req.image, limits)
        decoded = time.perf_counter()
        try:
            result = await queue.submit(image, query)
        except QueueFull as err:
            raise limit_error(503, "max_queue", limits.max_queue, str(err)) from None
        except QueueClosed as err:
            raise ApiError(503, "shutting_down", str(err)) from None
        except ModelFailure as err:
            raise ApiError(500, "model_failure", str(err)) from None
        done = time.perf_counter()
        payload = await run_in_threadpool(result_payload, result, mask_png=req.mask_png)
        payload["id"] = req.id
        payload["timing"] = {
            "decode_ms": round(1000 * (decoded - start), 2),
            "queue_and_model_ms": round(1000 * (done - decoded), 2),
            "total_ms": round(1000 * (time.perf_counter() - start), 2),
        }
        return JSONResponse(payload)

    @app.get("/healthz", summary="Liveness and batching counters")
    async def healthz():
        return {
            "status": "ok",
            "model": config.model_description,
            "max_batch_size": config.max_batch_size,
            "max_wait_ms": config.max_wait_ms,
            "pending": queue.pending,
            "stats": queue.stats.as_dict(),
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        segmenter = getattr(getattr(pipeline, "segmenter", None), "description", "a segmenter")
        return HTMLResponse(render_page(title=config.title, model=config.model_description, segmenter=segmenter))

    @app.get("/v1/examples", summary="Demo examples (the served model's shapes world)")
    async def examples():
        return await run_in_threadpool(config.examples.list)

    @app.get(
        "/v1/examples/{index}.png", summary="One demo example image (PNG)", responses={404: {"model": ErrorResponse}}
    )
    async def example_png(index: int):
        try:
            data = await run_in_threadpool(config.examples.png, index)
        except IndexError as err:
            raise ApiError(404, "not_found", str(err)) from None
        return Response(data, media_type="image/png")

    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error becomes ``{"error": {...}}`` JSON; unexpected ones say nothing about the code (logged instead)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        body = ApiError(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}").body()
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(ApiError(exc.status_code, code, str(exc.detail)).body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        body = ApiError(500, "internal_error", "internal server error; see the server log").body()
        return JSONResponse(body, status_code=500)
