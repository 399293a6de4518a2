"""``make mutation``: change the safety logic one line at a time and check that some test notices.

Why Cosmic Ray, and why this wrapper
------------------------------------
Cosmic Ray runs an ordinary shell command per mutant, so every mutant gets a fresh pytest process
with pytest-django, its own test database on PostgreSQL and the real Redis: nothing of Django's
one-time setup has to survive between mutants (mutmut 3 re-enters ``pytest.main`` in forked
processes, which pytest-django does not support without private-API workarounds, and it does not
mutate module-level tables such as ``TRANSITIONS``). Cosmic Ray also mutates module-level code and
takes project-specific operators (``tests/mutation/mutation_operators.py``: Django lookups, compare-and-set
conditions, the state machine).

What this wrapper adds:

* **One target list** (``tests/mutation/mutation.toml``): per module, which definitions to mutate and the
  targeted tests to run against each mutant.
* **A scratch copy.** Cosmic Ray writes each mutant into the source file on disk. Here that happens in a
  temporary copy of the work tree, so an interrupted run never leaves a mutant in the real sources.
* **Definitions, not line numbers**, choose what is mutated, so the list keeps working when code moves.
* **Its own databases.** The mutants' tests use ``<DATABASE_URL's name>_mutation`` (or
  ``MUTATION_DATABASE_URL``), so a mutation run and ``make test`` can run side by side.

Usage: ``python -m tests.mutation.mutation [--target NAME …] [--list] [--without PATH …] [--out DIR]``. The report
(score per target, every surviving mutant as a diff) goes to stdout and to ``var/mutation/report.md``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "tests" / "mutation" / "mutation.toml"
OUT = ROOT / "var" / "mutation"
PYTEST_FLAGS = "-x -q -p no:cacheprovider --reuse-db"


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    tests: list[str]
    definitions: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    target: Target
    tests: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""

    @property
    def score(self) -> float | None:
        decided = self.counts["killed"] + self.counts["timeout"] + self.counts["survived"]
        return (self.counts["killed"] + self.counts["timeout"]) / decided if decided else None


def load(path: Path = CONFIG) -> tuple[dict[str, Any], list[Target]]:
    data = tomllib.loads(path.read_text())
    targets = [
        Target(name=t["name"], module=t["module"], tests=list(t["tests"]), definitions=list(t.get("definitions", [])))
        for t in data["targets"]
    ]
    return data.get("settings", {}), targets


# -- what to mutate --------------------------------------------------------------------------------------


def definition_lines(source: str, names: list[str]) -> list[tuple[int, int]]:
    """Line ranges of the named top-level definitions (``name`` or ``Class.method``) of a module.

    A module-level assignment counts as the definition of its target name (``TRANSITIONS = {…}``).
    Raises ``LookupError`` for a name that is not there: a stale target list must not pass silently.
    """
    module = ast.parse(source)
    found: dict[str, tuple[int, int]] = {}
    for node in module.body:
        end = node.end_lineno or node.lineno
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = (node.lineno, end)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        found[f"{node.name}.{item.name}"] = (item.lineno, item.end_lineno or item.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = (node.lineno, end)
    missing = [name for name in names if name not in found]
    if missing:
        raise LookupError(f"not defined in the module: {', '.join(missing)}")
    return [found[name] for name in names]


def keep(line: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(start <= line <= end for start, end in ranges)


# -- the scratch copy and the environment --------------------------------------------------------------


def scratch_copy(destination: Path, without: list[str]) -> None:
    """Copy the work tree as git sees it (tracked and new files, not ignored ones) to ``destination``.

    Paths under one of ``without`` are left out (``--without tests/guards``: the score without those tests).
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        relative = Path(raw.decode())
        source = ROOT / relative
        if any(relative.is_relative_to(left_out) for left_out in without):
            continue
        if source.is_file():
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative)


