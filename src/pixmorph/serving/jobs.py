"""A bounded queue in front of a fixed pool of worker threads, with per-job progress."""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pixmorph.serving.errors import ServeError
from pixmorph.serving.models import Cancelled, JobContext

T = TypeVar("T")
PROGRESS_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ClientGone(Exception):
    """The client disconnected while its job waited or ran; nobody reads an answer."""


class ProgressBoard:
    """Progress of recent jobs by a client-chosen id, for GET /api/progress/{id}."""

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def set(self, job_id: str | None, state: str, done: int = 0, total: int = 0) -> None:
        if not job_id:
            return
        with self._lock:
            self._jobs[job_id] = {"state": state, "done": done, "total": total}
            self._jobs.move_to_end(job_id)
            while len(self._jobs) > self.keep:  # the oldest ids are forgotten
                self._jobs.popitem(last=False)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._jobs.get(job_id)
            return dict(found) if found else None


class Ticket:
    """One admitted request's place in the queue; it is given back exactly once."""

    def __init__(self, queue: WorkQueue) -> None:
        self.queue = queue
        self.handed_over = False  # a worker job holds the place now and gives it back
        self._open = True

    def close(self, force: bool = False) -> None:
        """Give the place back (unless a job holds it and this is not that job ending)."""
        if self._open and (force or not self.handed_over):
            self._open = False
            self.queue._release()


class WorkQueue:
    """Runs jobs on `workers` threads; at most `queue_size` more wait, the rest get 503."""

    def __init__(self, workers: int = 1, queue_size: int = 8) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError(
                f"workers must be >= 1 and queue_size >= 0, got {workers}, {queue_size}"
            )
        self.workers = workers
        self.capacity = workers + queue_size
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="pixmorph-serve")
        self._lock = threading.Lock()
        self._used = 0  # jobs queued or running; a slot frees when its work really stops
        self._seconds = 1.0  # running mean of a job's time, for Retry-After

    @property
    def busy(self) -> int:
        return self._used

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue's work spread over the workers."""
        return max(1, math.ceil(self._seconds * self.capacity / self.workers))

    def admit(self) -> Ticket:
        """A place in the queue, taken before the upload is read; ServeError 503 when full."""
        with self._lock:
            if self._used >= self.capacity:
                raise ServeError(
                    503,
                    f"the server is busy ({self.capacity} requests queued or running); "
                    "retry after the time in Retry-After",
                    {"Retry-After": str(self.retry_after())},
                )
            self._used += 1
        return Ticket(self)

    def _release(self) -> None:
        with self._lock:
            self._used -= 1

    def _timed(self, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.perf_counter() - t0)

    async def run(
        self,
        fn: Callable[[], T],
        job: JobContext,
        disconnected: Callable[[], Awaitable[bool]],
        poll: float = 0.2,
        ticket: Ticket | None = None,
    ) -> T:
        """Run fn on a worker (with `ticket`'s place, else a new one); ClientGone on disconnect."""
        ticket = ticket or self.admit()
        try:
            cf = self._pool.submit(self._timed, fn)
        except RuntimeError:  # the pool shut down: the server is stopping
            ticket.close()
            raise ServeError(503, "the server is shutting down", {"Retry-After": "5"}) from None
        ticket.handed_over = True
        cf.add_done_callback(lambda _: ticket.close(force=True))  # freed when the work stops
        fut = asyncio.wrap_future(cf)
        try:
            while True:
                done, _ = await asyncio.wait({fut}, timeout=poll)
                if done:
                    try:
                        return fut.result()
                    except Cancelled:
                        raise ClientGone from None
                if await disconnected():
                    raise ClientGone
        except BaseException:
            # a queued job is dropped; a running one stops at its next tile
            job.cancelled.set()
            cf.cancel()
            raise

    def shutdown(self) -> None:
        """Stop taking jobs; queued ones are dropped, running ones finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
