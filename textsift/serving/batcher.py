"""Dynamic micro-batching: texts of concurrent requests are scored together.

Requests wait in a queue; one worker takes every waiting request (up to ``max_batch_size`` texts),
scores them in one model call (in a worker thread, so the event loop keeps accepting requests) and
hands each request its own slice of the results. While the model is busy, new requests queue up and
form the next batch, so a lone request is scored at once and batches grow with the load by
themselves. ``max_wait_ms`` > 0 additionally holds a batch open that long for more requests (larger
batches at the cost of latency).

Written by hand because the serving libraries that batch (Triton, TorchServe, Ray Serve) are whole
servers, not a component for a FastAPI app; the logic is one loop.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects ``submit(texts)`` calls into batches for ``predict(texts) -> list of results``.

    Args:
        predict: scores a list of texts, returning one result per text, in order (runs in a thread).
        max_batch_size: most texts per model call (a single larger request is scored alone, whole).
        max_wait_ms: how long the first request of a batch may wait for others to join it.
        on_batch: called with (texts in batch, seconds of model time) after every batch, for metrics.
    """

    def __init__(self, predict: Callable[[list[str]], Sequence], max_batch_size: int = 64,
                 max_wait_ms: float = 0.0, on_batch: Callable[[int, float], None] | None = None):
        self.predict, self.max_batch_size, self.max_wait = predict, max_batch_size, max_wait_ms / 1000.0
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._carry: _Job | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop the worker (graceful shutdown)."""
        if self._worker is None:
            return
        await self._queue.join()
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        self._worker = None

    async def submit(self, texts: list[str]) -> list:
        """The results for ``texts``, scored in a batch with whatever else is waiting."""
        if self._worker is None:
            raise RuntimeError("MicroBatcher.submit before start()")
        job = _Job(list(texts), asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _collect(self) -> list[_Job]:
        first, self._carry = (self._carry, None) if self._carry is not None else (await self._queue.get(), None)
        jobs, size = [first], len(first.texts)
        deadline = time.perf_counter() + self.max_wait
        while size < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get_nowait() if not self._queue.empty() or remaining <= 0 else \
                    await asyncio.wait_for(self._queue.get(), remaining)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            if size + len(job.texts) > self.max_batch_size:
                self._carry = job  # it opens the next batch, ahead of later requests
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._collect()
            texts = [t for job in jobs for t in job.texts]
            start = time.perf_counter()
            try:
                results = await asyncio.to_thread(self.predict, texts)
                error = None
            except Exception as e:  # one bad batch must not kill the worker; every caller gets the error
                results, error = None, e
            if self.on_batch is not None:
                self.on_batch(len(texts), time.perf_counter() - start)
            offset = 0
            for job in jobs:
                if not job.future.done():  # the client may have gone away
                    if error is not None:
                        job.future.set_exception(error)
                    else:
                        job.future.set_result(list(results[offset:offset + len(job.texts)]))
                offset += len(job.texts)
                self._queue.task_done()
