"""factory_boy factories shared by every test module."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from sendcloud_integration.models import SendcloudIntegration
from webshop.models import ApiToken, Order, OrderLine, Scope, ShippingAddress, Shop


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"shop-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class SendcloudIntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SendcloudIntegration

    shop = factory.SubFactory(ShopFactory)
    public_key = "sandbox-public"
    secret_key = "sandbox-secret"
    integration_id = 1001
    sender_address_id = None
    shipping_option_code = "postnl:standard"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order
        skip_postgeneration_save = True

    shop = factory.SubFactory(ShopFactory)
    order_number = factory.Sequence(lambda n: f"ORD-{n + 1000:05d}")
    type = Order.Type.CHECKOUT
    status = Order.Status.PAID
    payment_status = "paid"
    currency = "EUR"
    created_at = factory.LazyFunction(timezone.now)
    customer_name = "Jan Jansen"
    customer_email = "jan@example.com"
    customer_phone = "+31612345678"

    @factory.post_generation
    def address(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        """Pass ``address=False`` for an order without a shipping address, or a dict of overrides."""
        if not create or extracted is False:
            return
        fields = {
            "street": "Stationsstraat",
            "house_number": "12",
            "postal_code": "1012AB",
            "city": "Amsterdam",
            "country": "NL",
        }
        if isinstance(extracted, dict):
            fields.update(extracted)
        ShippingAddress.objects.create(order=self, **fields)

    @factory.post_generation
    def lines(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        """Pass ``lines=[{...}, ...]`` to replace the default single line."""
        if not create:
            return
        specs = extracted if extracted is not None else [{}]
        for position, spec in enumerate(specs):
            fields = {
                "sku": f"SKU-{position}",
                "name": "T-shirt red M",
                "quantity": 2,
                "unit_price": Decimal("19.95"),
                "weight_kg": Decimal("0.250"),
            }
            fields.update(spec)
            OrderLine.objects.create(order=self, position=position, **fields)


def issue_token(shop: Shop, *, scopes: list[str] | None = None, name: str = "test") -> str:
    """Create a token for ``shop`` and return its raw value (what a client sends)."""
    return ApiToken.issue(shop=shop, name=name, scopes=scopes if scopes is not None else [Scope.SHIPMENTS_PUSH]).raw