def with_database_suffix(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "wemasy"
    return urlunsplit(parts._replace(path=f"/{name}{suffix}"))


def test_environment(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    database = env.get("MUTATION_DATABASE_URL") or (
        with_database_suffix(env["DATABASE_URL"], "_mutation") if env.get("DATABASE_URL") else ""
    )
    if database:
        env["DATABASE_URL"] = database
    if env.get("MUTATION_REDIS_URL"):
        env["REDIS_URL"] = env["MUTATION_REDIS_URL"]
    temporary = scratch / ".tmp"
    temporary.mkdir(exist_ok=True)
    env["TMPDIR"] = str(temporary)  # the test runs' own temporary folders go away with the scratch copy
    return env


# -- one target ------------------------------------------------------------------------------------------


def sampled(job_ids: dict[str, str], size: int | None) -> set[str]:
    """The job ids to leave out so that ``size`` remain: always the same ones for the same source.

    ``job_ids`` maps a job id to a stable description of its mutation (operator, place); the mutants kept
    are those whose descriptions hash lowest, so a run before and a run after a change of the tests
    compare the same mutants.
    """
    if size is None or len(job_ids) <= size:
        return set()
    ranked = sorted(job_ids, key=lambda job: hashlib.sha256(job_ids[job].encode()).hexdigest())
    return set(ranked[size:])


def run_target(
    target: Target, settings: dict[str, Any], scratch: Path, out: Path, *, list_only: bool, sample: int | None
) -> Outcome:
    from cosmic_ray.commands import execute, init
    from cosmic_ray.config import ConfigDict
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    outcome = Outcome(target=target)
    outcome.tests = [test for test in target.tests if (scratch / test).exists()]
    for test in target.tests:
        if test not in outcome.tests:
            print(f"  warning: {test} does not exist; left out", flush=True)
    module = scratch / target.module
    if not module.exists():
        outcome.problem = f"{target.module} does not exist"
        return outcome
    if not outcome.tests:
        outcome.problem = "none of its tests exist"
        return outcome
    try:
        ranges = definition_lines(module.read_text(), target.definitions) if target.definitions else None
    except LookupError as exc:
        outcome.problem = str(exc)
        return outcome

    excluded = [re.compile(pattern) for pattern in settings.get("exclude-operators", [])]
    session = out / (re.sub(r"\W+", "-", target.name) + ".sqlite")
    session.parent.mkdir(parents=True, exist_ok=True)
    session.unlink(missing_ok=True)
    command = f"{shlex.quote(sys.executable)} -m pytest {PYTEST_FLAGS} {' '.join(map(shlex.quote, outcome.tests))}"

    with use_db(str(session), mode=WorkDB.Mode.create) as db:
        init([Path(target.module)], db, {})
        skipped = [
            item.job_id
            for item in db.pending_work_items
            if any(
                not keep(m.start_pos[0], ranges) or any(p.fullmatch(m.operator_name) for p in excluded)
                for m in item.mutations
            )
        ]
        remaining = {
            item.job_id: "|".join(f"{m.operator_name}:{m.occurrence}:{m.start_pos}" for m in item.mutations)
            for item in db.pending_work_items
            if item.job_id not in set(skipped)
        }
        skipped += sorted(sampled(remaining, sample))
        if skipped:
            db.set_multiple_results(skipped, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not targeted"))
        pending = db.num_work_items - db.num_results
        print(f"  {pending} mutants; tests: {' '.join(outcome.tests)}", flush=True)
        if list_only:
            outcome.counts["pending"] = pending
            return outcome

        started = time.monotonic()
        baseline = subprocess.run([*shlex.split(command), "--create-db"], cwd=scratch, capture_output=True, text=True)
        took = time.monotonic() - started
        if baseline.returncode != 0:
            outcome.problem = "the tests fail without any mutation:\n" + baseline.stdout[-3000:]
            return outcome
        timeout = max(float(settings.get("min-timeout", 30)), took * float(settings.get("timeout-factor", 4)))
        print(f"  unmutated run {took:.1f}s; timeout per mutant {timeout:.0f}s", flush=True)

        config = ConfigDict(
            {
                "module-path": target.module,
                "timeout": timeout,
                "test-command": command,
                "distributor": ConfigDict({"name": "local"}),
            }
        )
        execute(db, config)
        outcome.seconds = time.monotonic() - started

        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            if result.worker_outcome != WorkerOutcome.NORMAL:
                outcome.counts["incompetent"] += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                outcome.counts["survived"] += 1
                [mutation] = item.mutations
                outcome.survivors.append(
                    f"{mutation.operator_name} at line {mutation.start_pos[0]}\n{result.diff or ''}".rstrip()
                )
            elif result.test_outcome == TestOutcome.KILLED:
                outcome.counts["timeout" if result.output == "timeout" else "killed"] += 1
            else:
                outcome.counts["incompetent"] += 1
    return outcome


# -- the report ------------------------------------------------------------------------------------------


def report(outcomes: list[Outcome], seconds: float) -> str:
    lines = [
        "# Mutation testing report",
        "",
        "| target | module | mutants | killed | timeout | survived | incompetent | score | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals: Counter[str] = Counter()
    for outcome in outcomes:
        counts = outcome.counts
        totals.update(counts)
        decided = counts["killed"] + counts["timeout"] + counts["survived"] + counts["incompetent"]
        score = "—" if outcome.score is None else f"{outcome.score:.0%}"
        lines.append(
            f"| {outcome.target.name} | `{outcome.target.module}` | {decided} | {counts['killed']} | "
            f"{counts['timeout']} | {counts['survived']} | {counts['incompetent']} | {score} | "
            f"{outcome.seconds / 60:.1f} min |"
        )
    decided = totals["killed"] + totals["timeout"] + totals["survived"]
    total_score = f"{(totals['killed'] + totals['timeout']) / decided:.0%}" if decided else "—"
    lines += ["", f"Total: score {total_score}, {seconds / 60:.1f} min.", ""]
    for outcome in outcomes:
        if outcome.problem:
            lines += [f"## {outcome.target.name}: not run", "", outcome.problem, ""]
        if outcome.survivors:
            lines += [f"## {outcome.target.name}: surviving mutants", ""]
            for survivor in outcome.survivors:
                lines += ["```diff", survivor, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", help="run only this target (by name); repeatable")
    parser.add_argument("--list", action="store_true", help="count the mutants per target, run nothing")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument(
        "--without", action="append", default=[], metavar="PATH", help="leave these files or folders out (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where the sessions and report.md go")
    parser.add_argument(
        "--sample", type=int, metavar="N", help="run at most N mutants per target (the same N every run): an estimate"
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()

    from tests.mutation import mutation_operators

    # A stopped run (kill, Ctrl-C) still removes its scratch copy: SIGTERM unwinds like SystemExit.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    mutation_operators.register()
    settings, targets = load(args.config)
    if args.target:
        unknown = set(args.target) - {t.name for t in targets}
        if unknown:
            parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t.name in args.target]

    started = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="wemasy-mutation-") as directory:
        scratch = Path(directory)
        scratch_copy(scratch, args.without)
        os.environ.update(test_environment(scratch))
        previous = Path.cwd()
        os.chdir(scratch)  # Cosmic Ray's module paths are relative to the tree it mutates
        try:
            for target in targets:
                print(f"{target.name} ({target.module})", flush=True)
                outcomes.append(
                    run_target(target, settings, scratch, args.out, list_only=args.list, sample=args.sample)
                )
        finally:
            os.chdir(previous)
    if args.list:
        for outcome in outcomes:
            print(f"{outcome.target.name}: {outcome.counts['pending']} mutants {outcome.problem}")
        return 0
    text = report(outcomes, time.monotonic() - started)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n")
    print(text)
    return 1 if any(outcome.problem for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
