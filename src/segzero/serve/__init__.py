"""HTTP serving of the Seg-Zero pipeline: a FastAPI app with request batching, limits and a web demo.

Run it with ``segzero serve --reasoner DIR --segmenter DIR [--host 127.0.0.1] [--port 8000]`` or in Python::

    from segzero.serve import ServeConfig, ServeLimits, create_app
    app = create_app(pipe, ServeConfig(limits=ServeLimits(max_upload_bytes=5 * 2**20), max_batch_size=8))

Modules: ``app`` (routes, error handling), ``batching`` (the request queue feeding ``pipeline.batch`` on a worker
thread), ``limits`` (upload/pixel/type/query checks), ``inputs`` (multipart and JSON bodies, in memory),
``encoding`` (COCO RLE and PNG masks), ``page`` (the demo page at ``/``), ``examples`` (shapes-world examples),
``defaults`` (the model used when none is named).
"""

from segzero.serve.app import ServeConfig, create_app
from segzero.serve.limits import ServeLimits

__all__ = ["ServeConfig", "ServeLimits", "create_app"]
