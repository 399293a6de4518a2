"""Sendcloud state: each shop's integration, each order's shipment, push batches and the API-call log.

PostgreSQL is the truth; Celery messages carry ids only. Every change of a shipment's state is a
conditional update (``UPDATE … WHERE state IN (<expected>)``, see ``OrderShipmentQuerySet.move``), so
a task that runs twice — a redelivered message, a re-dispatch by the sweep — changes nothing the
second time.
"""

from __future__ import annotations

import enum
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from webshop.models import ApiToken, CustomsExportType, CustomsShipmentType, Order, Shop
from wemasy.encryption import EncryptedTextField


class IntegrationProblem(enum.Enum):
    """Why a shop's integration cannot be used for Sendcloud calls (see :func:`integration_problem`)."""

    MISSING = "missing"
    INACTIVE = "inactive"
    NO_CREDENTIALS = "no_credentials"


def integration_problem(integration: SendcloudIntegration | None) -> IntegrationProblem | None:
    """The one answer to "is this integration usable, and if not why"; None when it is usable.

    Every caller (the push, the chunk worker, the sweep's reconciliation) words the reason for its own
    reader, but they all decide with this function.
    """
    if integration is None:
        return IntegrationProblem.MISSING
    if not integration.is_active:
        return IntegrationProblem.INACTIVE
    if not integration.has_credentials:
        return IntegrationProblem.NO_CREDENTIALS
    return None


def new_webhook_token() -> str:
    """The random part of an integration's webhook URL: unguessable, and it names no shop."""
    return secrets.token_urlsafe(24)


class SendcloudIntegration(models.Model):
    """A shop's Sendcloud account and defaults. The secret key is write-only: never shown back."""

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="sendcloud_integration")
    public_key = models.CharField(max_length=200)
    #: Encrypted at rest with FIELD_ENCRYPTION_KEYS (wemasy/encryption.py); read and written as plain text.
    secret_key = EncryptedTextField(max_length=200)
    integration_id = models.PositiveBigIntegerField(help_text="The Sendcloud shop integration id.")
    sender_address_id = models.PositiveBigIntegerField(null=True, blank=True)
    shipping_option_code = models.CharField(max_length=100, blank=True, help_text="e.g. postnl:standard")
    is_active = models.BooleanField(default=True)
    is_connected = models.BooleanField(
        default=True, help_text="Cleared when Sendcloud refuses the credentials (401/403)."
    )
    connection_error = models.TextField(blank=True)
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    #: When the shipping-method catalogue was last read from Sendcloud in full (None: never, or keys changed).
    shipping_options_synced_at = models.DateTimeField(null=True, blank=True)
    #: The destination countries that sync asked Sendcloud about: only for these can a country be refused locally.
    shipping_options_countries = models.JSONField(default=list, blank=True)
    # --- customs defaults, for orders that leave the EU customs and VAT area and do not say ----------------
    customs_shipment_type = models.CharField(
        max_length=32,
        choices=CustomsShipmentType.choices,
        default=CustomsShipmentType.COMMERCIAL_GOODS,
        help_text="Why goods are sent, unless the order says.",
    )
    customs_export_type = models.CharField(
        max_length=32,
        choices=CustomsExportType.choices,
        default=CustomsExportType.COMMERCIAL_B2C,
        help_text="Private, B2C or B2B export, unless the order says.",
    )
    sender_eori_number = models.CharField(
        max_length=32, blank=True, help_text="The shop's EORI number (needed for commercial exports)."
    )
    sender_vat_number = models.CharField(max_length=32, blank=True, help_text="The shop's VAT number.")
    #: The webhook receiver's URL is ``/webhooks/sendcloud/<webhook_token>`` (see ``tracking/webhooks.py``).
    webhook_token = models.CharField(max_length=64, unique=True, default=new_webhook_token, editable=False)
    #: Sendcloud signs webhooks with the integration's secret key, or with a separate "Webhook Signature
    #: Key" for some integration types: set it here only then (encrypted at rest, write-only).
    webhook_signature_key = EncryptedTextField(max_length=200, blank=True)
    #: What Sendcloud last confirmed for the integration's webhook (``PATCH /v3/integrations/{id}``).
    webhook_active = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_configured_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Sendcloud for {self.shop} (integration {self.integration_id})"

    def __repr__(self) -> str:  # never let the secret slip into a log through repr()
        return f"<SendcloudIntegration shop={self.shop_id} integration={self.integration_id}>"

    @property
    def has_credentials(self) -> bool:
        return bool(self.public_key and self.secret_key and self.integration_id)

    @property
    def masked_secret(self) -> str:
        return "•" * 8 if self.secret_key else ""

    def mark_disconnected(self, error: str) -> None:
        """Sendcloud refused the credentials (401/403): record it; pushes are blocked until they change."""
        now = timezone.now()
        SendcloudIntegration.objects.filter(pk=self.pk).update(
            is_connected=False, connection_error=error[:2000], connection_checked_at=now
        )
        self.is_connected, self.connection_error, self.connection_checked_at = False, error[:2000], now

    def mark_connected(self, *, only_if_changed: bool = False) -> None:
        """Sendcloud accepted the credentials. ``only_if_changed`` skips the write when already connected."""
        if only_if_changed and self.is_connected:
            return
        now = timezone.now()
        SendcloudIntegration.objects.filter(pk=self.pk).update(
            is_connected=True, connection_error="", connection_checked_at=now
        )
        self.is_connected, self.connection_error, self.connection_checked_at = True, "", now


