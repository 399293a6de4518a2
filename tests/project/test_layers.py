"""The import contract of docs/architecture.md bites: an import back up the layers fails ``make lint``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("sendcloud_integration", "sendcloud_sandbox", "webshop", "wemasy")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def copy_of_the_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_pipeline_importing_the_tasks_breaks_the_layers(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    with (tree / "sendcloud_integration/pipeline/chunks.py").open("a") as module:
        module.write("\nfrom sendcloud_integration import tasks  # noqa: E402,F401\n")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "- sendcloud_integration.pipeline.chunks -> sendcloud_integration.tasks" in result.stdout


def test_the_http_client_importing_django_breaks_its_contract(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    with (tree / "sendcloud_integration/sendcloud/transport.py").open("a") as module:
        module.write("\nfrom django.conf import settings  # noqa: E402,F401\n")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "The Sendcloud HTTP client knows no Django, no Celery and no models BROKEN" in result.stdout


def test_the_sandbox_importing_the_service_breaks_its_contract(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    with (tree / "sendcloud_sandbox/config.py").open("a") as module:
        module.write("\nimport sendcloud_integration.limits  # noqa: E402,F401\n")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "The sandbox imports nothing from the service BROKEN" in result.stdout
