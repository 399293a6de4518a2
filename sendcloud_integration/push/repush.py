"""Re-pushing a selection of orders that may span shops: one ``push_orders`` per shop, in a fixed order.

Staff select orders in the admin across shops; a push belongs to one shop, so the selection is grouped
per shop and each group goes through the very ``push_orders`` the REST endpoint calls — first as a dry
run for the confirmation page, then for real — so staff see exactly the API's classification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sendcloud_integration.exceptions import PushRefused
from sendcloud_integration.push.services import Actor, PushResult, push_orders
from webshop.models import Order, Shop


@dataclass
class ShopPush:
    """The orders of one shop in a re-push, and what the service made of them."""

    shop: Shop
    order_ids: list[int]
    result: PushResult | None = None
    error: str = ""

    @property
    def new(self) -> list[str]:
        return self.result.new if self.result else []

    @property
    def retry(self) -> list[str]:
        return self.result.retry if self.result else []

    @property
    def skipped(self) -> list[str]:
        return self.result.skipped if self.result else []


@dataclass
class RepushPlan:
    create_label: bool
    shops: list[ShopPush] = field(default_factory=list)

    @property
    def queued_count(self) -> int:
        return sum(len(push.result.queued) for push in self.shops if push.result)

    @property
    def pushable(self) -> bool:
        return any(push.result is not None for push in self.shops)


def group_by_shop(order_ids: Sequence[int]) -> list[ShopPush]:
    """The selected orders grouped per shop (a push belongs to one shop), ids ascending: two queries.

    The order is fixed so that the confirmation's dry run and the push itself see the ids in the same
    order and therefore produce the same lists.
    """
    by_shop: dict[int, list[int]] = {}
    for pk, shop_id in (
        Order.objects.filter(pk__in=list(order_ids)).order_by("shop_id", "pk").values_list("pk", "shop_id")
    ):
        by_shop.setdefault(shop_id, []).append(pk)
    shops = Shop.objects.in_bulk(list(by_shop))
    return [ShopPush(shop=shops[shop_id], order_ids=ids) for shop_id, ids in by_shop.items()]


def repush_orders(*, order_ids: Sequence[int], create_label: bool, actor: Actor, dry_run: bool) -> RepushPlan:
    """Run ``push_orders`` per shop (dry or for real); a shop the service refuses keeps its reason."""
    plan = RepushPlan(create_label=create_label, shops=group_by_shop(order_ids))
    for push in plan.shops:
        try:
            push.result = push_orders(
                shop=push.shop, order_ids=push.order_ids, create_label=create_label, actor=actor, dry_run=dry_run
            )
        except PushRefused as exc:  # IntegrationUnavailable, NoOrdersFound
            push.error = exc.message
    return plan
