"""Booted workers (Celery's, gunicorn's) freeze what their boot loaded: the garbage collector never scans it again."""

from __future__ import annotations

import gc

from celery.signals import worker_ready

import wemasy.celery  # noqa: F401 - connects the handler
from wemasy import gunicorn_conf


def test_worker_ready_moves_the_booted_objects_out_of_the_collectors_reach() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        worker_ready.send(sender=None)
        assert gc.get_freeze_count() > 10_000  # Django's, Celery's and the project's objects
        assert gc.get_threshold() == (700, 10, 10)  # Python's own: higher ones cost peak memory
    finally:
        gc.unfreeze()


def test_a_gunicorn_worker_freezes_once_it_has_loaded_the_application() -> None:
    gc.unfreeze()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
