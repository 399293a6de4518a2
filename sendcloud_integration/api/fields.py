"""Input fields that accept what the original (Laravel) API accepted, with its error messages.

Messages use ``:attribute``, which the exception handler replaces with the field's full key
(``order_ids.3``), as Laravel does.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sendcloud_integration.limits import MAX_BIGINT

MAX_ORDER_ID = MAX_BIGINT
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_TRUE = (True, 1, "1", "true")
_FALSE = (False, 0, "0", "false")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "boolean"},
            {"type": "integer", "enum": [0, 1]},
            {"type": "string", "enum": ["0", "1", "true", "false"]},
        ],
        "description": 'A boolean; 1/0, "1"/"0" and "true"/"false" are accepted too.',
    }
)
class LaravelBooleanField(serializers.Field):
    """``true``/``false``, ``1``/``0``, ``"1"``/``"0"``, ``"true"``/``"false"``; nothing else."""

    default_error_messages = {
        "required": "The :attribute field is required.",
        "null": "The :attribute field is required.",
        "invalid": "The :attribute field must be true or false.",
    }

    def to_internal_value(self, data: Any) -> bool:
        # ``1 == True`` in Python, so compare types too: 1.0 or 2 must not pass.
        if isinstance(data, bool):
            return data
        if isinstance(data, int) and data in (0, 1):
            return data == 1
        if isinstance(data, str) and data in ("0", "1", "true", "false"):
            return data in _TRUE
        self.fail("invalid")

    def to_representation(self, value: bool) -> bool:
        return bool(value)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_ORDER_ID},
            {"type": "string", "pattern": "^[0-9]{1,19}$"},
        ],
        "description": "An order id; a string of decimal digits is read as that number.",
    }
)
class OrderIdField(serializers.Field):
    """A positive integer, or a string of decimal digits meaning one. Booleans and floats are not ids."""

    default_error_messages = {
        "invalid": "The :attribute field must be an integer.",
        "null": "The :attribute field must be an integer.",
        "min": "The :attribute field must be at least 1.",
        "max": f"The :attribute field must not be greater than {MAX_ORDER_ID}.",
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str) and _DIGITS.match(data):
            data = int(data)
        if not isinstance(data, int):
            self.fail("invalid")
        if data < 1:
            self.fail("min")
        if data > MAX_ORDER_ID:
            self.fail("max")
        return data

    def to_representation(self, value: int) -> int:
        return value


class OrderIdListField(serializers.ListField):
    """1 to ``max_length`` ids. Item errors are keyed by index (``order_ids.3``)."""

    default_error_messages = {
        "required": "The :attribute field is required.",
        "null": "The :attribute field is required.",
        "not_a_list": "The :attribute field must be an array.",
        "empty": "The :attribute field must have at least 1 item.",
        "max_length": "The :attribute field must not have more than {max_length} items.",
        "min_length": "The :attribute field must have at least {min_length} item.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=OrderIdField(), allow_empty=False, **kwargs)

    def to_internal_value(self, data: Any) -> list[int]:
        if isinstance(data, str | dict) or not hasattr(data, "__iter__"):
            self.fail("not_a_list")
        if len(data) == 0:
            self.fail("empty")
        if self.max_length is not None and len(data) > self.max_length:
            # Too many: say so without validating ten thousand items first.
            self.fail("max_length", max_length=self.max_length)
        # The common case, a list of plain integers in range, is checked in bulk (C loops, no call per
        # item); anything else takes the per-item path below, which finds and words each error.
        plain = isinstance(data, list) and all(type(item) is int for item in data)
        if plain and min(data) >= 1 and max(data) <= MAX_ORDER_ID:
            return data
        # Each item goes straight to the child's conversion: the generic per-item machinery of
        # ListField costs more than the push itself for 10,000 ids.
        child = cast(OrderIdField, self.child)
        ids: list[int] = []
        errors: dict[str, Any] = {}
        for index, item in enumerate(data):
            try:
                ids.append(child.to_internal_value(item))
            except serializers.ValidationError as exc:
                errors[str(index)] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return ids


class RequiredIdField(OrderIdField):
    """One id as a top-level field (``order_id``, ``shipping_method_id``): missing or null is "required"."""

    default_error_messages = {
        **OrderIdField.default_error_messages,
        "required": "The :attribute field is required.",
        "null": "The :attribute field is required.",
    }


_NUMBER = re.compile(r"^[0-9]{1,10}(\.[0-9]+)?$")
WEIGHT_MIN = Decimal("0.001")
WEIGHT_MAX = Decimal("9999999.999")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0.001, "maximum": 9999999.999},
            {"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]+)?$"},
        ],
        "description": "Kilograms, at most three decimals (grams); a numeric string is read as that number.",
    }
)
class WeightField(serializers.Field):
    """A weight in kg like Laravel's ``numeric|min:0.001``: a JSON number or a numeric string, to the gram."""

    default_error_messages = {
        "required": "The :attribute field is required.",
        "null": "The :attribute field is required.",
        "invalid": "The :attribute field must be a number.",
        "min": "The :attribute field must be at least 0.001.",
        "max": "The :attribute field must not be greater than 9999999.999.",
        "places": "The :attribute field must have at most 3 decimal places.",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid")
        text = str(data).strip() if isinstance(data, str) else repr(data)
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        if not _NUMBER.match(text) and not isinstance(data, int | float):
            self.fail("invalid")
        try:
            value = Decimal(text)
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -3:
            self.fail("places")
        if value < WEIGHT_MIN:
            self.fail("min")
        if value > WEIGHT_MAX:
            self.fail("max")
        return value.quantize(Decimal("0.001"))

    def to_representation(self, value: Decimal) -> str:
        return str(value)


@extend_schema_field(
    {
        "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]{1,9}$"}],
        "description": "A whole number; a string of digits is read as that number.",
    }
)
class CountField(serializers.Field):
    """A whole number within bounds (``no_parcels``); a string of digits is read as that number."""

    default_error_messages = {
        "required": "The :attribute field is required.",
        "null": "The :attribute field is required.",
        "invalid": "The :attribute field must be an integer.",
        "min": "The :attribute field must be at least {minimum}.",
        "max": "The :attribute field must not be greater than {maximum}.",
    }

    def __init__(self, *, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and re.fullmatch(r"[0-9]{1,9}", data):
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if data < self.minimum:
            self.fail("min", minimum=self.minimum)
        if data > self.maximum:
            self.fail("max", maximum=self.maximum)
        return data

    def to_representation(self, value: int) -> int:
        return value


class StrictCharField(serializers.CharField):
    """A string as Laravel's ``string`` rule: a number is not one (DRF would turn ``5`` into ``"5"``)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def apply_order_id_limit(serializer: serializers.Serializer) -> None:
    """Read ``PUSH_MAX_ORDER_IDS`` per request (tests and deployments change it) for the ``order_ids`` field."""
    order_ids = cast(OrderIdListField, serializer.fields["order_ids"])
    order_ids.max_length = settings.PUSH_MAX_ORDER_IDS
    order_ids.validators = []


class OrderIdsSerializer(serializers.Serializer):
    """A body of ``order_ids`` alone, at most ``PUSH_MAX_ORDER_IDS`` of them (create-label, …)."""

    order_ids = OrderIdListField(max_length=settings.PUSH_MAX_ORDER_IDS)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        apply_order_id_limit(self)
