"""The shop domain: tenants, their API tokens, and their orders."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from django.db import models
from django.utils import timezone


class Shop(models.Model):
    """A tenant of the platform. Every order, token, batch and integration belongs to one shop."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True, help_text="A disabled shop's tokens are refused (403).")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.name or self.slug


class Scope(models.TextChoices):
    SHIPMENTS_PUSH = "shipments:push", "Push shipments to Sendcloud"
    INTEGRATIONS_READ = "integrations:read", "Read the Sendcloud integration and its shipping methods"
    INTEGRATIONS_MANAGE = "integrations:manage", "Change the Sendcloud integration's credentials"


#: A scope that carries others with it: whoever may manage the integration may also read it.
IMPLIED_SCOPES: dict[str, frozenset[str]] = {
    Scope.INTEGRATIONS_MANAGE: frozenset({Scope.INTEGRATIONS_READ}),
}


TOKEN_PREFIX_LENGTH = 8


def hash_token(raw: str) -> str:
    """SHA-256 of the raw token. Tokens carry 256 bits of randomness, so a fast hash is enough."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: the raw value exists only here, never in the database."""

    token: ApiToken
    raw: str


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A shop's API credential. Only a hash is stored; ``prefix`` finds the row without scanning."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text='For example ["shipments:push"].')
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_scope(self, scope: str) -> bool:
        held = self.scopes or []
        return scope in held or any(scope in IMPLIED_SCOPES.get(granted, ()) for granted in held)

    def matches(self, raw: str) -> bool:
        return hmac.compare_digest(self.token_hash, hash_token(raw))

    @classmethod
    def issue(cls, *, shop: Shop, name: str = "", scopes: list[str] | None = None) -> IssuedToken:
        """Create a token and return it with its raw value, which is shown once and then lost."""
        prefix = secrets.token_hex(TOKEN_PREFIX_LENGTH // 2)
        raw = f"wms_{prefix}_{secrets.token_urlsafe(32)}"
        token = cls.objects.create(
            shop=shop,
            name=name,
            prefix=prefix,
            token_hash=hash_token(raw),
            scopes=list(scopes if scopes is not None else [Scope.SHIPMENTS_PUSH]),
        )
        return IssuedToken(token=token, raw=raw)

    @staticmethod
    def prefix_of(raw: str) -> str | None:
        """The look-up prefix of a raw token, or None when it is not shaped like one of ours."""
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != "wms" or len(parts[1]) != TOKEN_PREFIX_LENGTH:
            return None
        return parts[1]


class CustomsShipmentType(models.TextChoices):
    """Why goods cross a customs border (the customs declaration's "nature of the goods")."""

    GIFT = "gift", "Gift"
    COMMERCIAL_GOODS = "commercial_goods", "Commercial goods"
    COMMERCIAL_SAMPLE = "commercial_sample", "Commercial sample"
    RETURNED_GOODS = "returned_goods", "Returned goods"


class CustomsExportType(models.TextChoices):
    """Who exports to whom: a private person, a business to consumers, a business to businesses."""

    PRIVATE = "private", "Private"
    COMMERCIAL_B2C = "commercial_b2c", "Commercial B2C"
    COMMERCIAL_B2B = "commercial_b2b", "Commercial B2B"


class Order(models.Model):
    """A webshop order, as imported from the platform."""

    class Type(models.TextChoices):
        CHECKOUT = "checkout", "Checkout"
        QUOTE = "quote", "Quote"

    class Status(models.TextChoices):
        ON_HOLD = "on_hold", "On hold"
        PAYMENT_RECEIVED = "payment_received", "Payment received"
        PAID = "paid", "Paid"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDING = "refunding", "Refunding"
        REFUNDED = "refunded", "Refunded"
        PENDING = "pending", "Pending"
        FAILED = "failed", "Failed"

    SHIPPABLE_STATUSES = frozenset({Status.PAID, Status.PAYMENT_RECEIVED, Status.COMPLETED})

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="orders")
    order_number = models.CharField(max_length=64)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.CHECKOUT)
    status = models.CharField(max_length=32, choices=Status.choices)
    payment_status = models.CharField(max_length=32, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True)
    customer_phone = models.CharField(max_length=40, blank=True)
    customer_company = models.CharField(max_length=200, blank=True)
    #: How the customer chose to have it shipped: a carrier service code such as ``postnl:standard``.
    shipping_option_code = models.CharField(
        max_length=200, blank=True, help_text="The shipping method chosen for this order; blank: the shop's default."
    )
    weight_kg = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="The order's weight in kg; blank: the sum of its lines (or of its parcels' weights).",
    )
    # --- delivery to a service point (a pickup point) instead of the address -------------------------------
    service_point_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="Sendcloud's id of the service point the customer chose; blank: delivered to the address.",
    )
    service_point_carrier_id = models.CharField(
        max_length=64, blank=True, help_text="The carrier's own id of that point, where the carrier needs it."
    )
    service_point_post_number = models.CharField(
        max_length=32, blank=True, help_text="The customer's post number, for a parcel locker (e.g. a Packstation)."
    )
    # --- customs, for a parcel leaving the EU customs and VAT area -------------------------------------------
    customs_invoice_number = models.CharField(max_length=64, blank=True, help_text="The commercial invoice's number.")
    customs_shipment_type = models.CharField(
        max_length=32,
        choices=CustomsShipmentType.choices,
        blank=True,
        help_text="Why the goods are sent; blank: the shop's default.",
    )
    customs_export_type = models.CharField(
        max_length=32,
        choices=CustomsExportType.choices,
        blank=True,
        help_text="Private, B2C or B2B export; blank: the shop's default.",
    )
    receiver_vat_number = models.CharField(max_length=32, blank=True, help_text="The receiver's VAT number.")
    receiver_eori_number = models.CharField(max_length=32, blank=True, help_text="The receiver's EORI number.")

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=("shop", "order_number"), name="order_number_unique_per_shop"),
        ]
        indexes = [models.Index(fields=("shop", "created_at"))]

    def __str__(self) -> str:
        return self.order_number

    @property
    def has_service_point(self) -> bool:
        return bool(self.service_point_id.strip() or self.service_point_carrier_id.strip())

    @property
    def total_amount(self) -> Decimal:
        return sum((line.total_price for line in self.lines.all()), Decimal("0"))

    def line_list(self) -> list[OrderLine]:
        """The order's lines: as loaded by :func:`load_lines_and_parcels` (no query), else read now."""
        loaded: list[OrderLine] | None = self.__dict__.get(LOADED_LINES)
        return loaded if loaded is not None else list(self.lines.all())

    def parcel_list(self) -> list[OrderParcel]:
        """The order's parcels: as loaded by :func:`load_lines_and_parcels` (no query), else read now."""
        loaded: list[OrderParcel] | None = self.__dict__.get(LOADED_PARCELS)
        return loaded if loaded is not None else list(self.parcels.all())


