"""The shipment state machine, as ``OrderShipment.objects.move`` enforces it.

Every state change after a row was queued goes through ``move``, which refuses any move the state
machine does not list. That refusal is the last line against a second label: whatever a future code
path asks for, a LABELLED order cannot be moved back towards a label request. The table below is the
state machine of the design, each move with the flow that needs it; a move not listed must be refused.
"""

from __future__ import annotations

import itertools

import pytest

from sendcloud_integration.models import IllegalTransition, OrderShipment, ShipmentState
from tests.factories import OrderFactory
from webshop.models import Shop

pytestmark = pytest.mark.django_db

S = ShipmentState

#: (from, to): why the service makes that move.
ALLOWED = {
    (S.QUEUED, S.PUSHING): "a chunk starts sending the order",
    (S.QUEUED, S.LABEL_QUEUED): "an order already in Sendcloud only wants its label",
    (S.QUEUED, S.FAILED): "the integration became unusable before the order was sent",
    (S.PUSHING, S.PUSHED): "Sendcloud accepted the order",
    (S.PUSHING, S.FAILED): "Sendcloud refused the order",
    (S.PUSHING, S.QUEUED): "the chunk is handed back for a later attempt",
    (S.PUSHED, S.LABEL_QUEUED): "the batch creates labels",
    (S.PUSHED, S.QUEUED): "a re-push",
    (S.PUSHED, S.FAILED): "failing what a batch left",
    (S.LABEL_QUEUED, S.LABELLING): "the label request is recorded before it is sent",
    (S.LABEL_QUEUED, S.FAILED): "the label could not be requested",
    (S.LABELLING, S.LABELLED): "the label is stored",
    (S.LABELLING, S.FAILED): "the carrier refused, or the label never came",
    (S.LABELLING, S.LABEL_QUEUED): "Sendcloud certainly made no label: it may be asked again",
    (S.FAILED, S.QUEUED): "a re-push of a failed order",
    (S.LABELLED, S.CANCELLED): "Sendcloud cancelled the label (200, or the parcel's status says so)",
    (S.LABELLED, S.CANCEL_REQUESTED): "Sendcloud queued the label's cancellation (202)",
    (S.CANCEL_REQUESTED, S.CANCELLED): "the parcel's status confirms the cancellation",
    (S.CANCEL_REQUESTED, S.LABELLED): "the parcel moved on: the label was not cancelled",
    (S.CANCELLED, S.QUEUED): "a re-push with labels of a cancelled order (a retry)",
}
#: The only ways out of LABELLED: towards a cancellation, never back towards a label request.
CANCEL_STATES = {S.CANCEL_REQUESTED, S.CANCELLED}

PAIRS = [(a, b) for a, b in itertools.product(ShipmentState, repeat=2) if a != b]


def shipment_in(shop: Shop, state: str) -> OrderShipment:
    order = OrderFactory(shop=shop)
    return OrderShipment.objects.create(
        order=order,
        shop=shop,
        state=state,
        label_file="labels/acme/kept.pdf" if state == S.LABELLED else "",
        tracking_number="3STEST1" if state == S.LABELLED else "",
    )


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_move_makes_exactly_the_moves_of_the_state_machine(shop: Shop, source: str, target: str) -> None:
    row = shipment_in(shop, source)
    rows = OrderShipment.objects.filter(pk=row.pk)

    if (source, target) in ALLOWED:
        assert rows.move(source=[source], target=target) == 1
        assert rows.get().state == target
    else:
        with pytest.raises(IllegalTransition):
            rows.move(source=[source], target=target)
        assert rows.get().state == source


@pytest.mark.parametrize("target", [s for s in ShipmentState if s != S.LABELLED and s not in CANCEL_STATES])
def test_a_labelled_order_keeps_its_label_whatever_is_asked(shop: Shop, target: str) -> None:
    """Not even a move listed together with other sources may take a labelled order out of LABELLED
    (other than towards cancelling its label, which is not a label request)."""
    row = shipment_in(shop, S.LABELLED)
    sources = [S.LABELLED, *(s for s in ShipmentState if target in dict.fromkeys(b for a, b in ALLOWED if a == s))]

    with pytest.raises(IllegalTransition):
        OrderShipment.objects.filter(pk=row.pk).move(source=sources, target=target)

    row.refresh_from_db()
    assert (row.state, row.label_file.name, row.tracking_number) == (S.LABELLED, "labels/acme/kept.pdf", "3STEST1")


def test_move_changes_only_rows_in_an_expected_state(shop: Shop) -> None:
    """The compare-and-set: a duplicate task that finds the rows moved on changes nothing."""
    queued, pushed = shipment_in(shop, S.QUEUED), shipment_in(shop, S.PUSHED)
    both = OrderShipment.objects.filter(pk__in=[queued.pk, pushed.pk])
    before = OrderShipment.objects.get(pk=pushed.pk).state_changed_at

    assert both.move(source=[S.QUEUED], target=S.PUSHING) == 1
    assert both.move(source=[S.QUEUED], target=S.PUSHING) == 0

    assert OrderShipment.objects.get(pk=queued.pk).state == S.PUSHING
    untouched = OrderShipment.objects.get(pk=pushed.pk)
    assert (untouched.state, untouched.state_changed_at) == (S.PUSHED, before)


def test_move_stamps_the_time_of_the_change_and_writes_the_fields_given(shop: Shop) -> None:
    row = shipment_in(shop, S.PUSHING)
    old = OrderShipment.objects.get(pk=row.pk)

    OrderShipment.objects.filter(pk=row.pk).move(source=[S.PUSHING], target=S.FAILED, last_error="refused")

    moved = OrderShipment.objects.get(pk=row.pk)
    assert moved.last_error == "refused"
    assert moved.state_changed_at > old.state_changed_at
    assert moved.updated_at > old.updated_at
