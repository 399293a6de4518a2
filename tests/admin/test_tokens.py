"""API tokens in admin: the raw value is shown once at creation, the hash never; revoking works."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session

from tests.admin.conftest import login
from tests.factories import issue_token
from webshop.models import ApiToken, Scope, Shop

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/webshop/apitoken/"
RAW_TOKEN = re.compile(r"wms_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def test_creating_a_token_shows_the_raw_value_exactly_once(superuser: User, shop: Shop) -> None:
    client = login(superuser)
    response = client.post(
        CHANGELIST + "add/", {"shop": str(shop.pk), "name": "erp", "scopes": [Scope.SHIPMENTS_PUSH.value]}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    shown = RAW_TOKEN.findall(html)
    assert len(shown) == 1, "the raw token is shown once, on the answer to the add"
    raw = shown[0]
    token = ApiToken.objects.get()
    assert token.matches(raw)
    assert (token.name, token.scopes, token.shop) == ("erp", ["shipments:push"], shop)
    assert token.token_hash not in html

    # Never again: not on the list, not on the token's page, not on the next page view.
    for url in (CHANGELIST, f"{CHANGELIST}{token.pk}/change/", "/admin/"):
        page = client.get(url).content.decode()
        assert raw not in page
        assert token.token_hash not in page


def test_created_token_authenticates(superuser: User, shop: Shop, integration: object) -> None:
    client = login(superuser)
    response = client.post(
        CHANGELIST + "add/", {"shop": str(shop.pk), "name": "", "scopes": ["shipments:push"]}, follow=True
    )
    raw = RAW_TOKEN.search(response.content.decode())
    assert raw is not None
    api = client.get(
        "/api/services/webshop/v1/orders/sendcloud/shipments/batches/00000000-0000-0000-0000-000000000000",
        HTTP_AUTHORIZATION=f"Bearer {raw.group(0)}",
    )
    assert api.status_code == 404  # authenticated (not 401): the batch does not exist


def test_the_raw_token_is_never_stored_in_a_session_or_a_message(superuser: User, shop: Shop) -> None:
    """Shown on the answer to the add only: nothing in the database keeps it, even if that page is never read."""
    client = login(superuser)
    response = client.post(
        CHANGELIST + "add/", {"shop": str(shop.pk), "name": "erp", "scopes": ["shipments:push"]}, follow=True
    )
    raw = RAW_TOKEN.search(response.content.decode())
    assert raw is not None
    assert "no-store" in response["Cache-Control"]
    assert not [m for m in get_messages(response.wsgi_request) if raw.group(0) in str(m)]
    for session in Session.objects.all():
        assert raw.group(0) not in str(session.get_decoded())
        assert raw.group(0) not in session.session_data


def test_reloading_the_page_neither_shows_it_again_nor_makes_another_token(superuser: User, shop: Shop) -> None:
    client = login(superuser)
    posted = client.post(CHANGELIST + "add/", {"shop": str(shop.pk), "name": "erp", "scopes": ["shipments:push"]})
    assert posted.status_code == 302  # post/redirect/get: a reload of the page is a GET
    shown = client.get(posted["Location"])
    assert len(RAW_TOKEN.findall(shown.content.decode())) == 1
    again = client.get(posted["Location"], follow=True)
    assert not RAW_TOKEN.search(again.content.decode())
    assert "already shown once" in again.content.decode()
    assert ApiToken.objects.count() == 1


def test_another_staff_member_cannot_see_the_new_token(superuser: User, shop: Shop) -> None:
    posted = login(superuser).post(
        CHANGELIST + "add/", {"shop": str(shop.pk), "name": "erp", "scopes": ["shipments:push"]}
    )
    other = User.objects.create_superuser("other-admin", "other@example.com", "a-long-password-1")
    page = login(other).get(posted["Location"], follow=True)
    assert not RAW_TOKEN.search(page.content.decode())


def test_scopes_must_be_known(superuser: User, shop: Shop) -> None:
    response = login(superuser).post(CHANGELIST + "add/", {"shop": str(shop.pk), "scopes": ["orders:delete"]})
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_list_shows_prefix_scopes_last_use_and_revoked_never_the_hash(superuser: User, shop: Shop) -> None:
    raw = issue_token(shop, name="shop-sync")
    token = ApiToken.objects.get()
    html = login(superuser).get(CHANGELIST).content.decode()
    assert f"{token.prefix}…" in html
    assert "shipments:push" in html
    assert "shop-sync" in html
    assert token.token_hash not in html
    assert raw not in html
    detail = login(superuser).get(f"{CHANGELIST}{token.pk}/change/").content.decode()
    assert token.token_hash not in detail
    assert "token_hash" not in detail


def test_revoke_action(superuser: User, shop: Shop) -> None:
    issue_token(shop, name="a")
    issue_token(shop, name="b")
    keep = ApiToken.objects.get(name="b")
    revoke = ApiToken.objects.get(name="a")
    client = login(superuser)
    response = client.post(CHANGELIST, {"action": "revoke", "_selected_action": [str(revoke.pk)]})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Revoked 1 token; requests with them are now refused (401)."
    ]
    revoke.refresh_from_db()
    keep.refresh_from_db()
    assert revoke.revoked_at is not None
    assert keep.revoked_at is None

    first = revoke.revoked_at
    client.post(CHANGELIST, {"action": "revoke", "_selected_action": [str(revoke.pk)]})
    revoke.refresh_from_db()
    assert revoke.revoked_at == first  # revoking twice keeps the first time

    revoked_list = client.get(CHANGELIST + "?revoked_at__isempty=0")
    assert [t.pk for t in revoked_list.context["cl"].result_list] == [revoke.pk]


def test_revoke_needs_change_permission(viewer: User, shop: Shop) -> None:
    from tests.admin.conftest import grant

    issue_token(shop)
    token = ApiToken.objects.get()
    user = grant(viewer, ["webshop.view_apitoken"])
    response = login(user).post(CHANGELIST, {"action": "revoke", "_selected_action": [str(token.pk)]})
    assert response.status_code == 200  # no action offered: the list again
    token.refresh_from_db()
    assert token.revoked_at is None
