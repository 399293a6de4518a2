"""The dependency tree is pinned whole, with hashes: the locks agree with pyproject.toml.

``make install`` installs ``requirements-dev.lock`` with ``--require-hashes``; production installs
``requirements.lock``. A pin changed in ``pyproject.toml`` without ``make lock`` would leave the lock
installing something else than what the project says it depends on.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)$")
ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$", re.M)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.sub(r"\[.*\]", "", name)).lower()


def lock(name: str) -> dict[str, str]:
    return {canonical(n): v for n, v in ENTRY.findall((ROOT / name).read_text(encoding="utf-8"))}


def pins(group: str | None) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    found = {}
    for spec in specs:
        match = PIN.match(spec.strip())
        assert match, f"{spec!r} is not pinned exactly (name==version)"
        found[canonical(match.group(1))] = match.group(2)
    return found


@pytest.mark.parametrize(
    ("lock_file", "groups"), [("requirements.lock", [None]), ("requirements-dev.lock", [None, "dev"])]
)
def test_every_pin_of_pyproject_is_locked_at_its_version(lock_file: str, groups: list[str | None]) -> None:
    locked = lock(lock_file)
    for group in groups:
        for name, version in pins(group).items():
            assert locked.get(name) == version, f"{name}=={version} of pyproject is {locked.get(name)} in {lock_file}"


@pytest.mark.parametrize("lock_file", ["requirements.lock", "requirements-dev.lock"])
def test_every_locked_package_carries_hashes(lock_file: str) -> None:
    text = (ROOT / lock_file).read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text)
    entries = [block for block in blocks if ENTRY.match(block)]
    assert len(entries) > 20
    assert all("--hash=sha256:" in block for block in entries)
    assert "--index-url" not in text
    assert "--find-links" not in text  # nothing of this machine's package mirrors


def test_the_production_lock_has_no_development_tool() -> None:
    locked = lock("requirements.lock")
    for tool in ("pytest", "ruff", "mypy", "schemathesis", "cosmic-ray"):
        assert tool not in locked
