"""Helpers for driving the operator commands in-process, the way ``manage.py`` would."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLE_ORDERS = FIXTURES / "orders_sample.json"


@dataclass(frozen=True)
class Output:
    stdout: str
    stderr: str


def run(name: str, *args: Any, **options: Any) -> Output:
    """``call_command`` with captured stdout and stderr; a ``CommandError`` propagates."""
    stdout, stderr = StringIO(), StringIO()
    call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return Output(stdout=stdout.getvalue(), stderr=stderr.getvalue())


@pytest.fixture
def sample_items() -> list[dict[str, Any]]:
    """The sample import file, parsed: a fresh copy each test may change."""
    return copy.deepcopy(json.loads(SAMPLE_ORDERS.read_text(encoding="utf-8")))
