"""The Print page in a real browser: staff open it from the batch, see the profile, ask for ZPL, watch it build."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User

from sendcloud_integration.models import BatchStatus, PrinterProfile, ShipmentState
from tests.admin.conftest import PASSWORD, make_batch, ship
from tests.admin.test_browser import ARTIFACTS, CHROMIUM, chromium_page
from tests.api.test_labels_pdf import label_pdf
from tests.factories import OrderFactory, SendcloudIntegrationFactory, ShopFactory

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}: run .ci/install-browser"),
    pytest.mark.django_db(transaction=True),
]


def test_staff_print_a_batch_from_its_page(live_server: Any, settings: Any, tmp_path: Path) -> None:
    pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")
    settings.MEDIA_ROOT = str(tmp_path)
    shop = ShopFactory(slug="acme", name="Acme")
    SendcloudIntegrationFactory(shop=shop)
    PrinterProfile.objects.create(shop=shop, label_format="pdf", paper_size="A6", sort="first_sku")
    batch = make_batch(shop, create_label=True, status=BatchStatus.COMPLETED, queued_orders=2)
    for number in ("ORD-1", "ORD-2"):
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"{number}.pdf").write_bytes(label_pdf(number))
        ship(
            OrderFactory(shop=shop, order_number=number),
            ShipmentState.LABELLED,
            batch=batch,
            label_file=f"labels/{number}.pdf",
        )
    User.objects.create_superuser("staff", "staff@example.com", PASSWORD)

    with mock.patch("sendcloud_integration.pipeline.dispatch.build_batch_document") as build, chromium_page() as page:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/sendcloud_integration/pushbatch/{batch.pk}/change/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.get_by_role("link", name="Print…").click()
        page.wait_for_selector(".sc-print")
        assert "PDF A6 · First SKU (pick order), then order number" in page.locator(".sc-profile").inner_text()
        page.get_by_role("link", name="ZPL", exact=True).click()  # not stored yet: back here, being built
        page.screenshot(path=str(ARTIFACTS / "admin-print-building.png"), full_page=True)
        page.wait_for_selector(".sc-document.sc-building")
        text = page.locator("#content-main").inner_text()
        assert "The ZPL document is being built" in page.content()
        assert "0% · 0/0" in text
        assert "Build again" not in text  # only for a stored or failed document
        page.screenshot(path=str(ARTIFACTS / "admin-print-building.png"), full_page=True)
    build.assert_called_once()
