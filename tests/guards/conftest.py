"""Fixtures of the guard tests: no waiting, labels under ``tmp_path``, a fake Sendcloud that can pause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.guards.helpers import PausingSendcloud


@pytest.fixture(autouse=True)
def _no_waiting(settings: Any, tmp_path: Path) -> None:
    """Poll at once, trust a look-up at once, back off not at all (the guards do not depend on waiting)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SENDCLOUD_LABEL_POLL_SECONDS = 0
    settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS = 0
    settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS = 0
    settings.SENDCLOUD_RETRY_BASE_SECONDS = 0
    settings.SENDCLOUD_BUDGET_ENABLED = False


@pytest.fixture
def fake() -> Iterator[PausingSendcloud]:
    with responses.mock:
        fake = PausingSendcloud()
        fake.install()
        yield fake