#: Where :func:`load_lines_and_parcels` leaves an order's lines and parcels (read by ``line_list``/``parcel_list``).
LOADED_LINES: Final = "loaded_lines"
LOADED_PARCELS: Final = "loaded_parcels"


def load_lines_and_parcels(orders: Iterable[Order]) -> None:
    """Read the lines and parcels of many orders in two queries, as plain lists on each order.

    What reading orders' shipping data needs (``Order.line_list``, ``Order.parcel_list``). Not
    ``prefetch_related``: that builds a related manager and a queryset per order and relation to hold
    them, which for a chunk of a hundred orders cost more CPU than its queries did (docs/benchmarks.md).
    """
    by_id = {order.pk: order for order in orders}
    if not by_id:
        return
    lines: dict[int, list[OrderLine]] = {pk: [] for pk in by_id}
    parcels: dict[int, list[OrderParcel]] = {pk: [] for pk in by_id}
    for line in OrderLine.objects.filter(order_id__in=list(by_id)):  # in the models' ordering
        lines[line.order_id].append(line)
    for parcel in OrderParcel.objects.filter(order_id__in=list(by_id)):
        parcels[parcel.order_id].append(parcel)
    for pk, order in by_id.items():
        setattr(order, LOADED_LINES, lines[pk])
        setattr(order, LOADED_PARCELS, parcels[pk])


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    sku = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    weight_kg = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal("0"))
    hs_code = models.CharField(max_length=16, blank=True)
    origin_country = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ("order", "position", "id")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"

    @property
    def total_price(self) -> Decimal:
        return self.unit_price * self.quantity


class ShippingAddress(models.Model):
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="shipping_address")
    street = models.CharField(max_length=200)
    house_number = models.CharField(max_length=40, blank=True)
    address_line_2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20)
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    state = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name_plural = "shipping addresses"

    def __str__(self) -> str:
        return f"{self.street} {self.house_number}, {self.postal_code} {self.city}, {self.country}"


class OrderParcel(models.Model):
    """One box of an order that ships in several (or one box with known weight or size).

    An order without parcels ships as one parcel. A parcel without a weight takes an even share of what
    the order's weight leaves after the parcels that have one.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="parcels")
    position = models.PositiveIntegerField(default=0)
    weight_kg = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    length_cm = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    width_cm = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    height_cm = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)

    class Meta:
        ordering = ("order", "position", "id")

    def __str__(self) -> str:
        return f"Parcel {self.position + 1} of {self.order_id}"

    @property
    def dimensions(self) -> tuple[Decimal, Decimal, Decimal] | None:
        """Length, width and height in cm, when all three are known."""
        if self.length_cm is None or self.width_cm is None or self.height_cm is None:
            return None
        return (self.length_cm, self.width_cm, self.height_cm)
