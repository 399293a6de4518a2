"""The re-push actions: offered only with the permission, a dry-run confirmation, then the same service."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from sendcloud_integration.admin import repush
from sendcloud_integration.exceptions import NoOrdersFound
from sendcloud_integration.models import OrderShipment, PushBatch, SendcloudIntegration, ShipmentState, StartedBy
from sendcloud_integration.push.services import PushResult, push_orders
from tests.admin.conftest import login, make_batch, ship
from tests.factories import OrderFactory, SendcloudIntegrationFactory
from webshop.models import Order, Shop

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/webshop/order/"


@pytest.fixture
def start_batch() -> Iterator[mock.MagicMock]:
    """Nothing is dispatched to Celery; the test sees which batches would have been started."""
    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch") as started:
        yield started


@pytest.fixture
def orders(shop: Shop, integration: SendcloudIntegration) -> dict[str, Order]:
    """One order of each kind the classification tells apart."""
    earlier = make_batch(shop, status="completed_with_errors")
    made = {
        "failed_1": OrderFactory(shop=shop, order_number="ORD-F1"),
        "failed_2": OrderFactory(shop=shop, order_number="ORD-F2"),
        "new": OrderFactory(shop=shop, order_number="ORD-N1"),
        "pushed": OrderFactory(shop=shop, order_number="ORD-P1"),
        "quote": OrderFactory(shop=shop, order_number="ORD-Q1", type=Order.Type.QUOTE),
        "queued": OrderFactory(shop=shop, order_number="ORD-R1"),
    }
    ship(made["failed_1"], ShipmentState.FAILED, batch=earlier)
    ship(made["failed_2"], ShipmentState.FAILED, batch=earlier, failed_phase="label", last_error="carrier said no")
    ship(made["pushed"], ShipmentState.PUSHED, batch=earlier)
    ship(made["queued"], ShipmentState.QUEUED, batch=earlier)
    return made


def post_action(client: Client, action: str, ids: list[int], **extra: str) -> Any:
    return client.post(CHANGELIST, {"action": action, "_selected_action": [str(pk) for pk in ids], **extra})


def action_names(client: Client) -> list[str]:
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    form = response.context["action_form"]
    if form is None:  # no action at all is offered to this user
        return []
    return [name for name, _ in form.fields["action"].choices if name]


def recording_push() -> tuple[list[PushResult], Callable[..., PushResult]]:
    results: list[PushResult] = []

    def record(**kwargs: Any) -> PushResult:
        result = push_orders(**kwargs)
        results.append(result)
        return result

    return results, record


# --- permission ---------------------------------------------------------------------------------------------


def test_actions_offered_to_superuser_and_repushers(superuser: User, repusher: User, orders: object) -> None:
    for user in (superuser, repusher):
        names = action_names(login(user))
        assert "repush_orders" in names
        assert "repush_orders_with_labels" in names


def test_actions_missing_without_permission(viewer: User, orders: object) -> None:
    client = login(viewer)
    names = action_names(client)
    assert "repush_orders" not in names
    assert "repush_orders_with_labels" not in names
    assert b"Re-push to Sendcloud" not in client.get(CHANGELIST).content


@pytest.fixture
def editor(db: None) -> User:
    """Staff who may edit and delete orders (so other actions are offered) but not re-push."""
    from tests.admin.conftest import VIEW_PERMISSIONS, grant

    user = User.objects.create_user("editor", "editor@example.com", "pw-editor-123456", is_staff=True)
    return grant(user, (*VIEW_PERMISSIONS, "webshop.change_order", "webshop.delete_order"))


@pytest.mark.parametrize("action", ["repush_orders", "repush_orders_with_labels"])
@pytest.mark.parametrize("confirm", [False, True])
@pytest.mark.parametrize("who", ["viewer", "editor"])
def test_forged_post_without_permission_is_refused(
    request: pytest.FixtureRequest,
    orders: dict[str, Order],
    start_batch: mock.MagicMock,
    action: str,
    confirm: bool,
    who: str,
) -> None:
    client = login(request.getfixturevalue(who))
    ids = [orders["failed_1"].pk, orders["new"].pk]
    with mock.patch("sendcloud_integration.push.repush.push_orders") as service:
        response = post_action(client, action, ids, **({"post": "yes"} if confirm else {}))
    service.assert_not_called()
    if who == "editor":
        # Actions exist for this user, but not this one: Django refuses the unknown action name.
        assert response.status_code == 302
        assert "No action selected." in [str(m) for m in get_messages(response.wsgi_request)]
    else:
        # No action at all is offered: the POST just shows the list again.
        assert response.status_code == 200
        assert response.templates[0].name == "admin/change_list.html"
    assert PushBatch.objects.count() == 1  # only the fixture's earlier batch
    assert OrderShipment.objects.get(order=orders["failed_1"]).state == ShipmentState.FAILED
    assert not OrderShipment.objects.filter(order=orders["new"]).exists()
    start_batch.assert_not_called()


def test_editor_sees_other_actions_but_not_repush(editor: User, orders: object) -> None:
    names = action_names(login(editor))
    assert "delete_selected" in names
    assert not {"repush_orders", "repush_orders_with_labels"} & set(names)


def test_action_body_refuses_users_without_permission_even_if_called(
    viewer: User, orders: dict[str, Order], rf: Any
) -> None:
    """Defence in depth: the action function itself checks the permission."""
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied

    request = rf.post(CHANGELIST, {"post": "yes"})
    request.user = viewer
    model_admin = admin.site._registry[Order]
    with pytest.raises(PermissionDenied):
        model_admin.repush_orders(request, Order.objects.all())


def test_result_page_needs_the_permission(viewer: User) -> None:
    response = login(viewer).get(reverse("admin:sendcloud_integration_repush_result", args=["abc"]))
    assert response.status_code == 403


# --- confirmation and push ---------------------------------------------------------------------------------


def test_confirmation_preview_matches_what_is_queued(
    repusher: User,
    orders: dict[str, Order],
    start_batch: mock.MagicMock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = login(repusher)
    ids = [order.pk for order in orders.values()]

    response = post_action(client, "repush_orders", ids)
    assert response.status_code == 200
    assert response.templates[0].name == "sendcloud_integration/admin/repush_confirmation.html"
    plan = response.context["plan"]
    [preview] = [push.result for push in plan.shops]
    assert preview.dry_run
    assert preview.new == ["ORD-F1", "ORD-F2", "ORD-N1"][2:]  # only the never-pushed order is new
    assert preview.retry == ["ORD-F1", "ORD-F2"]
    assert sorted(preview.skipped) == sorted(
        [
            "ORD-P1: already pushed to SendCloud",
            "ORD-Q1: quote orders cannot be shipped",
            f"ORD-R1: already queued in batch {OrderShipment.objects.get(order=orders['queued']).batch_id}",
        ]
    )
    html = response.content.decode()
    for line in [*preview.new, *preview.retry, *preview.skipped]:
        assert line in html
    assert PushBatch.objects.count() == 1, "the preview must not create a batch"
    assert OrderShipment.objects.get(order=orders["failed_1"]).state == ShipmentState.FAILED
    start_batch.assert_not_called()

    results, record = recording_push()
    with (
        mock.patch("sendcloud_integration.push.repush.push_orders", side_effect=record),
        django_capture_on_commit_callbacks(execute=True),
    ):
        confirmed = post_action(client, "repush_orders", ids, post="yes")
    assert confirmed.status_code == 302
    [result] = results
    assert not result.dry_run
    assert (result.new, result.retry, result.skipped) == (preview.new, preview.retry, preview.skipped)
    assert [q.order_number for q in result.queued] == [q.order_number for q in preview.queued]

    batch = PushBatch.objects.get(pk=result.batch_id)
    assert batch.started_by_kind == StartedBy.STAFF
    assert batch.started_by_user == repusher
    assert batch.create_label is False
    start_batch.assert_called_once_with(batch.pk)
    for key in ("failed_1", "failed_2", "new"):
        shipment = OrderShipment.objects.get(order=orders[key])
        assert (shipment.state, shipment.batch_id) == (ShipmentState.QUEUED, batch.pk)

    # Post/redirect/get: the result page shows the same lists and links to the batch.
    assert confirmed["Location"].startswith("/admin/sendcloud_integration/pushbatch/repush/")
    page = client.get(confirmed["Location"])
    assert page.status_code == 200
    [shop_outcome] = page.context["outcome"]["shops"]
    assert (shop_outcome["new"], shop_outcome["retry"], shop_outcome["skipped"]) == (
        result.new,
        result.retry,
        result.skipped,
    )
    batch_url = reverse("admin:sendcloud_integration_pushbatch_change", args=[batch.pk])
    assert batch_url in page.content.decode()
    assert any(batch_url in str(m) for m in page.context["messages"])
    # Reloading the result page pushes nothing again.
    assert client.get(confirmed["Location"]).status_code == 200
    assert PushBatch.objects.count() == 2


def test_repush_with_labels_creates_a_label_batch(
    superuser: User, orders: dict[str, Order], start_batch: mock.MagicMock, django_capture_on_commit_callbacks: Any
) -> None:
    client = login(superuser)
    ids = [orders["pushed"].pk, orders["failed_1"].pk]
    preview = post_action(client, "repush_orders_with_labels", ids)
    [push] = preview.context["plan"].shops
    # In Sendcloud without a label: label work only, counted as new (docs/api.md).
    assert (push.result.new, push.result.retry, push.result.skipped) == (["ORD-F1", "ORD-P1"][1:], ["ORD-F1"], [])
    assert "labels would be created" in preview.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        post_action(client, "repush_orders_with_labels", ids, post="yes")
    batch = PushBatch.objects.exclude(pk__in=[orders["pushed"].shipment.batch_id]).get()
    assert batch.create_label is True
    assert batch.queued_orders == 2
    start_batch.assert_called_once_with(batch.pk)


def test_orders_of_several_shops_are_pushed_per_shop(
    repusher: User,
    shop: Shop,
    other_shop: Shop,
    integration: SendcloudIntegration,
    start_batch: mock.MagicMock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    SendcloudIntegrationFactory(shop=other_shop)
    mine = [OrderFactory(shop=shop), OrderFactory(shop=shop)]
    theirs = [OrderFactory(shop=other_shop)]
    client = login(repusher)
    ids = [o.pk for o in (*mine, *theirs)]

    preview = post_action(client, "repush_orders", ids)
    assert [(p.shop, p.order_ids) for p in preview.context["plan"].shops] == [
        (shop, [o.pk for o in mine]),
        (other_shop, [theirs[0].pk]),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        post_action(client, "repush_orders", ids, post="yes")
    batches = {b.shop_id: b for b in PushBatch.objects.all()}
    assert set(batches) == {shop.pk, other_shop.pk}
    assert batches[shop.pk].queued_orders == 2
    assert batches[other_shop.pk].queued_orders == 1
    assert start_batch.call_count == 2


def test_shop_without_integration_is_an_error_message_and_others_still_push(
    repusher: User,
    shop: Shop,
    other_shop: Shop,
    integration: SendcloudIntegration,
    start_batch: mock.MagicMock,
) -> None:
    ok = OrderFactory(shop=shop)
    stranded = OrderFactory(shop=other_shop)  # Globex has no Sendcloud integration
    client = login(repusher)

    preview = post_action(client, "repush_orders", [ok.pk, stranded.pk])
    assert preview.status_code == 200
    assert "Globex: This shop has no SendCloud integration configured." in [str(m) for m in preview.context["messages"]]
    assert "Will not be pushed: This shop has no SendCloud integration configured." in preview.content.decode()

    confirmed = post_action(client, "repush_orders", [ok.pk, stranded.pk], post="yes")
    page = client.get(confirmed["Location"])
    texts = [str(m) for m in page.context["messages"]]
    assert "Globex: This shop has no SendCloud integration configured." in texts
    assert PushBatch.objects.get().shop == shop
    assert not OrderShipment.objects.filter(order=stranded).exists()


def test_only_unusable_shops_go_back_to_the_list_with_the_error(
    repusher: User, other_shop: Shop, start_batch: mock.MagicMock
) -> None:
    order = OrderFactory(shop=other_shop)
    response = post_action(login(repusher), "repush_orders", [order.pk])
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Globex: This shop has no SendCloud integration configured."]


def test_no_orders_found_is_an_error_message(
    repusher: User, orders: dict[str, Order], start_batch: mock.MagicMock
) -> None:
    client = login(repusher)
    with mock.patch(
        "sendcloud_integration.push.repush.push_orders",
        side_effect=NoOrdersFound("None of the requested orders exist in this shop."),
    ):
        response = post_action(client, "repush_orders", [orders["new"].pk], post="yes")
    messages = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    assert ("error", "Acme: None of the requested orders exist in this shop.") in messages
    assert PushBatch.objects.count() == 1


def test_everything_skipped_pushes_nothing(
    repusher: User, orders: dict[str, Order], start_batch: mock.MagicMock
) -> None:
    client = login(repusher)
    ids = [orders["pushed"].pk, orders["quote"].pk]
    preview = post_action(client, "repush_orders", ids)
    assert "Every selected order would be skipped" in preview.content.decode()
    assert 'name="confirm"' not in preview.content.decode()
    confirmed = post_action(client, "repush_orders", ids, post="yes")
    page = client.get(confirmed["Location"])
    assert "No orders queued for SendCloud" in page.content.decode()
    assert PushBatch.objects.count() == 1
    start_batch.assert_not_called()


def test_selection_larger_than_the_api_limit_is_refused(
    repusher: User, orders: dict[str, Order], settings: Any, start_batch: mock.MagicMock
) -> None:
    settings.PUSH_MAX_ORDER_IDS = 2
    client = login(repusher)
    response = client.post(
        CHANGELIST,
        {"action": "repush_orders", "select_across": "1", "index": "0", "_selected_action": [str(orders["new"].pk)]},
    )
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Select at most 2 orders per re-push")


def test_result_page_for_an_unknown_key_redirects(repusher: User) -> None:
    response = login(repusher).get(reverse("admin:sendcloud_integration_repush_result", args=[uuid.uuid4().hex]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sendcloud_integration_pushbatch_changelist")


def test_repush_from_a_filtered_list_keeps_the_filter(
    repusher: User, orders: dict[str, Order], start_batch: mock.MagicMock
) -> None:
    """The confirmation posts back to the same filtered URL: the failed filter still applies."""
    client = login(repusher)
    ids = [orders["failed_1"].pk, orders["failed_2"].pk, orders["new"].pk]
    response = client.post(
        CHANGELIST + "?state=failed", {"action": "repush_orders", "_selected_action": [str(i) for i in ids]}
    )
    [push] = response.context["plan"].shops
    assert push.order_ids == [orders["failed_1"].pk, orders["failed_2"].pk]
    assert repush.REPUSH_PERMISSION == "sendcloud_integration.repush_ordershipment"