class ShippingOption(models.Model):
    """One Sendcloud shipping option of an integration's account, with the local id wemasy clients use.

    Sendcloud v3 names options by code (``postnl:standard``); the original API's clients send an integer
    ``shipping_method_id``. The id of this row is that integer: stable, because a sync updates rows by
    code and never deletes one (an option Sendcloud stops offering is marked unavailable instead).
    """

    integration = models.ForeignKey(SendcloudIntegration, on_delete=models.CASCADE, related_name="shipping_options")
    code = models.CharField(max_length=200)
    name = models.CharField(max_length=300, blank=True)
    carrier_code = models.CharField(max_length=100, blank=True)
    carrier_name = models.CharField(max_length=200, blank=True)
    min_weight_kg = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    max_weight_kg = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    #: Destination countries (ISO 3166-1 alpha-2) it was offered for, among those the sync asked about.
    countries = models.JSONField(default=list, blank=True)
    multicollo = models.BooleanField(default=False, help_text="Can ship one order in several parcels.")
    #: Delivers to a service point rather than to the address (Sendcloud's ``functionalities.last_mile``).
    service_point = models.BooleanField(default=False, help_text="Delivers to a service point the customer chose.")
    is_available = models.BooleanField(default=True, help_text="Cleared when Sendcloud no longer offers it.")
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("carrier_code", "code")
        constraints = [
            models.UniqueConstraint(fields=("integration", "code"), name="shipping_option_code_unique_per_integration")
        ]

    def __str__(self) -> str:
        return f"{self.name or self.code} ({self.code})"

    def serves(self, country: str) -> bool:
        return country.upper() in self.countries

    def takes(self, weight_kg: Any) -> bool:
        """Whether a parcel of this weight is within the option's weight range (an open end takes anything)."""
        if self.min_weight_kg is not None and weight_kg < self.min_weight_kg:
            return False
        return not (self.max_weight_kg is not None and weight_kg > self.max_weight_kg)


class ShipmentState(models.TextChoices):
    QUEUED = "queued", "Queued"
    PUSHING = "pushing", "Pushing"
    PUSHED = "pushed", "Pushed"
    LABEL_QUEUED = "label_queued", "Label queued"
    LABELLING = "labelling", "Labelling"
    LABELLED = "labelled", "Labelled"
    FAILED = "failed", "Failed"
    CANCEL_REQUESTED = "cancel_requested", "Cancellation requested"
    CANCELLED = "cancelled", "Cancelled"


class Phase(models.TextChoices):
    PUSH = "push", "Push"
    LABEL = "label", "Label"


