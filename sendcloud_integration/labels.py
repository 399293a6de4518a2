"""Label phase placeholder — replaced by the label pipeline (issue: shipping labels)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sendcloud_integration.processing import ChunkOutcome


def label_phase(**kwargs: Any) -> ChunkOutcome:
    from sendcloud_integration.processing import ChunkOutcome

    return ChunkOutcome()
