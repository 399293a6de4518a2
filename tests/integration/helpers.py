"""Small helpers shared by the integration tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from sendcloud_integration.models import TERMINAL_STATES, OrderShipment, PushBatch
from tests.conftest import PUSH_URL
from tests.integration.conftest import Stack, wait_for


def push(stack: Stack, token: str, order_ids: list[int], *, create_label: bool = False) -> dict[str, Any]:
    response = requests.post(
        f"{stack.web_url}{PUSH_URL}",
        json={"create_label": create_label, "order_ids": order_ids},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def wait_until_finished(batch_id: str | uuid.UUID, *, timeout: float) -> PushBatch:
    """Wait for the batch to be finished (its totals stored) and every order terminal."""

    def finished() -> PushBatch | None:
        batch = PushBatch.objects.get(pk=batch_id)
        return batch if batch.is_finished else None

    batch: PushBatch = wait_for(finished, timeout=timeout, interval=0.5, what=f"batch {batch_id} to finish")
    assert_all_terminal(batch)
    return batch


def assert_all_terminal(batch: PushBatch) -> None:
    stuck = OrderShipment.objects.filter(batch=batch).exclude(state__in=TERMINAL_STATES)
    assert not stuck.exists(), list(stuck.values_list("order__order_number", "state"))


def stored_document(
    token: str, url: str, params: dict[str, str] | None = None, timeout: float = 60
) -> requests.Response:
    """The batch labels document once a worker stored it: 202s are retried after their ``Retry-After``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if answer.status_code != 202 or time.monotonic() > deadline:
            return answer
        time.sleep(min(float(answer.headers["Retry-After"]), 0.5))
