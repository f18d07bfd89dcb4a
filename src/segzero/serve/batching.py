"""A request queue that groups concurrent requests into one batched model call on a worker thread.

Requests from many clients arrive on the event loop; ``BatchQueue.submit(image, query)`` enqueues one and awaits
its result. A single consumer task takes the first waiting request, then keeps collecting until it holds
``max_batch_size`` requests or ``max_wait_ms`` have passed since the first one, and hands the whole group to
``run_batch(images, queries)`` (e.g. ``SegZeroPipeline.batch``) on a dedicated worker thread, so the event loop
keeps answering (health checks, uploads, other clients) while the model runs. Each result goes back to the future
of the request at the same position: answers always reach their own requester.

``max_batch_size=1`` turns batching off (one model call per request, still queued and off the event loop).

    queue = BatchQueue(pipe.batch, max_batch_size=8, max_wait_ms=10)
    result = await queue.submit(pil_image, "the red circle")    # inside a coroutine
    await queue.close()

A failing model call fails every request of that batch with ``ModelFailure`` (the traceback goes to the log, not
to the client); a full queue raises ``QueueFull``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("segzero.serve")


class ModelFailure(RuntimeError):
    """The model call for a batch raised; the message is safe to show (exception type only, no traceback)."""


class QueueFull(RuntimeError):
    """More than ``max_queue`` requests are waiting."""


class QueueClosed(RuntimeError):
    """The server is shutting down."""


@dataclass
class BatchStats:
    """Counters since start-up (exposed by ``GET /healthz``)."""

    requests: int = 0
    batches: int = 0
    failed_batches: int = 0
    largest_batch: int = 0
    model_seconds: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "batches": self.batches,
            "failed_batches": self.failed_batches,
            "largest_batch": self.largest_batch,
            "mean_batch_size": round(self.requests / self.batches, 3) if self.batches else 0.0,
            "model_seconds": round(self.model_seconds, 3),
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
        }


@dataclass
class _Item:
    image: object
    query: str
    future: asyncio.Future
    enqueued: float


class BatchQueue:
    """Collects ``submit`` calls into batches for ``run_batch(images, queries) -> list`` (one result per pair)."""

    def __init__(
        self,
        run_batch: Callable[[list, list[str]], list],
        *,
        max_batch_size: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 256,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.run_batch = run_batch
        self.max_batch_size = int(max_batch_size)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.max_queue = int(max_queue)
        self.stats = BatchStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segzero-model")
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._inflight: list[_Item] = []  # the batch being computed (failed by ``close``)

    @property
    def pending(self) -> int:
        """Requests waiting to be batched (not counting the batch being computed)."""
        return self._queue.qsize() if self._queue is not None else 0

    def _ensure_started(self) -> asyncio.Queue:
        """Start the consumer on the running loop (lazily: ASGI test transports do not send lifespan events)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._loop is not loop or self._task.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._consume(), name="segzero-batcher")
        return self._queue  # type: ignore[return-value]

    async def submit(self, image, query: str):
        """Queue one (image, query) and wait for its result (whatever ``run_batch`` returns for it)."""
        if self._closed:
            raise QueueClosed("the server is shutting down")
        queue = self._ensure_started()
        if queue.qsize() >= self.max_queue:
            raise QueueFull(f"{queue.qsize()} requests are already waiting (max_queue {self.max_queue})")
        future = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Item(image, query, future, time.perf_counter()))
        return await future

    async def _collect(self, queue: asyncio.Queue) -> list[_Item]:
        """The next batch: the first waiting item, then more until full or ``max_wait`` after the first."""
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while len(batch) < self.max_batch_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return [it for it in batch if not it.future.done()]  # drop requests whose client went away

    async def _consume(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(queue)
            if not batch:
                continue
            self._inflight = batch
            images, queries = [it.image for it in batch], [it.query for it in batch]
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._call, images, queries)
            except Exception as err:  # the one place model errors are caught: every requester gets a 5xx
                log.exception("model call failed for a batch of %d", len(batch))
                self.stats.failed_batches += 1
                failure = ModelFailure(f"the model failed on this request ({type(err).__name__}); see the server log")
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(failure)
                continue
            finally:
                self._count(len(batch), time.perf_counter() - start)
            for it, res in zip(batch, results, strict=True):
                if not it.future.done():
                    it.future.set_result(res)

    def _call(self, images: list, queries: list[str]) -> list:
        results = list(self.run_batch(images, queries))
        if len(results) != len(images):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(images)} requests")
        return results

    def _count(self, n: int, seconds: float) -> None:
        s = self.stats
        s.requests += n
        s.batches += 1
        s.largest_batch = max(s.largest_batch, n)
        s.model_seconds += seconds
        s.batch_sizes[n] = s.batch_sizes.get(n, 0) + 1

    async def close(self) -> None:
        """Stop the consumer; waiting requests fail with ``QueueClosed``; the worker thread is released."""
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = list(self._inflight)
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for it in waiting:
            if not it.future.done():
                it.future.set_exception(QueueClosed("the server is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)
