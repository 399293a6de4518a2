"""What a push decides per order, rule by rule and in the rules' order (the first that matches wins).

These are the verdicts a shop reads in the push summary; getting one wrong either ships what must not be
shipped (a quote, an unpaid order, one already labelled) or refuses what should go.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from sendcloud_integration.models import ShipmentState
from sendcloud_integration.push.classification import Category, OrderFacts, classify
from webshop.models import Order

BATCH = uuid.uuid4()


def facts(**changes: object) -> OrderFacts:
    base = OrderFacts(
        id=1,
        order_number="ORD-1",
        type=Order.Type.CHECKOUT,
        status=Order.Status.PAID,
        address_id=7,
        shipment_state=None,
        batch_id=None,
        labelled_at=None,
        cancelled_at=None,
    )
    return base._replace(**changes)


@pytest.mark.parametrize(
    ("order", "create_label", "category", "reason"),
    [
        (facts(), False, Category.NEW, ""),
        (facts(type="quote"), False, Category.SKIPPED, "quote orders cannot be shipped"),
        (facts(status=Order.Status.PENDING), False, Category.SKIPPED, "order status is pending"),
        (facts(address_id=None), False, Category.SKIPPED, "no shipping address"),
        (facts(shipment_state=ShipmentState.FAILED), False, Category.RETRY, ""),
        (facts(shipment_state=ShipmentState.PUSHED), False, Category.SKIPPED, "already pushed to SendCloud"),
        (facts(shipment_state=ShipmentState.PUSHED), True, Category.NEW, ""),
        (facts(shipment_state=ShipmentState.LABELLED), True, Category.SKIPPED, "label already created"),
        # A failed re-push of a labelled order still has its label: never a second one.
        (
            facts(shipment_state=ShipmentState.FAILED, labelled_at=timezone.now()),
            True,
            Category.SKIPPED,
            "label already created",
        ),
        # Cancelled, re-pushed with labels, failed again: the label is gone, so it may be pushed again.
        (
            facts(
                shipment_state=ShipmentState.FAILED,
                labelled_at=timezone.now() - timedelta(hours=1),
                cancelled_at=timezone.now(),
            ),
            True,
            Category.RETRY,
            "",
        ),
        # ... but a label made after that cancellation is a label.
        (
            facts(
                shipment_state=ShipmentState.FAILED,
                labelled_at=timezone.now(),
                cancelled_at=timezone.now() - timedelta(hours=1),
            ),
            True,
            Category.SKIPPED,
            "label already created",
        ),
        # The first rule that matches wins: a quote is a quote, whatever else is wrong with it.
        (facts(type="quote", status=Order.Status.PENDING, address_id=None), False, Category.SKIPPED, "quote orders"),
    ],
)
def test_each_rule_decides_in_its_turn(order: OrderFacts, create_label: bool, category: Category, reason: str) -> None:
    verdict = classify(order, create_label=create_label)

    assert verdict.category is category
    assert verdict.reason.startswith(reason)


@pytest.mark.parametrize(
    "state", [ShipmentState.QUEUED, ShipmentState.PUSHING, ShipmentState.LABEL_QUEUED, ShipmentState.LABELLING]
)
@pytest.mark.parametrize("create_label", [False, True])
def test_an_order_in_a_running_batch_is_never_queued_again(state: str, create_label: bool) -> None:
    verdict = classify(facts(shipment_state=state, batch_id=BATCH), create_label=create_label)

    assert verdict.category is Category.SKIPPED
    assert verdict.reason == f"already queued in batch {BATCH}"


@pytest.mark.parametrize("status", sorted(Order.SHIPPABLE_STATUSES))
def test_every_shippable_status_is_shipped(status: str) -> None:
    assert classify(facts(status=status), create_label=False).category is Category.NEW
