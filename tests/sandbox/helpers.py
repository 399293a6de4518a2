"""Helpers shared by the sandbox tests: a tiny API client and an order factory."""

from __future__ import annotations

import copy
from typing import Any

import requests

from sendcloud_sandbox import SandboxServer

AUTH = ("sandbox-public", "sandbox-secret")
INTEGRATION_ID = 1001


def make_order(n: int, **overrides: Any) -> dict[str, Any]:
    """A minimal valid v3 order (the spec's CreateBasicOrder example), numbered ``n``."""
    order: dict[str, Any] = {
        "order_id": f"ORD-{n}",
        "order_number": f"N-{n:05d}",
        "order_details": {
            "integration": {"id": INTEGRATION_ID},
            "status": {"code": "fulfilled", "message": "Fulfilled"},
            "order_created_at": "2026-02-27T10:00:00.556Z",
            "order_items": [
                {
                    "item_id": f"item-{n}",
                    "name": "Cylinder candle",
                    "quantity": 2,
                    "unit_price": {"value": 3.5, "currency": "EUR"},
                    "total_price": {"value": 7.0, "currency": "EUR"},
                    "measurement": {"weight": {"value": 250, "unit": "g"}},
                }
            ],
        },
        "payment_details": {
            "total_price": {"value": 7.0, "currency": "EUR"},
            "status": {"code": "paid", "message": "Paid"},
        },
        "shipping_address": {
            "name": "John Doe",
            "address_line_1": "Lansdown Glade",
            "house_number": "15",
            "postal_code": "5341XT",
            "city": "Oss",
            "country_code": "NL",
        },
    }
    order.update(copy.deepcopy(overrides))
    return order


class Api:
    """A client bound to one sandbox, so tests read like the calls they make."""

    def __init__(self, server: SandboxServer, auth: tuple[str, str] | None = AUTH) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.auth = auth

    def url(self, path: str) -> str:
        return f"{self.server.url}/v3{path}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.get(self.url(path), **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.post(self.url(path), json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.delete(self.url(path), **kwargs)

    def push(self, orders: list[dict[str, Any]]) -> requests.Response:
        return self.post("/orders", orders)

    def labels(self, *selectors: dict[str, Any], **extra: Any) -> requests.Response:
        return self.post(
            "/orders/create-labels-async",
            {"integration_id": INTEGRATION_ID, "orders": list(selectors), **extra},
        )

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.server.base_url}/_sandbox{path}", json=body, timeout=10)

    def state(self) -> dict[str, Any]:
        response = self.admin("GET", "/state")
        assert response.status_code == 200
        return response.json()
