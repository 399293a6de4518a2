"""Publishing from a request: one kept broker connection per thread, a fresh one after a Redis restart, and
never a wait for a broker that is down (a Redis of the test's own, never the shared one)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import redis
from celery import current_app

from sendcloud_integration.pipeline import dispatch
from tests.redis_server import RedisServer


@pytest.fixture
def broker(own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    monkeypatch.setenv("CELERY_BROKER_URL", own_redis.url(1))
    dispatch._drop_kept_connection()
    yield own_redis
    dispatch._drop_kept_connection()


def queued(server: RedisServer) -> int:
    return int(redis.Redis.from_url(server.url(1)).llen("celery"))


def test_a_thread_keeps_one_connection_for_its_messages(broker: RedisServer) -> None:
    assert dispatch.start_batch(uuid.uuid4()) is True  # connects
    with mock.patch.object(current_app, "connection_for_write", wraps=current_app.connection_for_write) as opened:
        for _ in range(3):
            assert dispatch.start_batch(uuid.uuid4()) is True
    assert opened.call_count == 0
    assert queued(broker) == 4


def test_a_restarted_redis_costs_no_message(broker: RedisServer) -> None:
    """The kept connection died with the old server: the message goes on a fresh one, not to the sweep."""
    assert dispatch.start_batch(uuid.uuid4()) is True
    broker.restart()

    assert dispatch.start_batch(uuid.uuid4()) is True
    assert queued(broker) == 1  # the restarted server came back empty, then took the new message


@pytest.mark.parametrize("state", ["killed", "hung"])
def test_a_broker_that_is_down_fails_the_publish_at_once(broker: RedisServer, state: str, settings: Any) -> None:
    assert dispatch.start_batch(uuid.uuid4()) is True  # a kept connection that is about to go bad
    broker.kill() if state == "killed" else broker.hang()

    started = time.monotonic()
    assert dispatch.start_batch(uuid.uuid4()) is False
    assert time.monotonic() - started < 6 * settings.REDIS_REQUEST_TIMEOUT  # two bounded attempts at most
