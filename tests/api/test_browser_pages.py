"""Pages a browser opens on the staff origin: a Content-Security-Policy, no code from other origins.

The admin (staff sessions) and the API docs share an origin; a script loaded from a CDN, unpinned and
without integrity, could act as any logged-in staff member. The docs are served from the installed
package (drf-spectacular-sidecar) and every page carries a policy that allows scripts from here only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.admin.conftest import login

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(?!\s*</script>)", re.IGNORECASE)
#: An inline event handler (``onchange="…"``): blocked by ``script-src 'self'`` just like an inline script.
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)


def csp_of(response: object) -> dict[str, str]:
    header = response["Content-Security-Policy"]  # type: ignore[index]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def test_the_api_docs_load_nothing_from_another_origin(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html), "nothing from another origin"
    assert not INLINE_SCRIPT.search(html), "no inline script"
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    policy = csp_of(response)
    assert policy["script-src"] == "script-src 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    init = re.search(r'<script src="([^"]+\?script=[^"]*)"', html)
    assert init, "the docs' set-up script is a file of its own"
    assert client.get(init.group(1).replace("&amp;", "&")).status_code == 200


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/admin/sendcloud_integration/pushbatch/dashboard/"])
def test_admin_pages_carry_the_policy_and_run_no_inline_script(path: str) -> None:
    staff = login(User.objects.create_superuser("csp-staff", "csp@example.com", "a-long-password-1"))
    response = staff.get(path, follow=True)
    assert response.status_code == 200
    assert csp_of(response)["script-src"] == "script-src 'self'"
    assert response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), "an inline script would be blocked by the policy"
    assert not INLINE_HANDLER.search(html), "an inline event handler would be blocked by the policy"


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    """``manage.py check --deploy`` with the settings README names for production reports nothing."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))},
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k" * 20 + "Zq9-vX2#pL7!mN4@rT6%wY8^bC1&dF3*",
        "DJANGO_ALLOWED_HOSTS": "ship.example.com",
        "DJANGO_SECURE_SSL_REDIRECT": "1",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "DJANGO_SECURE_HSTS_PRELOAD": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
