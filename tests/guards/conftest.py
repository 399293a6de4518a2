"""Fixtures of the guard tests: no waiting, labels under ``tmp_path``, a fake Sendcloud that can pause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.guards.helpers import PausingSendcloud
from tests.pipeline.labels.fake import no_waiting


@pytest.fixture(autouse=True)
def _no_waiting(settings: Any, tmp_path: Path) -> None:
    """The guards do not depend on waiting (see ``no_waiting``)."""
    no_waiting(settings, tmp_path)


@pytest.fixture
def fake() -> Iterator[PausingSendcloud]:
    with responses.mock:
        fake = PausingSendcloud()
        fake.install()
        yield fake
