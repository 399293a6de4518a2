"""Inspection and control endpoints, the config file, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sendcloud_sandbox import ConfigError, SandboxConfig, SandboxServer
from tests.sandbox.helpers import Api, make_order


def test_health(api: Api) -> None:
    assert api.admin("GET", "/health").json() == {"status": "ok"}


def test_state_lists_orders_shipments_and_request_counters(api: Api) -> None:
    api.push([make_order(1), make_order(2)])
    api.push([make_order(1)])
    api.labels({"order_id": "ORD-2"})

    state = api.state()

    assert state["orders"]["count"] == 2
    items = {item["order_id"]: item for item in state["orders"]["items"]}
    assert items["ORD-1"]["times_upserted"] == 2
    assert items["ORD-2"]["integration"] == 1001
    assert items["ORD-2"]["order_number"] == "N-00002"
    assert state["shipments"]["count"] == 1
    assert state["shipments"]["items"][0]["order_id"] == "ORD-2"
    assert state["labels_per_order"] == {"ORD-2": 1}
    assert state["duplicate_labels"] == 0
    assert state["requests"]["total"] == 3
    assert state["requests"]["by_route"]["POST /orders"] == 2
    assert "items" not in api.admin("GET", "/state?items=0").json()["orders"]


def test_the_request_log_has_method_path_status_and_limit(api: Api) -> None:
    api.push([make_order(1)])
    api.get("/orders", params={"order_id": "ORD-1"})
    api.get("/integrations")

    log = api.admin("GET", "/requests?limit=2").json()["data"]

    assert [(entry["method"], entry["status"]) for entry in log] == [("GET", 200), ("GET", 200)]
    assert log[0]["path"] == "/api/v3/orders?order_id=ORD-1"
    assert log[1]["route"] == "GET /integrations"
    assert log[0]["fault"] is None
    assert log[0]["account"] == "sandbox-public"
    assert {"time", "duration_ms"} <= log[0].keys()


def test_reset_clears_state_but_keeps_accounts_and_faults(sandbox: SandboxServer, api: Api) -> None:
    api.admin("POST", "/accounts", {"public_key": "extra", "secret_key": "x"})
    sandbox.set_faults({"GET /integrations": [{"kind": "server_error", "status": 503}]})
    api.push([make_order(1)])

    assert api.admin("POST", "/reset").status_code == 200

    state = api.state()
    assert state["orders"]["count"] == 0
    assert state["requests"]["total"] == 0
    assert api.admin("GET", "/requests").json()["data"] == []
    assert Api(sandbox, auth=("extra", "x")).get("/orders").status_code == 200
    assert api.get("/integrations").status_code == 503

    api.admin("POST", "/reset", {"faults": True, "accounts": True})

    assert api.get("/integrations").status_code == 200
    assert Api(sandbox, auth=("extra", "x")).get("/orders").status_code == 401


def test_config_can_be_read_and_changed_at_run_time(api: Api) -> None:
    changed = api.admin("POST", "/config", {"label_delay_seconds": 0.0})

    assert changed.status_code == 200
    assert changed.json()["label_delay_seconds"] == 0.0
    assert api.admin("POST", "/config", {"label_delay_seconds": "soon"}).status_code == 400
    assert api.admin("POST", "/config", {"no_such_key": 1}).status_code == 400


def test_config_files_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text(
        json.dumps(
            {
                "accounts": [{"public_key": "a", "secret_key": "b", "integration_ids": [1, 2]}],
                "label_delay_seconds": 0,
                "faults": {"POST /orders": [{"kind": "slow", "seconds": 0.1, "probability": 0.5}]},
                "seed": 9,
            }
        )
    )

    config = SandboxConfig.from_file(path)

    assert config.accounts[0].integration_ids == [1, 2]
    assert config.faults["POST /orders"][0].probability == 0.5
    assert SandboxConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError):
        SandboxConfig.from_dict({"rate_limit_scale": 0})


def test_the_command_line_serves_until_terminated(tmp_path: Path) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps({"accounts": [{"public_key": "cli", "secret_key": "cli-secret"}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "sendcloud_sandbox", "--port", "0", "--config", str(config), "--fault-rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        response = requests.get(f"{url}/v3/integrations", auth=("cli", "cli-secret"), timeout=5)
        assert response.status_code == 200
    finally:
        process.terminate()
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
