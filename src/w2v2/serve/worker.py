"""The bounded request queue and the inference thread.

Admission: a request takes a :class:`Ticket` when it arrives, before its body is read; at most
``max_pending`` tickets are out (requests uploading, decoding, queued or running), so memory is
bounded by the limits whatever the load. Past the bound the request gets 503 with a Retry-After
estimate. The ticket is returned when the request's job is done (or when it fails before
reaching the queue), not when the client goes away, so a disconnected client's queued job still
counts.

Inference: one thread takes up to ``max_batch`` queued jobs at a time and runs those with the same
decoder settings through :meth:`Transcriber.transcribe` together (one padded, length-sorted model
pass: a file's output does not depend on its batch, see :mod:`w2v2.decode.inference`). The event
loop only waits on the jobs' futures.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..decode.transcriber import Transcript, Transcriber
from .decoding import settings_key
from .limits import RequestError

log = logging.getLogger(__name__)


@dataclass
class Result:
    transcript: Transcript
    queue_seconds: float  # submitted -> its batch started
    decode_seconds: float  # its batch's model pass and search
    batch_size: int  # requests in that batch


@dataclass
class Job:
    wave: np.ndarray
    settings: dict
    ticket: "Ticket"
    submitted: float = field(default_factory=time.perf_counter)
    future: Future = field(default_factory=Future)


class Ticket:
    """One admitted request's place; :meth:`release` is idempotent. Once its job is queued the
    job holds it (released when the job is done) and :meth:`drop` leaves it alone."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release, self._done, self.queued = release, False, False

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._release()

    def drop(self) -> None:
        """What a request does when it ends: give the place back unless its job holds it."""
        if not self.queued:
            self.release()


class TranscriptionQueue:
    def __init__(self, transcriber_for: Callable[[dict], Transcriber], max_pending: int, max_batch: int) -> None:
        self.transcriber_for, self.max_pending, self.max_batch = transcriber_for, max_pending, max_batch
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()
        self._pending = 0
        self._seconds_per_job = 1.0  # running mean of batch time / batch size, for Retry-After
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="w2v2-serve-inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()

    @property
    def pending(self) -> int:
        return self._pending

    def admit(self) -> Ticket:
        """A place for one request, or 503 (with Retry-After) when ``max_pending`` are out."""
        with self._cond:
            if self._pending >= self.max_pending:
                raise RequestError(503, f"busy: {self._pending} requests are being served (at most "
                                        f"{self.max_pending}, --max-pending); retry later",
                                   {"Retry-After": str(self.retry_after())})
            self._pending += 1
        return Ticket(self._release)

    def _release(self) -> None:
        with self._cond:
            self._pending -= 1

    def retry_after(self) -> int:
        """Seconds until the requests out now are likely done (at least 1)."""
        batches = math.ceil(max(self._pending, 1) / self.max_batch)
        return max(1, math.ceil(batches * self.max_batch * self._seconds_per_job))

    def submit(self, wave: np.ndarray, settings: dict, ticket: Ticket) -> Future:
        """Queue one waveform; the future gets a :class:`Result`, and the ticket is released then."""
        job = Job(wave, settings, ticket)
        job.future.add_done_callback(lambda _: ticket.release())
        with self._cond:
            if self._stopped:
                raise RequestError(503, "the service is shutting down")
            self._jobs.append(job)
            ticket.queued = True
            self._cond.notify()
        return job.future

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._jobs and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            return [self._jobs.popleft() for _ in range(min(self.max_batch, len(self._jobs)))]

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            groups: dict[str, list[Job]] = {}
            for job in jobs:
                groups.setdefault(settings_key(job.settings), []).append(job)
            for group in groups.values():
                self._run_batch(group)
        for job in self._jobs:  # stopped: nothing queued is left waiting
            job.future.set_exception(RequestError(503, "the service is shutting down"))

    def _run_batch(self, jobs: list[Job]) -> None:
        start = time.perf_counter()
        try:
            transcripts = self.transcriber_for(jobs[0].settings).transcribe([j.wave for j in jobs])
        except Exception as e:  # noqa: BLE001 - a failed batch fails its requests, not the service
            log.exception("inference failed on a batch of %d", len(jobs))
            for job in jobs:
                job.future.set_exception(RequestError(500, f"inference failed: {type(e).__name__}: {e}"))
            return
        seconds = time.perf_counter() - start
        self._seconds_per_job = 0.8 * self._seconds_per_job + 0.2 * seconds / len(jobs)
        for job, transcript in zip(jobs, transcripts):
            job.future.set_result(Result(transcript, start - job.submitted, seconds, len(jobs)))
