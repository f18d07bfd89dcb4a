"""``segzero serve``: the HTTP API (``POST /v1/segment``, ``GET /healthz``, ``/docs``) and the web demo at ``/``.

    segzero tiny-models --out models
    segzero serve --reasoner models/reasoner --segmenter models/segmenter --frame 56 --port 8000
    curl -F image=@photo.jpg -F query="the red circle" http://127.0.0.1:8000/v1/segment

Binds 127.0.0.1 unless ``--host`` says otherwise. Models load once, before the port opens; concurrent requests
are batched into one pipeline call (``--max-batch-size``, ``--max-wait-ms``; ``--max-batch-size 1`` turns
batching off). With no model arguments it serves the default model of ``segzero.serve.defaults``.
"""

from __future__ import annotations

import argparse
import sys

from segzero.models.base import DEFAULT_SEGMENTER
from segzero.prompts import MAX_QUERY_CHARS, PROMPT_KINDS

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the HTTP API and the web demo",
        description="Serve POST /v1/segment, GET /healthz, the OpenAPI docs at /docs and a web demo at /.",
    )
    p.add_argument("--reasoner", default=None, help="reasoning VLM: hub id or local folder (default: shipped model)")
    p.add_argument(
        "--segmenter",
        default=None,
        help="SAM2: hub id or local folder, or color | grabcut (default with --reasoner: the one its segzero.json "
        f"names, else {DEFAULT_SEGMENTER})",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--max-batch-size", type=int, default=8, help="most requests per model call (default: %(default)s)")
    p.add_argument("--max-wait-ms", type=float, default=10.0, help="wait for more requests (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest image file (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest width * height (default: %(default)s)")
    p.add_argument("--max-query-chars", type=int, default=MAX_QUERY_CHARS, help="longest query (default: %(default)s)")
    p.add_argument("--max-queue", type=int, default=256, help="waiting requests before 503 (default: %(default)s)")
    p.add_argument("--prompt", choices=sorted(PROMPT_KINDS), default=None, help="prompt kind")
    p.add_argument("--frame", type=int, default=None, help="model frame side in pixels (default: 840)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation limit (default: 1024)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def _check_port_free(host: str, port: int) -> None:
    """UserError when ``host:port`` cannot be bound (checked before the slow model load)."""
    import socket

    from segzero.errors import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def pipeline_kwargs(args: argparse.Namespace) -> dict:
    """``SegZeroPipeline.from_pretrained`` keywords from the arguments (default model when none is named)."""
    from segzero.errors import UserError
    from segzero.pipeline import default_segmenter_for
    from segzero.serve.defaults import default_models

    if args.reasoner is None and args.segmenter is None:
        kwargs = dict(default_models())
    elif args.reasoner is None:
        raise UserError("--segmenter needs --reasoner too")
    else:
        kwargs = {"reasoner": args.reasoner, "segmenter": args.segmenter or default_segmenter_for(args.reasoner)}
    for name in ("prompt", "frame", "max_new_tokens", "device"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    return kwargs


def run(args: argparse.Namespace) -> int:
    from segzero.errors import UserError

    for name in ("max_batch_size", "max_pixels", "max_query_chars", "max_queue"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.max_wait_ms < 0 or args.max_upload_mb <= 0:
        raise UserError("--max-wait-ms must be >= 0 and --max-upload-mb > 0")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    if args.frame is not None and args.frame <= 0:
        raise UserError(f"--frame must be positive, got {args.frame}")
    kwargs = pipeline_kwargs(args)
    _check_port_free(args.host, args.port)
    if args.host not in LOOPBACK:
        print(f"segzero serve: warning: listening on {args.host}, reachable from other machines", file=sys.stderr)

    import uvicorn

    from segzero.pipeline import SegZeroPipeline
    from segzero.serve import ServeConfig, ServeLimits, create_app

    limits = ServeLimits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_query_chars=args.max_query_chars,
        max_queue=args.max_queue,
    )
    print(f"segzero serve: loading {kwargs['reasoner']} + {kwargs['segmenter']} ...", file=sys.stderr, flush=True)
    pipe = SegZeroPipeline.from_pretrained(**{**kwargs, "batch_size": args.max_batch_size})
    from segzero.shapes.examples import ShapesExamples

    config = ServeConfig(
        examples=ShapesExamples.for_model(kwargs["reasoner"]),  # scenes and queries of the served model's world
        limits=limits,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        model_description=f"reasoner {kwargs['reasoner']}, segmenter {kwargs['segmenter']}",
    )
    app = create_app(pipe, config)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"segzero serve: http://{host}:{args.port}/ (API docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0
