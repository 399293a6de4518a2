"""Whether an order's shipping data may change now: a question the shop domain asks but cannot answer.

An order's shipping data (its service point, customs data, shipping option, weight and parcels) must not
change while a carrier integration is sending it or once it has a label: the label would be checked,
requested or declared with data other than what was sent. Only the integration knows which orders that
holds for, and ``webshop`` knows nothing of any integration (import-linter: "the shop domain knows nothing
of Sendcloud"). So the integration registers a :data:`LockedOrders` here when its app is ready
(``sendcloud_integration/apps.py``), and the shop's own writes (the order import) ask :func:`locked_orders`.

The rule itself lives with the integration, in one place, applied by its own doors too
(``sendcloud_integration/shipping/locks.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

#: Given order ids, the ones whose shipping data may not change now, each with why (a phrase for a person,
#: e.g. "a batch is sending it to Sendcloud"). Ids it does not know are left out.
LockedOrders = Callable[[Collection[int]], Mapping[int, str]]

_providers: list[LockedOrders] = []


def register(provider: LockedOrders) -> None:
    """Add a provider (once: registering the same one again changes nothing)."""
    if provider not in _providers:
        _providers.append(provider)


def locked_orders(order_ids: Collection[int]) -> dict[int, str]:
    """The orders among ``order_ids`` whose shipping data may not change now, and why (every provider asked)."""
    if not order_ids:
        return {}
    locked: dict[int, str] = {}
    for provider in _providers:
        for order_id, reason in provider(order_ids).items():
            locked.setdefault(order_id, reason)
    return locked
