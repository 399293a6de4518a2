"""The staff dashboard: orders per state, failures by reason, recent batches, bounded queries, live progress."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sendcloud_integration.models import BatchStatus, ShipmentState
from sendcloud_integration.selectors import dashboard
from tests.admin.conftest import login, make_batch, ship
from tests.factories import OrderFactory, ShopFactory
from webshop.models import Shop

pytestmark = pytest.mark.django_db


def url() -> str:
    return reverse("admin:sendcloud_integration_dashboard")


def populate(shop: Shop, *, failures: int = 3) -> None:
    """Orders in several states, failures with a few reasons, a finished and a running batch."""
    done = make_batch(shop, status=BatchStatus.COMPLETED_WITH_ERRORS, queued_orders=5, pushed_count=3, failed_count=2)
    running = make_batch(shop, status=BatchStatus.RUNNING, queued_orders=2, total_chunks=1)
    for _ in range(3):
        ship(OrderFactory(shop=shop), ShipmentState.PUSHED, batch=done)
    for i in range(failures):
        ship(OrderFactory(shop=shop), ShipmentState.FAILED, batch=done, last_error=f"reason {i % 2}")
    ship(OrderFactory(shop=shop), ShipmentState.FAILED, batch=done, failed_phase="label", last_error="no label")
    ship(OrderFactory(shop=shop), ShipmentState.QUEUED, batch=running)
    ship(OrderFactory(shop=shop), ShipmentState.PUSHED, batch=running)
    OrderFactory(shop=shop)  # never sent


def test_counts_per_state_failures_and_batches(superuser: User, shop: Shop) -> None:
    populate(shop)
    response = login(superuser).get(url())
    assert response.status_code == 200
    [overview] = response.context["overviews"]
    counts = {row.state: row.count for row in overview.states}
    assert counts == {
        "not_sent": 1,
        "queued": 1,
        "pushing": 0,
        "pushed": 4,
        "label_queued": 0,
        "labelling": 0,
        "labelled": 0,
        "cancel_requested": 0,
        "cancelled": 0,
        "failed": 4,
    }
    assert overview.total == 10
    assert [(f.phase, f.error, f.count) for f in overview.failures] == [
        ("push", "reason 0", 2),
        ("label", "no label", 1),
        ("push", "reason 1", 1),
    ]
    assert [p.batch.status for p in overview.batches] == [BatchStatus.RUNNING, BatchStatus.COMPLETED_WITH_ERRORS]
    running = overview.batches[0]
    assert (running.counts.done, running.counts.queued, running.percent, running.counts.in_flight) == (1, 2, 50, 1)

    html = response.content.decode()
    assert 'data-state="failed"' in html
    assert f"?shop__id__exact={shop.pk}&amp;state=failed" in html
    assert "reason 0" in html
    assert "no label" in html
    assert 'aria-valuenow="50"' in html
    assert f'"ids": ["{overview.batches[0].batch.pk}"]' in html  # polls the running batch
    assert "sendcloud_integration/dashboard.js" in html


def test_failures_are_the_top_ten(shop: Shop) -> None:
    for i in range(13):
        for _ in range(i + 1):
            ship(OrderFactory(shop=shop), ShipmentState.FAILED, last_error=f"error {i:02d}")
    [overview] = dashboard.shop_overviews()
    assert [f.error for f in overview.failures] == [f"error {i:02d}" for i in range(12, 2, -1)]


def test_no_polling_when_nothing_runs(superuser: User, shop: Shop) -> None:
    make_batch(shop, status=BatchStatus.COMPLETED)
    html = login(superuser).get(url()).content.decode()
    assert '"ids": []' in html  # nothing to poll
    assert 'http-equiv="refresh"' not in html


def test_queries_do_not_grow_with_shops_or_batches(superuser: User, shop: Shop) -> None:
    client = login(superuser)
    populate(shop)
    client.get(url())
    with CaptureQueriesContext(connection) as few:
        client.get(url())
    for n in range(4):
        populate(ShopFactory(slug=f"more-{n}"), failures=5)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url())
    assert len(response.context["overviews"]) == 5
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_shop_picker_limits_to_one_shop(superuser: User, shop: Shop, other_shop: Shop) -> None:
    populate(shop)
    response = login(superuser).get(url(), {"shop": other_shop.pk})
    assert [o.shop for o in response.context["overviews"]] == [other_shop]


def test_progress_json(superuser: User, shop: Shop) -> None:
    running = make_batch(shop, status=BatchStatus.RUNNING, queued_orders=2)
    ship(OrderFactory(shop=shop), ShipmentState.FAILED, batch=running)
    ship(OrderFactory(shop=shop), ShipmentState.PUSHING, batch=running)
    response = login(superuser).get(
        reverse("admin:sendcloud_integration_dashboard_progress"), {"id": [str(running.pk), "junk"]}
    )
    assert response.status_code == 200
    [batch] = response.json()["batches"]
    assert batch["id"] == str(running.pk)
    assert (batch["active"], batch["percent"], batch["failed"], batch["in_flight"]) == (True, 50, 1, 1)
    assert (batch["ok_percent"], batch["failed_percent"]) == (0, 50)


def test_dashboard_needs_batch_view_permission(db: None, shop: Shop) -> None:
    nobody = User.objects.create_user("plain", "p@example.com", "pw-plain-123456", is_staff=True)
    client = login(nobody)
    assert client.get(url()).status_code == 403
    assert client.get(reverse("admin:sendcloud_integration_dashboard_progress")).status_code == 403
    assert "Dashboard" not in client.get("/admin/").content.decode()


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(url())
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_index_links_to_the_dashboard(viewer: User) -> None:
    html = login(viewer).get("/admin/").content.decode()
    assert f'href="{url()}"' in html
