"""Every limit the service enforces, checked on both sides of its boundary: the last value that passes
and the first that does not. A limit wrong by one is a request Sendcloud refuses or an order refused
for nothing.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from sendcloud_integration.integration.services import SendcloudConfigError, configure_sendcloud
from sendcloud_integration.models import OrderShipment, PushChunk, SendcloudIntegration
from sendcloud_integration.pipeline import dispatch
from sendcloud_integration.push import services
from sendcloud_integration.sendcloud.payloads import build_order, precheck
from tests.conftest import PUSH_URL
from tests.factories import OrderFactory
from tests.guards.helpers import queue
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

BIGINT = 2**63 - 1  # the largest id PostgreSQL's bigint holds


# -- 100 orders per chunk: one POST /v3/orders takes at most 100 (Sendcloud refuses 101) ----------------


def test_a_push_in_chunks_of_a_hundred_makes_full_chunks_and_one_for_the_rest(
    shop: Shop, integration: SendcloudIntegration
) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(201)]
    with mock.patch.object(dispatch, "start_batch"):
        batch = queue(shop, orders, create_label=False, chunk_size=100)

    assert list(PushChunk.objects.filter(batch=batch).values_list("number", "size")) == [(1, 100), (2, 100), (3, 1)]
    per_chunk = sorted(OrderShipment.objects.filter(batch=batch).values_list("chunk_number", flat=True))
    assert per_chunk == [1] * 100 + [2] * 100 + [3]
    assert batch.total_chunks == 3


@pytest.mark.parametrize("chunk_size", [101, -1])
def test_a_chunk_size_sendcloud_would_refuse_is_refused_before_anything_is_queued(
    shop: Shop, integration: SendcloudIntegration, chunk_size: int
) -> None:
    order = OrderFactory(shop=shop)

    with pytest.raises(ValueError, match="between 1 and 100"):
        services.push_orders(
            shop=shop,
            order_ids=[order.pk],
            create_label=False,
            actor=services.Actor.command("t"),
            chunk_size=chunk_size,
        )

    assert not OrderShipment.objects.exists()


def test_the_smallest_chunk_size_is_one_order_per_chunk(shop: Shop, integration: SendcloudIntegration) -> None:
    orders = [OrderFactory(shop=shop) for _ in range(3)]
    with mock.patch.object(dispatch, "start_batch"):
        batch = queue(shop, orders, create_label=False, chunk_size=1)

    assert list(PushChunk.objects.filter(batch=batch).values_list("size", flat=True)) == [1, 1, 1]


# -- ids up to 2^63 - 1 --------------------------------------------------------------------------------------


def test_the_largest_bigint_is_an_order_id_the_api_accepts(client_for: APIClient, integration: object) -> None:
    order = OrderFactory(shop=integration.shop)  # type: ignore[attr-defined]
    with mock.patch.object(dispatch, "start_batch"):
        response = client_for.post(PUSH_URL, {"create_label": False, "order_ids": [order.pk, BIGINT]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["details"]["skipped_orders"] == [f"#{BIGINT}: order not found"]


@pytest.mark.parametrize(("value", "accepted"), [(str(BIGINT), True), (str(BIGINT + 1), False)])
def test_the_push_command_takes_order_ids_up_to_the_largest_bigint(
    shop: Shop, integration: SendcloudIntegration, value: str, accepted: bool
) -> None:
    order = OrderFactory(shop=shop)
    args = ["push_sendcloud_shipments", "--shop", shop.slug, "--order-ids", f"{order.pk},{value}", "--dry-run"]
    if accepted:
        call_command(*args, stdout=mock.MagicMock(), stderr=mock.MagicMock())
    else:
        with pytest.raises(CommandError, match="is not an order id"):
            call_command(*args, stdout=mock.MagicMock(), stderr=mock.MagicMock())


@pytest.mark.parametrize("field", ["integration_id", "sender_address_id"])
def test_sendcloud_ids_up_to_the_largest_bigint_are_accepted_and_no_larger(shop: Shop, field: str) -> None:
    base = {"shop": shop, "public_key": "p", "secret_key": "s", "integration_id": 1}

    integration, _ = configure_sendcloud(**{**base, field: BIGINT})
    assert getattr(SendcloudIntegration.objects.get(pk=integration.pk), field) == BIGINT
    with pytest.raises(SendcloudConfigError):
        configure_sendcloud(**{**base, field: BIGINT + 1})
    with pytest.raises(SendcloudConfigError):
        configure_sendcloud(**{**base, field: 0})


# -- what Sendcloud is sent ------------------------------------------------------------------------------


def address_of(order: Order, integration: SendcloudIntegration) -> dict[str, str]:
    payload = build_order(order, integration)
    return payload["shipping_address"]


@pytest.mark.parametrize(
    ("house_number", "sent_number", "sent_line_2"),
    [
        ("12-14 hs", "12-14 hs", ""),  # 8 characters: kept whole
        ("12-14 bis", "12-14", "bis"),  # 9: the leading number stays, the rest goes to line 2
        ("1 bus 200A", "1", "bus 200A"),
    ],
)
def test_a_house_number_longer_than_eight_characters_is_shortened_and_the_rest_kept(
    shop: Shop, integration: SendcloudIntegration, house_number: str, sent_number: str, sent_line_2: str
) -> None:
    order = OrderFactory(shop=shop, address={"house_number": house_number})

    address = address_of(order, integration)

    assert address["house_number"] == sent_number
    assert address.get("address_line_2", "") == sent_line_2


@pytest.mark.parametrize(("prefix_length", "refused"), [(62, False), (63, True)])
def test_an_order_id_sendcloud_would_refuse_for_its_length_is_caught_before_sending(
    settings: object, shop: Shop, prefix_length: int, refused: bool
) -> None:
    order = OrderFactory(shop=shop, pk=10)  # the Sendcloud order id is the prefix and "10": 64 or 65 characters
    settings.SENDCLOUD_ORDER_ID_PREFIX = "x" * prefix_length  # type: ignore[attr-defined]

    problems = precheck(order)

    assert any("longer than 64 characters" in p for p in problems) is refused