#: The state machine of docs/architecture.md. ``move`` refuses anything not listed here.
TRANSITIONS: dict[str, frozenset[str]] = {
    ShipmentState.QUEUED: frozenset({ShipmentState.PUSHING, ShipmentState.LABEL_QUEUED, ShipmentState.FAILED}),
    ShipmentState.PUSHING: frozenset({ShipmentState.PUSHED, ShipmentState.FAILED, ShipmentState.QUEUED}),
    ShipmentState.PUSHED: frozenset({ShipmentState.LABEL_QUEUED, ShipmentState.QUEUED, ShipmentState.FAILED}),
    ShipmentState.LABEL_QUEUED: frozenset({ShipmentState.LABELLING, ShipmentState.FAILED}),
    ShipmentState.LABELLING: frozenset({ShipmentState.LABELLED, ShipmentState.FAILED, ShipmentState.LABEL_QUEUED}),
    ShipmentState.LABELLED: frozenset({ShipmentState.CANCEL_REQUESTED, ShipmentState.CANCELLED}),
    ShipmentState.FAILED: frozenset({ShipmentState.QUEUED}),
    # Cancelling a label (tracking/cancel.py): Sendcloud cancels at once, queues the cancellation (confirmed
    # later by the parcel's status), or the parcel moves on and the label stays (back to LABELLED).
    ShipmentState.CANCEL_REQUESTED: frozenset({ShipmentState.CANCELLED, ShipmentState.LABELLED}),
    # Only a staff or API re-push with create_label leaves CANCELLED (classified as a retry).
    ShipmentState.CANCELLED: frozenset({ShipmentState.QUEUED}),
}

#: States in which a shipment belongs to a running batch.
IN_FLIGHT_STATES = frozenset(
    {ShipmentState.QUEUED, ShipmentState.PUSHING, ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING}
)
TERMINAL_STATES = frozenset(
    {
        ShipmentState.PUSHED,
        ShipmentState.LABELLED,
        ShipmentState.FAILED,
        ShipmentState.CANCEL_REQUESTED,
        ShipmentState.CANCELLED,
    }
)
#: States in which a label exists (or existed) and may be asked to be cancelled.
CANCELLABLE_STATES = frozenset({ShipmentState.LABELLED, ShipmentState.CANCEL_REQUESTED})


def holds_label(*, labelled_at: datetime | None, cancelled_at: datetime | None) -> bool:
    """Whether an order's last label still exists: it was made, and not cancelled since.

    The row's state says so too, but this survives a re-push: a labelled order whose re-push failed is
    still labelled (never a second label), while a cancelled one that failed again may be pushed again.
    """
    return labelled_at is not None and (cancelled_at is None or cancelled_at < labelled_at)


class IllegalTransition(ValueError):
    pass


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"


FINISHED_BATCH_STATUSES = frozenset({BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED})


class StartedBy(models.TextChoices):
    API_TOKEN = "api_token", "API token"
    STAFF = "staff", "Staff user"
    COMMAND = "command", "Management command"


