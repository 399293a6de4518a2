"""The ``202`` body of the batch labels endpoint while its document is on its way (see ``printing.documents``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from sendcloud_integration.printing.documents import DocumentState


class DocumentPendingSerializer(serializers.Serializer):
    """The progress of a document on its way: what is built, how far, and when to ask again."""

    status = serializers.ChoiceField(choices=["building", "waiting_for_labels"])
    format = serializers.CharField()
    paper_size = serializers.CharField(help_text='"" for ZPL.')
    dpi = serializers.IntegerField()
    sort = serializers.CharField()
    labels_done = serializers.IntegerField()
    labels_total = serializers.IntegerField()
    percentage = serializers.IntegerField()
    retry_after = serializers.IntegerField(help_text="The same seconds as the Retry-After header.")
    problem = serializers.CharField(
        help_text='Why the last try did not make it (Sendcloud down, say): it is tried again by itself. "" for none.'
    )


def pending_body(state: DocumentState) -> dict[str, Any]:
    document = state.document
    return {
        "status": str(state.availability),
        "format": state.spec.label_format,
        "paper_size": state.spec.paper_size,
        "dpi": state.spec.dpi,
        "sort": state.spec.sort,
        "labels_done": document.labels_done if document else 0,
        "labels_total": document.labels_total if document else 0,
        "percentage": state.percentage,
        "retry_after": state.retry_after,
        "problem": document.error if document else "",
    }
