"""Dynamic micro-batching: texts of concurrent requests are scored together.

Requests wait in a queue; one worker takes every waiting request (up to ``max_batch_size`` texts),
scores them in one ``predict`` call (in a worker thread, so the event loop keeps accepting requests)
and hands each request its own slice of the results. While the model is busy, new requests queue up
and form the next batch, so a lone request is scored at once and batches grow with the load by
themselves. ``max_wait_ms`` > 0 additionally holds a batch open that long for more requests (larger
batches at the cost of latency). How one collected batch is cut into model calls (by length) is the
``predict`` function's business (``TextClassifier.scores``: length-sorted sub-batches).

Written by hand because the serving libraries that batch (Triton, TorchServe, Ray Serve) are whole
servers, not a component for a FastAPI app; the logic is one loop. The queue is a plain deque and
the worker sleeps on one future: at thousands of requests a second, ``asyncio.Queue``'s per-item
bookkeeping (getter/putter futures, ``task_done``) is a visible share of the event loop's time.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence


class _Job:
    __slots__ = ("texts", "future")

    def __init__(self, texts: list[str], future: asyncio.Future):
        self.texts, self.future = texts, future


class MicroBatcher:
    """Collects ``submit(texts)`` calls into batches for ``predict(texts) -> results``.

    Args:
        predict: scores a list of texts, returning one result per text, in order (runs in a thread);
            anything that slices like a list (a list, an array, an object with ``__getitem__(slice)``).
        max_batch_size: most texts per ``predict`` call (a single larger request is scored alone, whole).
        max_wait_ms: how long the first request of a batch may wait for others to join it.
        on_batch: called with (texts in batch, seconds of model time) after every batch, for metrics.
    """

    def __init__(self, predict: Callable[[list[str]], Sequence], max_batch_size: int = 64,
                 max_wait_ms: float = 0.0, on_batch: Callable[[int, float], None] | None = None):
        self.predict, self.max_batch_size, self.max_wait = predict, max_batch_size, max_wait_ms / 1000.0
        self.on_batch = on_batch
        self._jobs: deque[_Job] = deque()
        self._wake: asyncio.Future | None = None  # set while the worker sleeps on an empty queue
        self._worker: asyncio.Task | None = None
        self._idle: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="textsift-batcher")
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued request, then stop the worker (graceful shutdown)."""
        if self._worker is None:
            return
        while self._jobs or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)  # let the worker pick up what arrived meanwhile
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        self._worker = None
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str]):
        """The results for ``texts``, scored in a batch with whatever else is waiting."""
        if self._worker is None:
            raise RuntimeError("MicroBatcher.submit before start()")
        job = _Job(texts, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return await job.future

    async def _wait_for_jobs(self, timeout: float | None = None) -> None:
        self._wake = asyncio.get_running_loop().create_future()
        try:
            if timeout is None:
                await self._wake
            else:
                await asyncio.wait_for(self._wake, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._wake = None

    async def _collect(self) -> list[_Job]:
        while not self._jobs:
            self._idle.set()
            await self._wait_for_jobs()
        self._idle.clear()
        jobs, size = [], 0
        deadline = time.perf_counter() + self.max_wait
        while True:
            # FIFO: a request that would overflow the batch opens the next one, ahead of later requests
            while self._jobs and (not jobs or size + len(self._jobs[0].texts) <= self.max_batch_size):
                job = self._jobs.popleft()
                jobs.append(job)
                size += len(job.texts)
            remaining = deadline - time.perf_counter()
            if size >= self.max_batch_size or self._jobs or remaining <= 0:
                return jobs
            await self._wait_for_jobs(remaining)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            texts = jobs[0].texts if len(jobs) == 1 else [t for job in jobs for t in job.texts]
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.predict, texts)
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
                        job.future.set_result(results[offset:offset + len(job.texts)])
                offset += len(job.texts)