class PushBatch(models.Model):
    """One push request's worth of work, split into chunks of at most ``SENDCLOUD_CHUNK_SIZE`` orders."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="push_batches")
    create_label = models.BooleanField(default=False)
    status = models.CharField(max_length=32, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    started_by_kind = models.CharField(max_length=16, choices=StartedBy.choices)
    started_by_token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL)
    started_by_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_by_label = models.CharField(max_length=200, blank=True, help_text="Who, in words, for people.")
    requested_orders = models.PositiveIntegerField(default=0)
    new_orders = models.PositiveIntegerField(default=0)
    retry_orders = models.PositiveIntegerField(default=0)
    skipped_orders = models.PositiveIntegerField(default=0)
    queued_orders = models.PositiveIntegerField(default=0)
    total_chunks = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    pushed_count = models.PositiveIntegerField(default=0)
    labelled_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "push batches"
        indexes = [models.Index(fields=("shop", "-created_at")), models.Index(fields=("status",))]

    def __str__(self) -> str:
        return f"Batch {self.id} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_BATCH_STATUSES


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class PushChunk(models.Model):
    """A slice of a batch handled by one ``process_chunk`` task. Numbered from 1 within its batch."""

    batch = models.ForeignKey(PushBatch, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Transient failures retried so far.")
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last took it.")
    #: When the account's release window let it go to the broker (None: still waiting its turn).
    released_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was sent to the workers (None: waiting for its account's turn)."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("batch", "number")
        constraints = [models.UniqueConstraint(fields=("batch", "number"), name="chunk_number_unique_per_batch")]

    def __str__(self) -> str:
        return f"Chunk {self.number}/{self.batch.total_chunks} of {self.batch_id}"


class OrderShipmentQuerySet(models.QuerySet["OrderShipment"]):
    def move(self, *, source: Iterable[str], target: str, **fields: Any) -> int:
        """Conditionally move the rows in one of ``source`` states to ``target``; returns rows changed.

        This is the only way state changes after a row was queued: the ``WHERE state IN (…)`` makes a
        duplicate task harmless, and the check against ``TRANSITIONS`` keeps the state machine honest.
        """
        source = frozenset(source)
        for state in source:
            if target not in TRANSITIONS[state]:
                raise IllegalTransition(f"{state} → {target} is not an allowed shipment transition")
        now = timezone.now()
        return self.filter(state__in=source).update(state=target, state_changed_at=now, updated_at=now, **fields)


class OrderShipment(models.Model):
    """Where one order stands with Sendcloud. Created when the order is first queued."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="shipment")
    # No single-column indexes on shop and batch (the composite indexes below lead with them) and a plain
    # one on state (no LIKE index): every index is written for each of a push's rows (docs/benchmarks.md).
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="shipments", db_index=False)
    state = models.CharField(max_length=16, choices=ShipmentState.choices)
    failed_phase = models.CharField(max_length=8, choices=Phase.choices, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times it was sent to Sendcloud.")
    batch = models.ForeignKey(
        PushBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="shipments", db_index=False
    )
    chunk_number = models.PositiveIntegerField(null=True, blank=True)
    create_label = models.BooleanField(default=False)
    sendcloud_order_id = models.CharField(max_length=64, blank=True)
    sendcloud_shipment_id = models.CharField(max_length=64, blank=True)
    sendcloud_parcel_id = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    carrier = models.CharField(max_length=100, blank=True)
    label_file = models.FileField(upload_to="labels/%Y/%m/", blank=True)
    customs_declaration = models.FileField(
        upload_to="customs/%Y/%m/",
        blank=True,
        help_text="The carrier's customs declaration (PDF), for a parcel leaving the EU customs union.",
    )
    label_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="Set before a label is asked for: guards against a second label."
    )
    service_point_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When Sendcloud last said the order's service point takes parcels."
    )
    service_point_checked_id = models.CharField(
        max_length=64, blank=True, help_text="The service point that check was for (Sendcloud's id)."
    )
    pushed_at = models.DateTimeField(null=True, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    #: Sendcloud's own words about the last cancellation (accepted, queued or refused), shown as they are.
    cancel_message = models.TextField(blank=True)
    #: The shipment's link in Sendcloud's return portal, once read (``GET /v3/shipments/{id}/return-portal-url``).
    return_portal_url = models.URLField(max_length=500, blank=True)
    return_portal_checked_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrderShipmentQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=("batch", "chunk_number", "state")),
            models.Index(fields=("shop", "state")),
            models.Index(fields=("state",), name="ordershipment_state_idx"),  # the sweep's stale-row scan
        ]
        # Re-pushing sends orders to a carrier (and may buy labels): a staff power of its own, not
        # implied by being able to edit orders.
        permissions = [("repush_ordershipment", "Can re-push orders to Sendcloud")]

    def __str__(self) -> str:
        return f"Shipment of order {self.order_id}: {self.state}"


