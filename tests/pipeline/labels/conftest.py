"""Fixtures of the label tests: a fake Sendcloud, short delays, labels stored under ``tmp_path``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.pipeline.labels.fake import FakeSendcloud, no_waiting


@pytest.fixture(autouse=True)
def _fast_labels(settings: Any, tmp_path: Path) -> None:
    """No waiting in tests (see ``no_waiting``)."""
    no_waiting(settings, tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeSendcloud]:
    with responses.mock:
        yield FakeSendcloud().install()
