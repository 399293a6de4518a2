"""The project documents itself: every file a doc or a docstring cites exists in the repository.

A user's clone has only this repository, so a reference to a moved or deleted file (or to anything
outside it) leaves a reader stranded. Paths are taken from backticks and from "see <path>" phrases.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A repository path: folders separated by "/" ending in a file with an extension, or a folder with "/".
PATH = re.compile(r"`((?:\.?[\w.-]+/)+[\w.-]*\.(?:py|md|html|json|toml|txt|yaml|js|css)|(?:[\w.-]+/)+)`")
TOP_LEVEL = {"sendcloud_integration", "webshop", "wemasy", "sendcloud_sandbox", "tests", "bench", "docs", "templates"}
#: Inside docs and the app's own docstrings, ``pipeline/sweep.py`` means ``sendcloud_integration/pipeline/sweep.py``.
APP = ROOT / "sendcloud_integration"
APP_PARTS = {p.name for p in APP.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}


def documents() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "sendcloud_sandbox" / "README.md"]
    for top in ("sendcloud_integration", "webshop", "wemasy", "sendcloud_sandbox", "bench", "tests"):
        found += [p for p in sorted((ROOT / top).rglob("*.py")) if "migrations" not in p.parts]
    return [p for p in found if p != Path(__file__).resolve()]


def cited_paths(text: str) -> set[str]:
    return {m.group(1) for m in PATH.finditer(text) if m.group(1).split("/")[0] in TOP_LEVEL | APP_PARTS}


def exists(path: str) -> bool:
    return (ROOT / path).exists() or (path.split("/")[0] in APP_PARTS and (APP / path).exists())


def test_every_cited_file_exists() -> None:
    missing = {
        str(document.relative_to(ROOT)): sorted(
            p for p in cited_paths(document.read_text(encoding="utf-8")) if not exists(p)
        )
        for document in documents()
    }
    assert not {doc: paths for doc, paths in missing.items() if paths}, "cited files that do not exist"


def test_nothing_points_outside_the_repository() -> None:
    offenders = [p.relative_to(ROOT) for p in documents() if "../shared" in p.read_text(encoding="utf-8")]
    assert not offenders, f"these cite ../shared, which a user's clone does not have: {offenders}"


def test_the_checker_notices_a_missing_file() -> None:
    assert cited_paths("see `sendcloud_integration/no_such_module.py` and `docs/api.md`") == {
        "sendcloud_integration/no_such_module.py",
        "docs/api.md",
    }