class ShipmentParcel(models.Model):
    """One parcel (one label) of a labelled shipment: an order in three boxes has three."""

    shipment = models.ForeignKey(OrderShipment, on_delete=models.CASCADE, related_name="parcels")
    position = models.PositiveIntegerField(help_text="1 for the first parcel of the shipment.")
    sendcloud_parcel_id = models.CharField(max_length=64)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    label_file = models.FileField(upload_to="labels/%Y/%m/", blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # -- tracking (tracking/events.py is the one writer): Sendcloud's current status of the parcel --------
    #: Sendcloud's status id (webhooks: 1000 ready to send, 11 delivered, …); None when only a code is known.
    status_id = models.IntegerField(null=True, blank=True)
    #: The v3 status code (``READY_TO_SEND``, ``DELIVERED``, …) when known.
    status_code = models.CharField(max_length=64, blank=True)
    status_message = models.CharField(max_length=300, blank=True)
    #: When the applied status happened (Sendcloud's timestamp): an older event is recorded, never applied.
    status_changed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    exception_at = models.DateTimeField(
        null=True, blank=True, help_text="The last time the carrier reported a problem."
    )
    #: When the polling fallback reads this parcel next (None: delivered, cancelled, or never to be polled).
    next_poll_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("shipment", "position")
        constraints = [models.UniqueConstraint(fields=("shipment", "position"), name="parcel_position_unique")]
        indexes = [models.Index(fields=("sendcloud_parcel_id",)), models.Index(fields=("next_poll_at",))]

    def __str__(self) -> str:
        return f"Parcel {self.position} ({self.sendcloud_parcel_id}) of shipment {self.shipment_id}"


class SendcloudApiCall(models.Model):
    """One HTTP call to Sendcloud: what staff read to see what Sendcloud answered. Never credentials."""

    shop = models.ForeignKey(Shop, null=True, on_delete=models.CASCADE, related_name="sendcloud_calls")
    batch = models.ForeignKey(PushBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_calls")
    chunk_number = models.PositiveIntegerField(null=True, blank=True)
    orders = models.ManyToManyField(Order, blank=True, related_name="sendcloud_calls")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty when no answer came.")
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="An excerpt of the error, when there was one.")
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "Sendcloud API call"

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status_code or 'no answer'}"


# --- printing: printer profiles, labels per format, batch documents (sendcloud_integration/printing/) -----------


class LabelFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    ZPL = "zpl", "ZPL (thermal printers)"
    PNG = "png", "PNG images (a zip)"


class PaperSize(models.TextChoices):
    A6 = "A6", "A6 (a label's own size, 4x6 in printers)"
    A5 = "A5", "A5"
    A4 = "A4", "A4 sheets"


class PrintSort(models.TextChoices):
    ORDER_NUMBER = "order_number", "Order number"
    CARRIER = "carrier", "Carrier, then order number"
    FIRST_SKU = "first_sku", "First SKU (pick order), then order number"


class PrinterProfile(models.Model):
    """How a shop's warehouse prints: the default of every batch document (``printing/profiles.py``).

    ``dpi`` empty means the format's own default (PDF 72, PNG 300; ZPL's is the carrier's). ZPL ignores the
    paper size: a ZPL label is the carrier's, for a 4x6 in thermal printer.
    """

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="printer_profile")
    label_format = models.CharField(max_length=8, choices=LabelFormat.choices, default=LabelFormat.PDF)
    paper_size = models.CharField(max_length=4, choices=PaperSize.choices, default=PaperSize.A6)
    dpi = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: the format's default (PDF 72, PNG 300). PNG takes 150 or 300."
    )
    sort = models.CharField(max_length=16, choices=PrintSort.choices, default=PrintSort.ORDER_NUMBER)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Printer profile of {self.shop}"


class ParcelLabelFile(models.Model):
    """A parcel's label in a format other than the PDF A6 of ``ShipmentParcel.label_file``, fetched once.

    ``variant`` names format, paper size and resolution (``zpl``, ``pdf-A4``, ``png-A6-300``). A parcel's
    rows go with it: a new label (new parcel rows) means every other format is fetched again.
    """

    parcel = models.ForeignKey(ShipmentParcel, on_delete=models.CASCADE, related_name="label_files")
    variant = models.CharField(max_length=32)
    file = models.FileField(upload_to="labels/%Y/%m/", max_length=200)
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("parcel", "variant"), name="parcel_label_variant_unique")]

    def __str__(self) -> str:
        return f"{self.variant} label of parcel {self.parcel_id}"


class DocumentStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class BatchDocument(models.Model):
    """A batch's labels as one stored file in one variant and order, built once by a task (``printing/builder.py``).

    ``source_key`` fingerprints the labels it was built from: when a label of the batch changes, the
    next request finds the key changed and the document is built again. ``build_token`` names the build
    that may write the result; a newer request replaces it, and the older build's result is dropped.
    """

    batch = models.ForeignKey(PushBatch, on_delete=models.CASCADE, related_name="documents")
    variant = models.CharField(max_length=32)
    label_format = models.CharField(max_length=8, choices=LabelFormat.choices)
    paper_size = models.CharField(max_length=4, blank=True)
    dpi = models.PositiveSmallIntegerField()
    sort = models.CharField(max_length=16, choices=PrintSort.choices)
    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.BUILDING)
    source_key = models.CharField(max_length=64)
    build_token = models.UUIDField(default=uuid.uuid4)
    file = models.FileField(upload_to="documents/%Y/%m/", max_length=300, blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the stored file (the ETag).")
    size = models.PositiveBigIntegerField(default=0)
    labels_total = models.PositiveIntegerField(default=0)
    labels_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("batch", "variant", "sort")
        constraints = [
            models.UniqueConstraint(fields=("batch", "variant", "sort"), name="batch_document_unique_per_variant")
        ]

    def __str__(self) -> str:
        return f"{self.variant} labels of batch {self.batch_id} by {self.sort} ({self.status})"


# --- tracking: webhook deliveries and parcel events (sendcloud_integration/tracking/) -------------------------


class WebhookDelivery(models.Model):
    """One webhook request whose signature was valid, stored as received before it is answered.

    The row is the durable copy of the event: the receiver commits it, answers 200 and hands its id to a
    worker. A delivery whose message was lost (a broker outage, a worker killed) is picked up again by
    the sweep of ``tracking/webhooks.py`` while ``processed_at`` is empty.
    """

    integration = models.ForeignKey(SendcloudIntegration, on_delete=models.CASCADE, related_name="webhook_deliveries")
    body = models.BinaryField(help_text="The raw request body, byte for byte, as signed by Sendcloud.")
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    #: When its message was last handed to the broker; None when the broker did not take it, or when it
    #: waits for its parcel: the tracking sweep sends those (and any whose message is long overdue) again.
    queued_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    #: What applying it did, in words (applied, duplicate, older than the current status, unknown parcel, …).
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-received_at",)
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=("received_at",), name="webhook_delivery_pending", condition=models.Q(processed_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"Webhook delivery {self.pk} for integration {self.integration_id}"


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Polling"
    CANCEL = "cancel", "Cancel request"


class ParcelEvent(models.Model):
    """One thing Sendcloud said about a parcel (a status, a return), once: the parcel's history.

    ``dedup_key`` identifies the event itself (parcel, kind, Sendcloud's timestamp, status), so a webhook
    delivered twice, or a poll that reads what a webhook already said, adds no second row.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="parcel_events")
    shipment = models.ForeignKey(
        OrderShipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="parcel_events"
    )
    delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=8, choices=EventSource.choices)
    action = models.CharField(max_length=64, help_text="Sendcloud's action: parcel_status_changed, return_created.")
    sendcloud_parcel_id = models.CharField(max_length=64, blank=True)
    status_id = models.IntegerField(null=True, blank=True)
    status_code = models.CharField(max_length=64, blank=True)
    status_message = models.CharField(max_length=300, blank=True)
    timestamp = models.FloatField(help_text="Sendcloud's timestamp of the event, as sent.")
    occurred_at = models.DateTimeField()
    #: Whether it moved the parcel's current status (False: older than the status already applied).
    applied = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True, help_text="Details worth keeping (a return's id and reason).")
    dedup_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("occurred_at", "id")
        constraints = [models.UniqueConstraint(fields=("shop", "dedup_key"), name="parcel_event_once")]
        indexes = [models.Index(fields=("shipment", "occurred_at"))]

    def __str__(self) -> str:
        return f"{self.action} {self.status_message or self.status_code} for parcel {self.sendcloud_parcel_id}"
