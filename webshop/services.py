"""Write-side services of the shop domain: shops, API tokens and the order import.

Commands, admin actions and views all call these functions, so the rules live in one place and a
command stays a thin translation of its arguments. Every function takes keyword-only arguments, and
the ones that write run inside ``transaction.atomic``: a failure leaves the database as it was.

Mistakes made by the caller raise a subclass of :class:`ServiceError` whose message is one line fit
to show to a person as is; anything else that escapes is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webshop import shipping_locks
from webshop.models import (
    ApiToken,
    CustomsExportType,
    CustomsShipmentType,
    IssuedToken,
    Order,
    OrderLine,
    OrderParcel,
    Scope,
    ShippingAddress,
    Shop,
)
from wemasy.errors import ApplicationError

_T = TypeVar("_T")

#: Rows per INSERT/DELETE statement and ids per ``IN (…)``: keeps statements small on every backend
#: while the number of queries grows with the input size divided by this, not with the input size.
BATCH_SIZE: Final = 500

#: The largest value PostgreSQL accepts in a ``PositiveIntegerField`` (a signed 32-bit integer).
_MAX_POSITIVE_INT: Final = 2**31 - 1

_DECIMAL_RE: Final = re.compile(r"\d+(?:\.\d+)?")
_LETTERS_RE: Final = {2: re.compile(r"[A-Za-z]{2}"), 3: re.compile(r"[A-Za-z]{3}")}

#: How many import errors the one-line message spells out before it only counts the rest.
_ERRORS_IN_MESSAGE: Final = 3


# --- errors ------------------------------------------------------------------------------------------


class ServiceError(ApplicationError, ValueError):
    """A mistake in what the caller asked for; ``str(error)`` is one line meant for a person."""


class ShopNotFoundError(ServiceError, LookupError):
    """No shop has the given slug."""

    http_status = 404


class InvalidScopeError(ServiceError):
    """A token was asked for with a scope the service does not know (a typo would grant nothing)."""


class OrderImportError(ServiceError):
    """The import input is invalid; nothing was written.

    ``errors`` holds every problem found, each naming the item (its index in the input array and,
    when readable, its order number) and the field, so a whole file can be fixed in one pass. The
    message shows the first few on one line and counts the rest.
    """

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: list[str] = list(errors)
        shown = "; ".join(self.errors[:_ERRORS_IN_MESSAGE])
        more = len(self.errors) - _ERRORS_IN_MESSAGE
        if more > 0:
            shown += f" (and {more} more error{'s' if more > 1 else ''})"
        super().__init__(shown)


# --- shops ---------------------------------------------------------------------------------------------


def get_shop_by_slug(*, slug: str) -> Shop:
    """The shop with ``slug``; raises :class:`ShopNotFoundError` with a message an operator can act on.

    It lives beside the writes because every operator command starts with this look-up and needs
    the same "unknown shop" error, not a bare ``DoesNotExist``.
    """
    try:
        return Shop.objects.get(slug=slug)
    except Shop.DoesNotExist:
        raise ShopNotFoundError(f"unknown shop {slug!r} (see: manage.py create_shop)") from None


def create_shop(*, slug: str, name: str | None = None) -> tuple[Shop, bool]:
    """Create the shop ``slug`` unless it exists; returns ``(shop, created)``.

    Idempotent by contract (docs/operations.md): a second run for the same slug changes nothing, not
    even the name, so set-up scripts can run it on every deploy without undoing edits made in the
    admin. Without ``name`` the shop is named after its slug (the model requires a name).
    """
    slug = slug.strip()
    try:
        validate_slug(slug)
    except ValidationError:
        raise ServiceError(f"invalid shop slug {slug!r}: use letters, digits, hyphens or underscores only") from None
    slug_max = _max_length(Shop, "slug")
    if len(slug) > slug_max:
        raise ServiceError(f"invalid shop slug {slug!r}: at most {slug_max} characters")
    name = (name or "").strip() or slug
    name_max = _max_length(Shop, "name")
    if len(name) > name_max:
        raise ServiceError(f"shop name is too long: at most {name_max} characters")
    with transaction.atomic():
        return Shop.objects.get_or_create(slug=slug, defaults={"name": name})


# --- API tokens --------------------------------------------------------------------------------------


def create_api_token(*, shop: Shop, name: str = "", scopes: Sequence[str] | None = None) -> IssuedToken:
    """Issue a token for ``shop``; the raw value in the result is the only copy there will ever be.

    Scopes are checked against :class:`webshop.models.Scope` because a misspelt scope would be
    stored silently and then grant nothing, which surfaces much later as a puzzling 403. Without
    ``scopes`` the token gets ``shipments:push``, the one thing a token is for today.
    """
    wanted = [Scope.SHIPMENTS_PUSH.value] if scopes is None else [scope.strip() for scope in scopes]
    wanted = list(dict.fromkeys(scope for scope in wanted if scope))  # drop blanks and repeats, keep order
    if not wanted:
        raise InvalidScopeError(f"a token needs at least one scope; known scopes: {_known_scopes()}")
    unknown = [scope for scope in wanted if scope not in Scope.values]
    if unknown:
        raise InvalidScopeError(
            f"unknown scope{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known scopes: {_known_scopes()}"
        )
    name = name.strip()
    name_max = _max_length(ApiToken, "name")
    if len(name) > name_max:
        raise ServiceError(f"token name is too long: at most {name_max} characters")
    with transaction.atomic():
        return ApiToken.issue(shop=shop, name=name, scopes=wanted)


def revoke_api_token(*, token: ApiToken) -> None:
    """Revoke ``token`` from now on. Revoking twice keeps the first time, which is when access ended.

    A conditional update rather than ``save()``: two people revoking at once cannot overwrite each
    other's timestamp, and no other field of the row is rewritten from a stale copy.
    """
    now = timezone.now()
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        token.revoked_at = ApiToken.objects.values_list("revoked_at", flat=True).get(pk=token.pk)


def _known_scopes() -> str:
    return ", ".join(Scope.values)


# --- order import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LineData:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    weight_kg: Decimal
    hs_code: str
    origin_country: str


@dataclass(frozen=True)
class _AddressData:
    street: str
    house_number: str
    address_line_2: str
    postal_code: str
    city: str
    country: str
    state: str


#: Sendcloud ships at most this many parcels in one shipment (multicollo).
MAX_PARCELS: Final = 50


@dataclass(frozen=True)
class _ParcelData:
    weight_kg: Decimal | None
    length_cm: Decimal | None
    width_cm: Decimal | None
    height_cm: Decimal | None


@dataclass(frozen=True)
class _OrderData:
    order_number: str
    type: str
    status: str
    payment_status: str
    currency: str
    created_at: datetime
    customer_name: str
    customer_email: str
    customer_phone: str
    customer_company: str
    address: _AddressData | None
    lines: tuple[_LineData, ...]
    shipping_option_code: str = ""
    weight_kg: Decimal | None = None
    parcels: tuple[_ParcelData, ...] = ()
    service_point: _ServicePointData | None = None
    customs: _CustomsData | None = None


@dataclass(frozen=True)
class _ServicePointData:
    id: str
    carrier_point_id: str
    post_number: str


@dataclass(frozen=True)
class _CustomsData:
    invoice_number: str
    shipment_type: str
    export_type: str
    receiver_vat_number: str
    receiver_eori_number: str


#: The import's ``service_point`` and ``customs`` keys → ``Order`` columns (also what a re-import rewrites).
_SERVICE_POINT_COLUMNS: Final = {
    "id": "service_point_id",
    "carrier_point_id": "service_point_carrier_id",
    "post_number": "service_point_post_number",
}
_CUSTOMS_COLUMNS: Final = {
    "invoice_number": "customs_invoice_number",
    "shipment_type": "customs_shipment_type",
    "export_type": "customs_export_type",
    "receiver_vat_number": "receiver_vat_number",
    "receiver_eori_number": "receiver_eori_number",
}


#: The columns an import rewrites on an order that already exists (``shop`` and the number identify it).
_ORDER_UPDATE_FIELDS: Final = (
    "type",
    "status",
    "payment_status",
    "currency",
    "created_at",
    "updated_at",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_company",
    "shipping_option_code",
    "weight_kg",
    *_SERVICE_POINT_COLUMNS.values(),
    *_CUSTOMS_COLUMNS.values(),
)


def import_orders(*, shop: Shop, items: list[Any]) -> list[Order]:
    """Create or update ``shop``'s orders from parsed import JSON (docs/operations.md); all or nothing.

    The whole input is validated before anything is written, so a bad item 3 cannot leave items 0 to 2
    half-imported; every problem found is reported at once in an :class:`OrderImportError`. Orders
    are matched by ``(shop, order_number)``: an existing order is updated and its lines and
    shipping address are replaced by the ones in the input (``"shipping_address": null`` removes
    it). The writes are a constant number of bulk statements per :data:`BATCH_SIZE` orders, in one
    transaction, and the upsert is a single ``INSERT … ON CONFLICT`` so two imports racing on the
    same new order number cannot both insert it.

    Decisions worth knowing:

    - ``created_at`` must carry a timezone (``Z`` or ``+01:00``): a naive time is refused rather
      than guessed, since guessing wrong shifts orders by hours; it is stored in UTC.
    - Money and weights must be decimal *strings* (``"19.95"``): a JSON number is refused because
      floats lose cents. Quantities must be JSON integers above zero.
    - Shipping data is optional: ``shipping_option_code`` (blank: the shop's default), the order's
      ``weight_kg`` (absent: the sum of its lines), ``parcels`` (a count, or a list of parcels each with an
      optional ``weight_kg`` and ``length_cm``/``width_cm``/``height_cm``; absent: one parcel).
    - ``type`` defaults to ``checkout``, a line's ``weight_kg`` to ``"0"``; ``payment_status``,
      ``customer.email``, ``customer.phone``, ``customer.company``, ``sku``, ``house_number``,
      ``address_line_2``, ``state``, ``hs_code`` and ``origin_country`` may be empty, null or
      absent. Every order needs at least one line. Unknown keys are ignored.
    - Codes are upper-cased (``nl`` → ``NL``, ``eur`` → ``EUR``); text is stripped of surrounding
      whitespace.

    Returns the saved orders in input order, each with its ``id``.
    """
    orders = _validate_items(items)
    if not orders:
        return []
    with transaction.atomic():
        return _save_orders(shop=shop, orders=orders)


def _validate_items(items: Any) -> list[_OrderData]:
    if not isinstance(items, list):
        raise OrderImportError(["the input must be a JSON array of orders"])
    errors: list[str] = []
    orders: list[_OrderData] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        label = _item_label(index, item)
        if not isinstance(item, Mapping):
            errors.append(f"{label}: must be an object")
            continue
        item_errors: list[str] = []
        order = _read_order(_Reader(item, "", item_errors))
        if order.order_number in first_index:
            item_errors.append(f"order_number: repeats item {first_index[order.order_number]}")
        elif order.order_number:
            first_index[order.order_number] = index
        errors.extend(f"{label}: {message}" for message in item_errors)
        orders.append(order)
    if errors:
        raise OrderImportError(errors)
    return orders


def _item_label(index: int, item: Any) -> str:
    """``item 3 (ORD-1004)``: the array index finds the item in the file, the number names it."""
    number = item.get("order_number") if isinstance(item, Mapping) else None
    if isinstance(number, str) and number.strip():
        return f"item {index} ({number.strip()})"
    return f"item {index}"


def _read_order(reader: _Reader) -> _OrderData:
    order_number = reader.text("order_number", Order, required=True)
    customer = reader.object("customer", required=True)
    if customer is None:
        customer = _Reader({}, "customer.", [])  # already reported; read defaults into a throw-away
    address = reader.object("shipping_address", required=False)
    return _OrderData(
        order_number=order_number,
        type=reader.choice("type", Order.Type.values, default=Order.Type.CHECKOUT),
        status=reader.choice("status", Order.Status.values),
        payment_status=reader.text("payment_status", Order),
        currency=reader.letters("currency", 3, required=True),
        created_at=reader.aware_datetime("created_at"),
        customer_name=customer.text("name", Order, column="customer_name", required=True),
        customer_email=customer.email("email", Order, column="customer_email"),
        customer_phone=customer.text("phone", Order, column="customer_phone"),
        customer_company=customer.text("company", Order, column="customer_company"),
        address=_read_address(address) if address is not None else None,
        lines=tuple(_read_line(line) for line in reader.objects("lines")),
        shipping_option_code=reader.text("shipping_option_code", Order),
        weight_kg=reader.decimal("weight_kg", Order) if reader.data.get("weight_kg") is not None else None,
        parcels=_read_parcels(reader),
        service_point=_read_service_point(reader.object("service_point", required=False)),
        customs=_read_customs(reader.object("customs", required=False)),
    )


def _read_service_point(reader: _Reader | None) -> _ServicePointData | None:
    """``service_point``: Sendcloud's point ``id`` and/or the carrier's ``carrier_point_id``, a ``post_number``."""
    if reader is None:
        return None
    point = _ServicePointData(
        **{key: reader.text(key, Order, column=column) for key, column in _SERVICE_POINT_COLUMNS.items()}
    )
    if point.id and not point.id.isdigit():
        reader.fail("id", 'must be Sendcloud\'s numeric service point id, e.g. "1000001"')
    if not point.id and not point.carrier_point_id:
        reader.fail("id", "a service point needs its id (or carrier_point_id); use null for delivery to the address")
    return point


def _read_customs(reader: _Reader | None) -> _CustomsData | None:
    """``customs``: the invoice number, shipment and export type, the receiver's tax numbers (all optional)."""
    if reader is None:
        return None
    return _CustomsData(
        invoice_number=reader.text("invoice_number", Order, column="customs_invoice_number"),
        shipment_type=reader.choice("shipment_type", CustomsShipmentType.values)
        if reader.data.get("shipment_type") not in (None, "")
        else "",
        export_type=reader.choice("export_type", CustomsExportType.values)
        if reader.data.get("export_type") not in (None, "")
        else "",
        receiver_vat_number=reader.text("receiver_vat_number", Order),
        receiver_eori_number=reader.text("receiver_eori_number", Order),
    )


def _read_parcels(reader: _Reader) -> tuple[_ParcelData, ...]:
    """``parcels``: a count of boxes, or a list of boxes with an optional weight and dimensions each."""
    value = reader.data.get("parcels")
    if value is None:
        return ()
    if type(value) is int:
        if not 1 <= value <= MAX_PARCELS:
            reader.fail("parcels", f"must be a number from 1 to {MAX_PARCELS} or a list of parcels")
            return ()
        return () if value == 1 else tuple(_ParcelData(None, None, None, None) for _ in range(value))
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARCELS:
        reader.fail("parcels", f"must be a number from 1 to {MAX_PARCELS} or a list of 1 to {MAX_PARCELS} parcels")
        return ()
    parcels = []
    for index, element in enumerate(value):
        if not isinstance(element, Mapping):
            reader.fail(f"parcels[{index}]", "must be an object")
            continue
        parcel = _Reader(element, f"{reader.path}parcels[{index}].", reader.errors)
        sizes = {key: parcel.optional_decimal(key, OrderParcel) for key in ("length_cm", "width_cm", "height_cm")}
        given = [v for v in sizes.values() if v is not None]
        if given and len(given) != 3:
            parcel.fail("length_cm", "length_cm, width_cm and height_cm go together: give all three or none")
        parcels.append(_ParcelData(weight_kg=parcel.optional_decimal("weight_kg", OrderParcel), **sizes))
    return tuple(parcels)


def _read_address(reader: _Reader) -> _AddressData:
    return _AddressData(
        street=reader.text("street", ShippingAddress, required=True),
        house_number=reader.text("house_number", ShippingAddress),
        address_line_2=reader.text("address_line_2", ShippingAddress),
        postal_code=reader.text("postal_code", ShippingAddress, required=True),
        city=reader.text("city", ShippingAddress, required=True),
        country=reader.letters("country", 2, required=True),
        state=reader.text("state", ShippingAddress),
    )


def _read_line(reader: _Reader) -> _LineData:
    return _LineData(
        sku=reader.text("sku", OrderLine),
        name=reader.text("name", OrderLine, required=True),
        quantity=reader.positive_int("quantity"),
        unit_price=reader.decimal("unit_price", OrderLine, required=True),
        weight_kg=reader.decimal("weight_kg", OrderLine),
        hs_code=reader.text("hs_code", OrderLine),
        origin_country=reader.letters("origin_country", 2),
    )


class _Reader:
    """Reads typed fields from one JSON object, noting each bad field instead of stopping at the first.

    A field that fails gets a harmless placeholder value so reading can go on; the caller discards
    everything as soon as one error was noted. ``path`` (``"lines[0]."``) prefixes each field name,
    so messages point into nested objects.
    """

    def __init__(self, data: Mapping[str, Any], path: str, errors: list[str]) -> None:
        self.data = data
        self.path = path
        self.errors = errors

    def fail(self, key: str, message: str) -> None:
        self.errors.append(f"{self.path}{key}: {message}")

    def _present(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, model: type[models.Model], *, column: str | None = None, required: bool = False) -> str:
        """A string, stripped; null or absent is ``""`` (an error if ``required``); fits the column."""
        value = self.data.get(key)
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return ""
        value = value.strip()
        if required and not value:
            self.fail(key, "is required")
        limit = _max_length(model, column or key)
        if len(value) > limit:
            self.fail(key, f"must be at most {limit} characters")
        return value

    def email(self, key: str, model: type[models.Model], *, column: str) -> str:
        value = self.text(key, model, column=column)
        if value:
            try:
                validate_email(value)
            except ValidationError:
                self.fail(key, "must be an email address")
        return value

    def choice(self, key: str, choices: Sequence[str], *, default: str | None = None) -> str:
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        if value is None:
            self.fail(key, f"is required (one of {', '.join(choices)})")
            return ""
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}")
            return ""
        return str(value)

    def letters(self, key: str, count: int, *, required: bool = False) -> str:
        """A code of exactly ``count`` ASCII letters (ISO country or currency), upper-cased."""
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, "is required")
            return ""
        if not isinstance(value, str) or not _LETTERS_RE[count].fullmatch(value.strip()):
            self.fail(key, f"must be {count} letters")
            return ""
        return value.strip().upper()

    def aware_datetime(self, key: str) -> datetime:
        value = self.data.get(key)
        placeholder = datetime(1970, 1, 1, tzinfo=UTC)
        if value is None:
            self.fail(key, "is required (ISO 8601, e.g. 2026-11-20T10:00:00Z)")
            return placeholder
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed but impossible, such as 2026-02-30
            parsed = None
        if parsed is None:
            self.fail(key, "must be an ISO 8601 date and time, e.g. 2026-11-20T10:00:00Z")
            return placeholder
        if timezone.is_naive(parsed):
            self.fail(key, "must include a timezone, e.g. 2026-11-20T10:00:00Z or +01:00")
            return placeholder
        return parsed.astimezone(UTC)

    def positive_int(self, key: str) -> int:
        value = self.data.get(key)
        # bool is an int in Python, but ``true`` is not a quantity.
        if type(value) is not int or value < 1:
            self.fail(key, "must be a positive integer")
            return 1
        if value > _MAX_POSITIVE_INT:
            self.fail(key, f"must be at most {_MAX_POSITIVE_INT}")
            return 1
        return value

    def decimal(self, key: str, model: type[models.Model], *, required: bool = False) -> Decimal:
        """A non-negative decimal string that fits the column's digits, e.g. ``"19.95"``."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(key, 'is required (a decimal string, e.g. "19.95")')
            return Decimal(0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(key, f'must be a decimal string such as "{value}", not a number: floats lose cents')
            return Decimal(0)
        if not isinstance(value, str) or not _DECIMAL_RE.fullmatch(value.strip()):
            self.fail(key, 'must be a non-negative decimal string, e.g. "19.95"')
            return Decimal(0)
        number = Decimal(value.strip())
        field = model._meta.get_field(key)
        assert isinstance(field, models.DecimalField)
        places = field.decimal_places or 0
        whole_digits = (field.max_digits or 0) - places
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # finite: the pattern above admits no NaN or Infinity
        if -exponent > places:
            self.fail(key, f"must have at most {places} decimal places")
            return Decimal(0)
        if number.adjusted() + 1 > whole_digits:
            self.fail(key, f"must be below 1{'0' * whole_digits}")
            return Decimal(0)
        return number

    def optional_decimal(self, key: str, model: type[models.Model]) -> Decimal | None:
        """Like :meth:`decimal`, but absent or null stays None (unknown), and zero is refused."""
        if self.data.get(key) is None:
            return None
        before = len(self.errors)
        number = self.decimal(key, model)
        if number == 0 and len(self.errors) == before:
            self.fail(key, "must be above 0")
        return number

    def object(self, key: str, *, required: bool) -> _Reader | None:
        """A nested object as a reader of its own; None when null or absent (an error if ``required``)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return None
        if not isinstance(value, Mapping):
            self.fail(key, "must be an object" + ("" if required else " or null"))
            return None
        return _Reader(value, f"{self.path}{key}.", self.errors)

    def objects(self, key: str) -> Iterator[_Reader]:
        """Readers for a required, non-empty array of objects; nothing when it is not one (noted)."""
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            self.fail(key, "must be an array with at least one line")
            return
        for index, element in enumerate(value):
            if isinstance(element, Mapping):
                yield _Reader(element, f"{self.path}{key}[{index}].", self.errors)
            else:
                self.fail(f"{key}[{index}]", "must be an object")


