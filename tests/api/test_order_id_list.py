"""``order_ids``: the bulk check of plain integer lists agrees with the per-item one, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

from sendcloud_integration.api.fields import MAX_ORDER_ID, OrderIdField, OrderIdListField
from sendcloud_integration.lookups import Ids, bigint_array
from tests.factories import OrderFactory
from webshop.models import Order


def per_item(data: list[Any]) -> list[int] | dict[str, Any]:
    """What the per-item path answers: the ids, or the errors by index."""
    child = OrderIdField()
    ids, errors = [], {}
    for index, item in enumerate(data):
        try:
            ids.append(child.to_internal_value(item))
        except serializers.ValidationError as exc:
            errors[str(index)] = exc.detail
    return errors or ids


def bulk(data: list[Any]) -> list[int] | dict[str, Any]:
    try:
        return OrderIdListField(max_length=10_000).to_internal_value(data)
    except serializers.ValidationError as exc:
        detail = exc.detail
    assert isinstance(detail, dict)
    return detail


ITEMS = st.one_of(
    st.integers(min_value=-3, max_value=MAX_ORDER_ID + 3),
    st.booleans(),
    st.sampled_from(["7", "0", "x", "", "9" * 20]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
)


@given(st.lists(ITEMS, min_size=1, max_size=30))
def test_the_bulk_check_answers_exactly_what_the_per_item_check_answers(data: list[Any]) -> None:
    assert bulk(data) == per_item(data)


@pytest.mark.parametrize(
    ("data", "index"),
    [([1, 2, 0], "2"), ([1, True], "1"), ([MAX_ORDER_ID + 1, 5], "0"), ([3, 2.0], "1")],
)
def test_an_invalid_id_among_plain_integers_is_named_by_its_index(data: list[Any], index: str) -> None:
    detail = bulk(data)
    assert isinstance(detail, dict)
    assert list(detail) == [index]


def test_bigint_array_is_postgresql_array_text_of_integers_only() -> None:
    assert bigint_array([3, 1, 2]) == "{3,1,2}"
    assert bigint_array([]) == "{}"
    with pytest.raises(ValueError, match="invalid literal"):
        bigint_array(["1}; DROP TABLE x; --"])


@pytest.mark.django_db
def test_any_of_with_ids_finds_exactly_the_listed_rows() -> None:
    orders = OrderFactory.create_batch(4)
    wanted = [orders[2].pk, orders[0].pk, 10**12]
    found = Order.objects.filter(pk__any_of=Ids(wanted)).values_list("pk", flat=True)
    assert sorted(found) == sorted([orders[0].pk, orders[2].pk])
    assert not Order.objects.filter(pk__any_of=Ids([])).exists()
