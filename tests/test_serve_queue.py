"""The request queue of ``w2v2 serve`` without a model: bounded admission, batches by decoder
settings with each answer going to its own request, and a failing batch failing only its requests."""

import threading

import numpy as np
import pytest

from w2v2.decode.transcriber import Transcript
from w2v2.serve.limits import RequestError
from w2v2.serve.worker import TranscriptionQueue


class Counting:
    """A stand-in transcriber: each waveform's length as its text; records the batches it saw."""

    def __init__(self, name: str, batches: list, started: threading.Event, gate: threading.Event) -> None:
        self.name, self.batches, self.started, self.gate = name, batches, started, gate

    def transcribe(self, waves):
        self.started.set()
        self.gate.wait(10)
        self.batches.append((self.name, [len(w) for w in waves]))
        return [Transcript(f"{self.name}:{len(w)}", []) for w in waves]


def test_bound_batches_and_answers():
    batches, started, gate = [], threading.Event(), threading.Event()
    queue = TranscriptionQueue(lambda s: Counting(s["decoder"], batches, started, gate), max_pending=4, max_batch=3)
    queue.start()
    try:
        tickets = [queue.admit() for _ in range(4)]
        with pytest.raises(RequestError) as busy:
            queue.admit()
        assert busy.value.status == 503 and int(busy.value.headers["Retry-After"]) >= 1
        first = queue.submit(np.zeros(1), {"decoder": "greedy"}, tickets[0])
        assert started.wait(10)  # taken alone; held at the gate while the others queue
        rest = [queue.submit(np.zeros(n), {"decoder": d}, t)
                for (n, d), t in zip([(2, "greedy"), (3, "ngram"), (4, "greedy")], tickets[1:])]
        gate.set()
        results = [f.result(10) for f in [first, *rest]]
    finally:
        queue.stop()
    assert [r.transcript.text for r in results] == ["greedy:1", "greedy:2", "ngram:3", "greedy:4"]
    assert batches == [("greedy", [1]), ("greedy", [2, 4]), ("ngram", [3])]  # one batch taken, by settings
    assert [r.batch_size for r in results] == [1, 2, 1, 2]
    assert queue.pending == 0  # every place given back when its job was done


def test_a_failing_batch_fails_its_requests_and_gives_the_places_back():
    def broken(settings):
        raise RuntimeError("out of memory")

    queue = TranscriptionQueue(broken, max_pending=2, max_batch=2)
    queue.start()
    try:
        future = queue.submit(np.zeros(5), {"decoder": "greedy"}, queue.admit())
        with pytest.raises(RequestError) as failed:
            future.result(10)
        assert failed.value.status == 500 and "inference failed: RuntimeError: out of memory" in failed.value.message
        assert queue.pending == 0
        ticket = queue.admit()
        ticket.drop()  # a request that ends before queueing gives its place back
        assert queue.pending == 0
    finally:
        queue.stop()