#: The ``Order`` columns that are shipping data: an order whose shipping data is locked keeps them.
_SHIPPING_COLUMNS: Final = (
    "shipping_option_code",
    "weight_kg",
    *_SERVICE_POINT_COLUMNS.values(),
    *_CUSTOMS_COLUMNS.values(),
)
#: Their names in the import (what an error names).
_SHIPPING_KEYS: Final = {
    "shipping_option_code": "shipping_option_code",
    "weight_kg": "weight_kg",
    **{column: f"service_point.{key}" for key, column in _SERVICE_POINT_COLUMNS.items()},
    **{column: f"customs.{key}" for key, column in _CUSTOMS_COLUMNS.items()},
}


def _refuse_locked_shipping_changes(*, shop: Shop, orders: list[_OrderData]) -> None:
    """Refuse the import when it changes the shipping data of an order that may not change it now.

    An order a carrier integration is sending, or that has a label, keeps its service point, customs data,
    shipping option, weight and parcels: the same rule the integration's own doors apply (asked through
    :mod:`webshop.shipping_locks`). An import that carries the same values for it is fine, so re-importing
    a whole feed does not trip over orders in flight; one that changes them fails as a whole, naming each
    order and field, like any other invalid input.

    The existing orders are locked first (``FOR NO KEY UPDATE``, in id order, as a push locks them), so a
    push cannot start on one between this check and the write.
    """
    ids = sorted(_order_ids(shop=shop, numbers=[data.order_number for data in orders]).values())
    if not ids:
        return
    current: dict[str, dict[str, Any]] = {}
    parcels: dict[int, list[tuple[Decimal | None, ...]]] = {}
    for id_batch in _batches(ids):
        for row in (
            Order.objects.filter(pk__in=id_batch)
            .order_by("pk")
            .select_for_update(no_key=True)
            .values("pk", "order_number", *_SHIPPING_COLUMNS)
        ):
            current[row["order_number"]] = row
        for order_id, *sizes in (
            OrderParcel.objects.filter(order_id__in=id_batch)
            .order_by("order_id", "position")
            .values_list("order_id", "weight_kg", "length_cm", "width_cm", "height_cm")
        ):
            parcels.setdefault(order_id, []).append(tuple(sizes))
    changes: dict[int, tuple[int, str, list[str]]] = {}
    for index, data in enumerate(orders):
        row = current.get(data.order_number)
        if row is None:
            continue
        new = {
            "shipping_option_code": data.shipping_option_code,
            "weight_kg": data.weight_kg,
            **_service_point_columns(data.service_point),
            **_customs_columns(data.customs),
        }
        changed = [_SHIPPING_KEYS[column] for column in _SHIPPING_COLUMNS if row[column] != new[column]]
        boxes = [(p.weight_kg, p.length_cm, p.width_cm, p.height_cm) for p in data.parcels]
        if parcels.get(row["pk"], []) != boxes:
            changed.append("parcels")
        if changed:
            changes[row["pk"]] = (index, data.order_number, changed)
    locked = shipping_locks.locked_orders(list(changes))
    if locked:
        raise OrderImportError(
            [
                f"item {index} ({number}): its shipping data cannot change now ({locked[order_id]}), "
                f"but the import changes {', '.join(changed)}"
                for order_id, (index, number, changed) in sorted(changes.items(), key=lambda item: item[1][0])
                if order_id in locked
            ]
        )


