"""Authentication (HTTP Basic against configured key pairs) and integrations."""

from __future__ import annotations

import requests

from sendcloud_sandbox import SandboxServer
from tests.sandbox.helpers import INTEGRATION_ID, Api, make_order


def test_missing_credentials_get_401(sandbox: SandboxServer) -> None:
    response = Api(sandbox, auth=None).get("/orders")

    assert response.status_code == 401
    assert response.json() == {
        "errors": [
            {
                "status": "401",
                "code": "authentication_failed",
                "detail": "Authentication credentials were not provided.",
            }
        ]
    }


def test_wrong_secret_gets_401_invalid_username_password(sandbox: SandboxServer) -> None:
    response = Api(sandbox, auth=("sandbox-public", "wrong")).push([make_order(1)])

    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"status": "401", "code": "authentication_failed", "detail": "Invalid username/password."}]
    }
    assert "Retry-After" not in response.headers


def test_unauthenticated_requests_store_nothing(api: Api, sandbox: SandboxServer) -> None:
    Api(sandbox, auth=("nobody", "nothing")).push([make_order(1)])

    assert api.state()["orders"]["count"] == 0


def test_accounts_can_be_added_and_revoked_at_run_time(api: Api, sandbox: SandboxServer) -> None:
    added = api.admin("POST", "/accounts", {"public_key": "shop-2", "secret_key": "s2", "integration_ids": [2002]})
    assert added.status_code == 201
    shop2 = Api(sandbox, auth=("shop-2", "s2"))
    order = make_order(1, order_details={**make_order(1)["order_details"], "integration": {"id": 2002}})

    assert shop2.push([order]).status_code == 201
    assert api.admin("DELETE", "/accounts/shop-2").status_code == 204
    assert shop2.push([order]).status_code == 401


def test_an_account_cannot_use_another_accounts_integration(api: Api) -> None:
    order = make_order(1, order_details={**make_order(1)["order_details"], "integration": {"id": 9999}})

    response = api.push([make_order(0), order])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "status": "400",
            "code": "invalid",
            "detail": "Integration with id 9999 does not exist",
            "source": {"pointer": "/data/attributes/[1]/order_details/integration/id"},
        }
    ]


def test_integrations_list_the_accounts_integrations(api: Api) -> None:
    listed = api.get("/integrations").json()["data"]

    assert [integration["id"] for integration in listed] == [INTEGRATION_ID]
    assert listed[0]["type"] == "api"
    assert api.get(f"/integrations/{INTEGRATION_ID}").status_code == 200
    assert api.get("/integrations/4242").status_code == 404


def test_unknown_routes_get_a_jsonapi_404(api: Api, sandbox: SandboxServer) -> None:
    response = api.get("/no-such-thing")
    outside = requests.get(f"{sandbox.base_url}/elsewhere", timeout=5)

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert outside.status_code == 404
    assert outside.json()["errors"][0]["status"] == "404"
