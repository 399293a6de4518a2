"""Every row-locking query of the app, in one place (as Saleor does), each with its lock strength.

Pushes lock the *order* rows, which always exist, rather than the shipment rows, which do not exist
yet for an order that was never pushed: two concurrent pushes of overlapping ids then serialise on
the orders they share. ``FOR NO KEY UPDATE`` is enough (nothing changes a key) and, unlike ``FOR
UPDATE``, does not block the workers' inserts that merely reference those orders. Rows are locked in
id order so that two pushes can never deadlock each other.
"""

from __future__ import annotations

from collections.abc import Collection

from sendcloud_integration.lookups import Ids  # importing it registers ``any_of``
from sendcloud_integration.push.classification import OrderFacts
from webshop.models import Order, Shop


def lock_orders_for_push(*, shop: Shop, order_ids: Collection[int]) -> list[int]:
    """Lock the shop's orders among ``order_ids`` until the transaction ends; returns their ids.

    Only the locking happens here, on purpose. When this statement has to wait for another push's
    transaction, PostgreSQL (READ COMMITTED) re-checks the locked order rows once that one commits,
    but any row joined to them would still be the version from before the wait — a shipment just
    queued by the other push would look untouched. So the caller reads the shipments afterwards,
    in a new statement that sees everything committed up to then.
    """
    return list(
        Order.objects.filter(shop=shop, pk__any_of=Ids(order_ids))
        .order_by("pk")
        .select_for_update(no_key=True)
        .values_list("pk", flat=True)
    )


def facts_for_classification(*, order_ids: Collection[int]) -> list[OrderFacts]:
    """What classification reads about the locked orders, as plain tuples, in one query."""
    rows = Order.objects.filter(pk__any_of=Ids(order_ids)).values_list(
        "pk",
        "order_number",
        "type",
        "status",
        "shipping_address__id",
        "shipment__state",
        "shipment__batch_id",
        "shipment__labelled_at",
        "shipment__cancelled_at",
    )
    return [OrderFacts(*row) for row in rows]