def _save_orders(*, shop: Shop, orders: list[_OrderData]) -> list[Order]:
    """Upsert the orders, then replace all their lines and addresses: a few statements per batch.

    First refused if it would change a locked order's shipping data (:func:`_refuse_locked_shipping_changes`).
    """
    _refuse_locked_shipping_changes(shop=shop, orders=orders)
    rows = [
        Order(
            shop=shop,
            order_number=data.order_number,
            type=data.type,
            status=data.status,
            payment_status=data.payment_status,
            currency=data.currency,
            created_at=data.created_at,
            customer_name=data.customer_name,
            customer_email=data.customer_email,
            customer_phone=data.customer_phone,
            customer_company=data.customer_company,
            shipping_option_code=data.shipping_option_code,
            weight_kg=data.weight_kg,
            **_service_point_columns(data.service_point),
            **_customs_columns(data.customs),
        )
        for data in orders
    ]
    # One INSERT … ON CONFLICT (shop, order_number) DO UPDATE per batch; Django sets each row's id
    # from RETURNING, for inserted and updated rows alike (PostgreSQL, SQLite ≥ 3.35).
    saved = Order.objects.bulk_create(
        rows,
        batch_size=BATCH_SIZE,
        update_conflicts=True,
        unique_fields=("shop", "order_number"),
        update_fields=_ORDER_UPDATE_FIELDS,
    )
    if any(order.pk is None for order in saved):  # a backend without RETURNING: look the ids up
        ids = _order_ids(shop=shop, numbers=[order.order_number for order in saved])
        for order in saved:
            order.pk = ids[order.order_number]
    order_ids = [order.pk for order in saved]
    for id_batch in _batches(order_ids):
        OrderLine.objects.filter(order_id__in=id_batch).delete()
        ShippingAddress.objects.filter(order_id__in=id_batch).delete()
        OrderParcel.objects.filter(order_id__in=id_batch).delete()
    OrderParcel.objects.bulk_create(
        [
            OrderParcel(
                order_id=order.pk,
                position=position,
                weight_kg=parcel.weight_kg,
                length_cm=parcel.length_cm,
                width_cm=parcel.width_cm,
                height_cm=parcel.height_cm,
            )
            for order, data in zip(saved, orders, strict=True)
            for position, parcel in enumerate(data.parcels)
        ],
        batch_size=BATCH_SIZE,
    )
    OrderLine.objects.bulk_create(
        [
            OrderLine(
                order_id=order.pk,
                position=position,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                weight_kg=line.weight_kg,
                hs_code=line.hs_code,
                origin_country=line.origin_country,
            )
            for order, data in zip(saved, orders, strict=True)
            for position, line in enumerate(data.lines)
        ],
        batch_size=BATCH_SIZE,
    )
    ShippingAddress.objects.bulk_create(
        [
            ShippingAddress(
                order_id=order.pk,
                street=data.address.street,
                house_number=data.address.house_number,
                address_line_2=data.address.address_line_2,
                postal_code=data.address.postal_code,
                city=data.address.city,
                country=data.address.country,
                state=data.address.state,
            )
            for order, data in zip(saved, orders, strict=True)
            if data.address is not None
        ],
        batch_size=BATCH_SIZE,
    )
    return saved


def _service_point_columns(point: _ServicePointData | None) -> dict[str, str]:
    """The order's service point columns; all blank (delivery to the address) without one."""
    return {column: getattr(point, key) if point else "" for key, column in _SERVICE_POINT_COLUMNS.items()}


def _customs_columns(customs: _CustomsData | None) -> dict[str, str]:
    return {column: getattr(customs, key) if customs else "" for key, column in _CUSTOMS_COLUMNS.items()}


def _order_ids(*, shop: Shop, numbers: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for number_batch in _batches(numbers):
        ids.update(Order.objects.filter(shop=shop, order_number__in=number_batch).values_list("order_number", "id"))
    return ids


def _batches(values: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), BATCH_SIZE):
        yield values[start : start + BATCH_SIZE]


def _max_length(model: type[models.Model], field_name: str) -> int:
    """The column's ``max_length``: the import checks it so PostgreSQL never sees an overlong value."""
    field = model._meta.get_field(field_name)
    assert isinstance(field, models.Field)
    assert field.max_length is not None
    return field.max_length
