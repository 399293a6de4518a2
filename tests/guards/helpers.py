"""Helpers of the guard tests: queueing a batch, running its chunk to the end, and a Sendcloud that can pause.

Races are made real, not simulated: two workers run ``process_chunk`` in two threads, each with its own
database connection, and the fake Sendcloud holds one worker inside an HTTP call (``Pause``) until the
other has done what the test is about. The interleaving is then the same every run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from django.db import connection

from sendcloud_integration.models import OrderShipment, PushBatch
from sendcloud_integration.pipeline import process as processing
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud.payloads import sendcloud_order_id
from tests.pipeline.labels.fake import Answer, FakeSendcloud
from webshop.models import Order, Shop

#: How long a paused call or a waiting test waits at most before the test fails (never hangs CI).
WAIT = 30.0


def queue(shop: Shop, orders: list[Order], *, create_label: bool, chunk_size: int | None = None) -> PushBatch:
    result = services.push_orders(
        shop=shop,
        order_ids=[o.pk for o in orders],
        create_label=create_label,
        actor=services.Actor.command("guard test"),
        chunk_size=chunk_size,
    )
    assert result.batch_id is not None
    return PushBatch.objects.get(pk=result.batch_id)


def run_chunk(batch: PushBatch, number: int = 1, *, limit: int = 30) -> list[processing.ChunkOutcome]:
    """Run the chunk task until it stops handing the chunk back, as Celery's re-schedules would."""
    outcomes = []
    for _ in range(limit):
        outcome = processing.process_chunk(batch_id=batch.pk, chunk_number=number)
        outcomes.append(outcome)
        if outcome.retry_in is None:
            return outcomes
    raise AssertionError(f"chunk still handed back after {limit} runs: {outcomes[-3:]}")


def oid(order: Order) -> str:
    return sendcloud_order_id(order)


def shipment(order: Order) -> OrderShipment:
    return OrderShipment.objects.get(order=order)


@dataclass
class Pause:
    """Holds the n-th call of an endpoint until ``release()``; ``reached`` is set when it arrives.

    ``answer`` replaces the fake's own answer for that call (e.g. a 429); None lets the fake answer.
    """

    call: int
    answer: Answer | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()

    def wait_reached(self) -> None:
        assert self.reached.wait(WAIT), f"call {self.call} never came"


class PausingSendcloud(FakeSendcloud):
    """The fake Sendcloud of the label tests, whose label requests and shipment reads can be held."""

    def __init__(self) -> None:
        super().__init__()
        self.label_pauses: dict[int, Pause] = {}
        self.read_pauses: dict[int, Pause] = {}
        self.push_pauses: dict[int, Pause] = {}
        self._counts = {"labels": 0, "reads": 0, "pushes": 0}
        self._lock = threading.Lock()

    def _held(self, kind: str, pauses: dict[int, Pause], answer: Callable[[], Answer]) -> Answer:
        with self._lock:
            self._counts[kind] += 1
            pause = pauses.get(self._counts[kind])
        if pause is None:
            with self._lock:
                return answer()
        pause.reached.set()
        assert pause.released.wait(WAIT), f"{kind} call {pause.call} was never released"
        if pause.answer is not None:
            return pause.answer
        with self._lock:
            return answer()

    def _labels(self, request: requests.PreparedRequest) -> Answer:
        return self._held("labels", self.label_pauses, lambda: super(PausingSendcloud, self)._labels(request))

    def _get_shipment(self, request: requests.PreparedRequest) -> Answer:
        return self._held("reads", self.read_pauses, lambda: super(PausingSendcloud, self)._get_shipment(request))

    def _push(self, request: requests.PreparedRequest) -> Answer:
        return self._held("pushes", self.push_pauses, lambda: super(PausingSendcloud, self)._push(request))

    def received(self, kind: str) -> int:
        """Calls that reached the fake so far, paused ones included: "labels", "reads" or "pushes"."""
        with self._lock:
            return self._counts[kind]

    def pause_label_request(self, call: int, answer: Answer | None = None) -> Pause:
        self.label_pauses[call] = Pause(call, answer)
        return self.label_pauses[call]

    def pause_shipment_read(self, call: int) -> Pause:
        self.read_pauses[call] = Pause(call)
        return self.read_pauses[call]

    def pause_push(self, call: int) -> Pause:
        self.push_pauses[call] = Pause(call)
        return self.push_pauses[call]


class Worker(threading.Thread):
    """A chunk worker in a thread of its own, with its own database connection (closed at the end)."""

    def __init__(self, batch: PushBatch, number: int = 1, *, before: Callable[[], Any] | None = None) -> None:
        super().__init__(daemon=True)
        self.batch, self.number, self.before = batch, number, before
        self.outcome: processing.ChunkOutcome | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.before is not None:
                self.before()
            self.outcome = processing.process_chunk(batch_id=self.batch.pk, chunk_number=self.number)
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()

    def finish(self) -> processing.ChunkOutcome:
        self.join(WAIT)
        assert not self.is_alive(), "the worker did not finish"
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


@contextmanager
def released_on_exit(*pauses: Pause) -> Iterator[None]:
    """Release every pause however the block ends, so a failing test never leaves a thread waiting."""
    try:
        yield
    finally:
        for pause in pauses:
            pause.release()
