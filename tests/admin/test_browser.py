"""End to end in a real browser: log in, filter failed orders, re-push two, confirm, see the batch.

Drives Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/install-browser``) through
Playwright's sync API against pytest-django's ``live_server``. Screenshots of each step go to
``test-artifacts/`` (gitignored) for CI to keep. Nothing reaches Celery: ``start_batch`` is patched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from sendcloud_integration.models import OrderShipment, PushBatch, ShipmentState, StartedBy
from tests.admin.conftest import PASSWORD, make_batch, ship
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}: run .ci/install-browser"),
    pytest.mark.django_db(transaction=True),
]


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A fresh headless Chromium page. A context manager rather than a fixture on purpose: the ORM
    must not be used while it is open (Playwright's sync API runs an event loop in this thread, in
    which Django refuses database calls), so the test sets up and checks its data outside it.
    """
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"admin-repush-{name}.png"), full_page=True)


def test_repush_two_failed_orders_in_the_browser(live_server: Any) -> None:
    pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")
    shop = ShopFactory(slug="acme", name="Acme")
    SendcloudIntegrationFactory(shop=shop)
    earlier = make_batch(shop, status="completed_with_errors")
    failed = [OrderFactory(shop=shop, order_number=f"ORD-FAIL-{n}") for n in range(1, 4)]
    for order in failed:
        ship(order, ShipmentState.FAILED, batch=earlier)
    ship(OrderFactory(shop=shop, order_number="ORD-DONE"), ShipmentState.PUSHED, batch=earlier)
    User.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    chosen = failed[:2]

    chosen_ids = [order.pk for order in chosen]

    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch") as start_batch, chromium_page() as page:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        assert page.get_by_role("link", name="Dashboard").count() >= 1
        shot(page, "1-index")

        page.goto(f"{live_server.url}/admin/webshop/order/")
        page.locator("#changelist-filter").get_by_role("link", name="Failed", exact=True).click()
        page.wait_for_url("**/admin/webshop/order/?state=failed")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 3
        assert "ORD-DONE" not in page.content()
        shot(page, "2-failed-orders")

        for pk in chosen_ids:
            page.check(f"input[name=_selected_action][value='{pk}']")
        page.select_option("select[name=action]", "repush_orders")
        page.get_by_role("button", name="Go").click()

        page.wait_for_selector("body.sc-repush-confirmation")
        confirmation = page.locator("#content-main").inner_text()
        assert "Retry (2)" in confirmation
        assert "New (0)" in confirmation
        assert "Skipped (0)" in confirmation
        assert "ORD-FAIL-1" in confirmation
        assert "ORD-FAIL-2" in confirmation
        assert "ORD-FAIL-3" not in confirmation
        shot(page, "3-confirmation")

        page.get_by_role("button", name="Yes, push to Sendcloud").click()
        page.wait_for_selector("body.sc-repush-result")
        result = page.locator("#content-main").inner_text()
        assert "2 orders queued for SendCloud in 1 chunk." in result
        assert "Retry (2)" in result
        assert page.locator(".messagelist .success").count() == 1
        shot(page, "4-result")

        page.locator("a.sc-batch-link").click()
        page.wait_for_url("**/admin/sendcloud_integration/pushbatch/*/change/")
        batch_page = page.locator("#content-main").inner_text()
        assert "Queued" in batch_page
        assert "staff user staff" in batch_page
        shot(page, "5-batch")

        with page.expect_response(lambda r: "/dashboard/progress.json?" in r.url and r.ok, timeout=10_000):
            page.get_by_role("link", name="Dashboard").first.click()  # then it polls the running batch
        page.wait_for_selector("body.sc-dashboard")
        assert page.locator('tr.sc-state[data-state="queued"] .sc-count').inner_text() == "2"
        assert page.locator('tr.sc-state[data-state="failed"] .sc-count').inner_text() == "1"
        # The queued batch keeps being polled; the page shows its progress bar.
        assert page.locator("tr.sc-batch.sc-active .sc-progress").count() == 1
        shot(page, "6-dashboard")

    # Back outside the browser's event loop: check what the clicks did.
    batch = PushBatch.objects.exclude(pk=earlier.pk).get()
    assert (batch.started_by_kind, batch.queued_orders, batch.retry_orders) == (StartedBy.STAFF, 2, 2)
    start_batch.assert_called_once_with(batch.pk)
    states = dict(OrderShipment.objects.filter(order__in=failed).values_list("order__order_number", "state"))
    assert states == {"ORD-FAIL-1": "queued", "ORD-FAIL-2": "queued", "ORD-FAIL-3": "failed"}
    for n in range(1, 7):
        assert any(ARTIFACTS.glob(f"admin-repush-{n}-*.png"))
    assert os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") is None  # the test did not switch the guard off
