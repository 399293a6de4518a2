"""The commands run as an operator runs them: ``python manage.py …`` in a child process.

In-process tests cannot see exit codes or what Django prints around a ``CommandError``; these
check that success exits 0 and that bad input exits non-zero with one line on stderr and no
traceback. They use a throw-away SQLite database, migrated once for the module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands.conftest import SAMPLE_ORDERS

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-secret-that-must-not-leak"


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wemasy.settings",
        "DJANGO_SECRET_KEY": "cli-test-secret-key",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "VAR_DIR": str(tmp / "var"),
    }
    migrate = manage(env, "migrate", "--noinput", "-v", "0")
    assert migrate.returncode == 0, migrate.stderr
    shop = manage(env, "create_shop", "tokens")
    assert shop.returncode == 0, shop.stderr
    return env


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_create_shop_twice_exits_zero(cli_env: dict[str, str]) -> None:
    first = manage(cli_env, "create_shop", "demo", "--name", "Demo shop")
    again = manage(cli_env, "create_shop", "demo")

    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout == "Created shop demo (Demo shop).\n"
    assert "already exists" in again.stdout


def test_token_alone_on_stdout(cli_env: dict[str, str]) -> None:
    result = manage(cli_env, "create_api_token", "--shop", "tokens")

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"wms_[0-9a-f]{8}_[A-Za-z0-9_-]+\n", result.stdout)
    assert result.stdout.strip() not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [  # the module's fixture created the shop "tokens"
        (["create_shop", "no spaces"], "invalid shop slug"),
        (["create_api_token", "--shop", "missing"], "CommandError: unknown shop 'missing'"),
        (["create_api_token", "--shop", "tokens", "--scopes", "admin"], "unknown scope 'admin'"),
        (["import_orders", "--shop", "missing", "-"], "unknown shop 'missing'"),
        (["import_orders", "--shop", "tokens", "/no/such/file.json"], "No such file or directory"),
        (
            [
                "configure_sendcloud",
                "--shop",
                "tokens",
                "--public-key",
                "p",
                "--secret-key",
                SECRET,
                "--integration-id",
                "x",
            ],
            "--integration-id must be a positive integer",
        ),
    ],
)
def test_user_errors_are_one_line_without_traceback(cli_env: dict[str, str], args: list[str], fragment: str) -> None:
    result = manage(cli_env, *args, stdin="[]")

    assert_one_line_error(result, fragment)
    assert SECRET not in result.stderr


def test_import_from_file_and_bad_json_from_stdin(cli_env: dict[str, str]) -> None:
    manage(cli_env, "create_shop", "importer")

    ok = manage(cli_env, "import_orders", "--shop", "importer", str(SAMPLE_ORDERS))
    bad = manage(cli_env, "import_orders", "--shop", "importer", "-", stdin='[{"order_number": "X",]')

    assert ok.returncode == 0, ok.stderr
    assert [row["order_number"] for row in json.loads(ok.stdout)][:2] == ["ORD-1001", "ORD-1002"]
    assert_one_line_error(bad, "invalid JSON in stdin at line 1, column 23")


def test_validation_error_is_one_line(cli_env: dict[str, str]) -> None:
    manage(cli_env, "create_shop", "strict")
    items = json.loads(SAMPLE_ORDERS.read_text(encoding="utf-8"))
    items[3]["lines"][0]["quantity"] = 0

    result = manage(cli_env, "import_orders", "--shop", "strict", "-", stdin=json.dumps(items))

    assert_one_line_error(result, "item 3 (ORD-1004): lines[0].quantity: must be a positive integer")


def test_configure_sendcloud_never_echoes_the_secret(cli_env: dict[str, str]) -> None:
    manage(cli_env, "create_shop", "sc")
    args = ["--shop", "sc", "--public-key", "public-1234", "--secret-key", SECRET, "--integration-id", "9"]

    created = manage(cli_env, "configure_sendcloud", *args)
    updated = manage(cli_env, "configure_sendcloud", *args, "--inactive")

    assert (created.returncode, updated.returncode) == (0, 0), created.stderr + updated.stderr
    assert created.stdout.startswith("Created")
    assert updated.stdout.startswith("Updated")
    for result in (created, updated):
        assert SECRET not in result.stdout + result.stderr
        assert result.stdout.count("\n") == 1
