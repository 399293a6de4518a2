"""Fixtures of the label tests: a fake Sendcloud, short delays, labels stored under ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.pipeline.labels.fake import FakeSendcloud


@pytest.fixture(autouse=True)
def _fast_labels(settings: Any, tmp_path: Path) -> None:
    """No waiting in tests: poll at once, trust a look-up at once, back off not at all."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SENDCLOUD_LABEL_POLL_SECONDS = 0
    settings.SENDCLOUD_LABEL_POLL_MAX_SECONDS = 0
    settings.SENDCLOUD_LABEL_LOOKUP_GRACE_SECONDS = 0
    settings.SENDCLOUD_RETRY_BASE_SECONDS = 0
    settings.SENDCLOUD_BUDGET_ENABLED = False


@pytest.fixture
def fake() -> Iterator[FakeSendcloud]:
    with responses.mock:
        yield FakeSendcloud().install()
