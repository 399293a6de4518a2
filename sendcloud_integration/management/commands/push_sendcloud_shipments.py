"""``manage.py push_sendcloud_shipments --shop SLUG <selectors> [...]``: the bulk push, for operators.

The third door (docs/architecture.md): it selects orders (``sendcloud_integration.push.selection``), then calls the very
``services.push_orders`` the REST endpoint and the admin call, with ``Actor.command``, so a push from
the command line is classified, locked, batched and recorded exactly like any other. It adds what
only a terminal needs: selecting by state or date instead of listing ids, a dry run, splitting a
selection larger than ``PUSH_MAX_ORDER_IDS`` into several pushes, and waiting for the result.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic, sleep
from typing import IO, Any, Final

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from sendcloud_integration.exceptions import NoOrdersFound, PushRefused
from sendcloud_integration.limits import MAX_BIGINT, MAX_ORDERS_PER_UPSERT
from sendcloud_integration.push.selection import OrderSelection, SelectionError, StateFilter, select_order_ids
from sendcloud_integration.push.services import Actor, PushResult, push_orders
from sendcloud_integration.selectors.batches import FAILURES_SHOWN, first_failures, watch_batches
from webshop.management.base import OperatorCommand, input_error
from webshop.models import Shop
from webshop.services import ServiceError, get_shop_by_slug

EXIT_FAILURES: Final = 1
EXIT_TIMEOUT: Final = 3
EXIT_INTERRUPTED: Final = 130

MAX_ORDER_ID: Final = MAX_BIGINT
MAX_CHUNK_SIZE: Final = MAX_ORDERS_PER_UPSERT  # the Sendcloud v3 orders batch maximum
DEFAULT_POLL_SECONDS: Final = 2.0
#: ``PushBatch.started_by_label`` holds 200 characters, "command " included.
_ACTOR_DESCRIPTION_LENGTH: Final = 190

HELP = """\
Push a shop's orders to Sendcloud in bulk, through the same service as the REST endpoint.

Choose the orders with at least one selector; several selectors narrow the choice (all must match), \
several states widen it (any may match):
  --order-ids 1,2,3   or @FILE, or - for stdin: ids one per line or a JSON array
  --state S[,S]       never-pushed, queued, pushing, pushed (in Sendcloud, no label yet), label_queued, \
labelling, labelled, failed
  --since / --until   the order's created_at, ISO 8601 date or date-time; --since inclusive, --until \
exclusive; a time without a timezone is UTC

Orders are pushed in id order. A selection above PUSH_MAX_ORDER_IDS (the endpoint's limit, default 10000) is \
split into several pushes, each its own batch; every batch id is printed. With -v 0 only the batch ids are \
printed, one per line, for scripts. With -v 2 every order's classification is listed.

Exit codes:
  0  pushed (or dry run) as asked; with --wait: every order succeeded
  1  --wait: at least one order failed (the first failures are listed)
  2  bad input: a flag, an unknown shop, no usable Sendcloud integration, no matching order
  3  --wait: --timeout passed before every batch finished (the batches go on in the background)
"""


@dataclass(frozen=True)
class Selectors:
    """The selection flags, parsed: what ``push.selection.select_order_ids`` takes."""

    order_ids: list[int] | None
    states: list[StateFilter]
    since: datetime | None
    until: datetime | None
    limit: int | None


class Command(OperatorCommand):
    help = HELP
    #: ``call_command(..., stdin=StringIO(...))`` feeds ``--order-ids -`` in tests.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, metavar="SLUG", help="The shop's slug.")
        select = parser.add_argument_group("selecting orders (at least one)")
        select.add_argument(
            "--order-ids",
            metavar="IDS",
            help="Comma-separated order ids; @FILE or - (stdin) for ids one per line or a JSON array.",
        )
        select.add_argument(
            "--state",
            metavar="STATE[,STATE]",
            help=f"Orders in any of these states: {', '.join(StateFilter)}.",
        )
        select.add_argument("--since", metavar="WHEN", help="Orders created at or after WHEN (ISO 8601; naive = UTC).")
        select.add_argument("--until", metavar="WHEN", help="Orders created before WHEN (ISO 8601; naive = UTC).")
        select.add_argument(
            "--limit", type=int, metavar="N", help="Push at most N of the selected orders (lowest ids)."
        )
        push = parser.add_argument_group("pushing")
        push.add_argument("--create-label", action="store_true", help="Also create shipping labels.")
        push.add_argument(
            "--chunk-size",
            type=int,
            metavar="N",
            help=f"Orders per chunk task, 1-{MAX_CHUNK_SIZE} (default: SENDCLOUD_CHUNK_SIZE).",
        )
        push.add_argument(
            "--dry-run",
            action="store_true",
            help="Classify the orders and print what would happen; change nothing.",
        )
        wait = parser.add_argument_group("waiting for the result")
        wait.add_argument(
            "--wait",
            action="store_true",
            help="Wait until every batch has finished, then print its totals and the first failures.",
        )
        wait.add_argument(
            "--poll-interval",
            type=float,
            default=DEFAULT_POLL_SECONDS,
            metavar="SECONDS",
            help="How often --wait reads the batches' progress (default: %(default)s).",
        )
        wait.add_argument("--timeout", type=float, metavar="SECONDS", help="Give up waiting after SECONDS (exit 3).")
        wait.add_argument(
            "--progress",
            action="store_true",
            help="Show the progress bar even when stderr is not a terminal.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity: int = options["verbosity"]
        chunk_size = _check_range(options["chunk_size"], "--chunk-size", 1, MAX_CHUNK_SIZE)
        self._check_wait_options(options)
        selectors = self._selectors(options)
        try:
            shop = get_shop_by_slug(slug=options["shop"])
            selection = select_order_ids(
                shop=shop,
                order_ids=selectors.order_ids,
                states=selectors.states,
                since=selectors.since,
                until=selectors.until,
                limit=selectors.limit,
            )
        except (ServiceError, SelectionError) as exc:
            raise input_error(str(exc)) from exc

        results = self._push(
            shop=shop,
            order_ids=selection.order_ids,
            create_label=options["create_label"],
            chunk_size=chunk_size,
            dry_run=options["dry_run"],
            criteria=_criteria(options),
        )
        if verbosity >= 1:
            self.stdout.write(_describe_selection(shop.slug, selection, options))
            for number, (part, result) in enumerate(results, start=1):
                self._print_push(result, number=number, of=len(results), ids=part, verbosity=verbosity)
            self._print_totals([result for _, result in results], dry_run=options["dry_run"])
        else:  # -v 0: the batch ids alone, for scripts
            for _, result in results:
                if result.batch_id:
                    self.stdout.write(str(result.batch_id))
        batch_ids = [str(result.batch_id) for _, result in results if result.batch_id]
        if not options["wait"]:
            return
        if not batch_ids:
            if verbosity >= 1:
                self.stdout.write("Nothing was queued, so there is nothing to wait for.")
            return
        self._wait(batch_ids, options)

    # --- input ------------------------------------------------------------------------------------------

    def _check_wait_options(self, options: dict[str, Any]) -> None:
        if options["poll_interval"] is None or options["poll_interval"] <= 0:
            raise input_error(f"--poll-interval must be a positive number of seconds, not {options['poll_interval']}")
        if options["timeout"] is not None and options["timeout"] <= 0:
            raise input_error(f"--timeout must be a positive number of seconds, not {options['timeout']}")
        if options["wait"] and options["dry_run"]:
            raise input_error("--wait cannot be combined with --dry-run: a dry run queues nothing")
        if not options["wait"] and options["timeout"] is not None:
            raise input_error("--timeout only applies with --wait")

    def _selectors(self, options: dict[str, Any]) -> Selectors:
        raw_ids: str | None = options["order_ids"]
        if raw_ids is None and not any(options[name] for name in ("state", "since", "until")):
            raise input_error("choose the orders to push: give --order-ids, --state, --since and/or --until")
        try:
            states = StateFilter.parse(options["state"]) if options["state"] is not None else []
        except SelectionError as exc:
            raise input_error(f"--state: {exc}") from exc
        return Selectors(
            order_ids=None if raw_ids is None else self._order_ids(raw_ids, options.get("stdin") or sys.stdin),
            states=states,
            since=_moment(options["since"], "--since"),
            until=_moment(options["until"], "--until"),
            limit=_check_range(options["limit"], "--limit", 1, None),
        )

    def _order_ids(self, value: str, stdin: IO[Any]) -> list[int]:
        """``1,2,3``, ``@FILE`` or ``-``; a file or stdin holds a JSON array or ids separated by lines/commas."""
        if value == "-":
            return _parse_ids(stdin.read(), "stdin")
        if value.startswith("@"):
            path = value[1:]
            try:
                text = Path(path).read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
                raise input_error(f"--order-ids: cannot read {path}: {reason}") from exc
            return _parse_ids(text, path)
        return _parse_ids(value, "--order-ids")

    # --- pushing ----------------------------------------------------------------------------------------

    def _push(
        self,
        *,
        shop: Shop,
        order_ids: list[int],
        create_label: bool,
        chunk_size: int | None,
        dry_run: bool,
        criteria: str,
    ) -> list[tuple[list[int], PushResult]]:
        """One ``push_orders`` per ``PUSH_MAX_ORDER_IDS`` ids, each its own batch, in id order.

        The split keeps every push within the limits the endpoint enforces (one transaction, one
        batch of at most that many orders), so a command push never holds locks longer than an API
        push would. An empty selection still goes to the service, which reports a missing
        integration before "no orders", in the endpoint's order of checks.
        """
        step = max(1, settings.PUSH_MAX_ORDER_IDS)
        parts = [order_ids[start : start + step] for start in range(0, len(order_ids), step)] or [[]]
        actor = Actor.command(_actor_description(criteria))
        results: list[tuple[list[int], PushResult]] = []
        for part in parts:
            try:
                result = push_orders(
                    shop=shop,
                    order_ids=part,
                    create_label=create_label,
                    actor=actor,
                    chunk_size=chunk_size,
                    dry_run=dry_run,
                )
            except PushRefused as exc:
                raise input_error(_refusal(exc, [r for _, r in results], criteria=criteria)) from exc
            results.append((part, result))
        return results

    def _print_push(self, result: PushResult, *, number: int, of: int, ids: Sequence[int], verbosity: int) -> None:
        span = f" (orders #{ids[0]}-#{ids[-1]})" if of > 1 and ids else ""
        dry = " (dry run)" if result.dry_run else ""
        self.stdout.write(f"Push {number} of {of}{span}{dry}: {result.message}")
        self.stdout.write(
            f"  new {len(result.new)}, retry {len(result.retry)}, skipped {len(result.skipped)}, "
            f"queued {len(result.queued)}, chunks {result.total_chunks}"
        )
        if result.batch_id:
            self.stdout.write(f"  batch {result.batch_id}")
        if verbosity >= 2:
            for item in result.queued:
                self.stdout.write(f"    {item.order_number} (#{item.id}): {item.category}, chunk {item.chunk}")
            for line in result.skipped:
                self.stdout.write(f"    {_skipped_number(line)}: skipped, {_skipped_reason(line)}")

    def _print_totals(self, results: list[PushResult], *, dry_run: bool) -> None:
        reasons = Counter(_skipped_reason(line) for result in results for line in result.skipped)
        if reasons:
            self.stdout.write("Skipped, by reason:")
            width = len(str(max(reasons.values())))
            for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
                self.stdout.write(f"  {count:>{width}}  {reason}")
        if len(results) > 1:
            batches = sum(1 for result in results if result.batch_id)
            self.stdout.write(
                f"Total: new {sum(len(r.new) for r in results)}, retry {sum(len(r.retry) for r in results)}, "
                f"skipped {sum(len(r.skipped) for r in results)}, queued {sum(len(r.queued) for r in results)}, "
                f"chunks {sum(r.total_chunks for r in results)}, in {batches} batch{'es' if batches != 1 else ''}."
            )
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")

    # --- waiting ----------------------------------------------------------------------------------------

    def _wait(self, batch_ids: list[str], options: dict[str, Any]) -> None:
        """Poll the batches until all are finished; exit 1 on any failed order, 3 on timeout.

        Only reads: finishing a batch is the worker's job (or the beat sweep's), so waiting here
        never races them. The bar counts orders with nothing left to do over orders queued.
        """
        verbosity: int = options["verbosity"]
        interval: float = options["poll_interval"]
        timeout: float | None = options["timeout"]
        err: IO[str] = options.get("stderr") or sys.stderr
        show_bar = options["progress"] or _isatty(err)
        deadline = None if timeout is None else monotonic() + timeout
        watches = watch_batches(batch_ids=batch_ids)
        total = sum(watch.queued for watch in watches)
        try:
            with tqdm(total=total, unit="order", desc="Orders done", file=err, disable=not show_bar) as bar:
                while True:
                    watches = watch_batches(batch_ids=batch_ids)
                    done = sum(watch.done for watch in watches)
                    finished = sum(1 for watch in watches if watch.is_finished)
                    bar.n = done
                    bar.set_postfix_str(f"{finished}/{len(watches)} batches finished", refresh=True)
                    if verbosity >= 2 and not show_bar:
                        self.stderr.write(f"{done}/{total} orders done, {finished}/{len(watches)} batches finished")
                    if finished == len(watches):
                        break
                    now = monotonic()
                    if deadline is not None and now >= deadline:
                        raise CommandError(
                            f"timed out after {timeout:g}s: {len(watches) - finished} of {len(watches)} batches "
                            f"still running ({done}/{total} orders done); they go on in the background",
                            returncode=EXIT_TIMEOUT,
                        )
                    sleep(interval if deadline is None else max(0.0, min(interval, deadline - now)))
        except KeyboardInterrupt:
            raise CommandError(
                "interrupted while waiting; the batches go on in the background", returncode=EXIT_INTERRUPTED
            ) from None

        failed = 0
        for watch in watches:
            failed += watch.failed
            if verbosity >= 1:
                self.stdout.write(
                    f"Batch {watch.batch.pk}: {watch.batch.status} - pushed {watch.pushed}, labelled {watch.labelled}, "
                    f"failed {watch.failed}, of {watch.queued} queued."
                )
        if not failed:
            return
        failures = first_failures(batch_ids=batch_ids, limit=FAILURES_SHOWN)
        if verbosity >= 1:
            shown = f"first {len(failures)} of {failed}" if failed > len(failures) else str(failed)
            self.stdout.write(f"Failed orders ({shown}):")
            for failure in failures:
                error = (failure.error.strip().splitlines() or ["(no error recorded)"])[0][:200]
                self.stdout.write(f"  {failure.order_number}: {error}")
        queued = sum(watch.queued for watch in watches)
        raise CommandError(f"{failed} of {queued} orders failed", returncode=EXIT_FAILURES)


# --- helpers ---------------------------------------------------------------------------------------------


def _check_range(value: int | None, flag: str, low: int, high: int | None) -> int | None:
    """Range checks live here, not in argparse, so ``call_command(chunk_size=0)`` is refused too."""
    if value is None:
        return None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise input_error(f"{flag} must be {bounds}, not {value}")
    return value


def _moment(value: str | None, flag: str) -> datetime | None:
    """An ISO 8601 date or date-time; without a timezone it is taken as UTC (the service's time zone)."""
    if value is None:
        return None
    try:
        moment = parse_datetime(value.strip())
    except ValueError:  # well formed but impossible, such as 2026-02-30
        moment = None
    if moment is None:
        raise input_error(
            f"{flag}: {value!r} is not an ISO 8601 date or date-time (e.g. 2026-11-20 or 2026-11-20T10:00:00Z)"
        )
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


def _parse_ids(text: str, source: str) -> list[int]:
    """Order ids from a JSON array, or separated by commas, spaces or new lines (``#`` starts a comment)."""
    stripped = text.strip()
    items: list[Any]
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise input_error(f"--order-ids: invalid JSON in {source} at line {exc.lineno}: {exc.msg}") from exc
        if not isinstance(items, list):
            raise input_error(f"--order-ids: {source} must hold a JSON array of ids")
    else:
        items = [word for line in stripped.splitlines() for word in line.split("#", 1)[0].replace(",", " ").split()]
    ids: list[int] = []
    for item in items:
        number = item if type(item) is int else int(item) if isinstance(item, str) and item.isdigit() else None
        if number is None or not 1 <= number <= MAX_ORDER_ID:
            where = "" if source == "--order-ids" else f" in {source}"
            raise input_error(f"--order-ids: {item!r}{where} is not an order id (a positive integer)")
        ids.append(number)
    if not ids:
        raise input_error(f"--order-ids: no ids in {source}")
    return ids


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: no bar
        return False


def _describe_selection(slug: str, selection: OrderSelection, options: dict[str, Any]) -> str:
    count = len(selection.order_ids)
    text = f"Selected {count} order{'s' if count != 1 else ''} of shop {slug} ({_criteria(options)})"
    if selection.limited:
        text += f", capped by --limit {options['limit']}"
    if selection.unknown_ids:
        shown = ", ".join(f"#{pk}" for pk in selection.unknown_ids[:5])
        more = f" and {len(selection.unknown_ids) - 5} more" if len(selection.unknown_ids) > 5 else ""
        text += f"; not orders of this shop: {shown}{more}"
    return text + "."


def _criteria(options: dict[str, Any]) -> str:
    parts = []
    if options["order_ids"] is not None:
        value = options["order_ids"]
        parts.append(f"--order-ids {value if len(value) <= 40 else value[:37] + '...'}")
    for flag in ("state", "since", "until"):
        if options[flag]:
            parts.append(f"--{flag} {options[flag]}")
    if options["create_label"]:
        parts.append("--create-label")
    return " ".join(parts)


def _actor_description(criteria: str) -> str:
    """How the batch records who pushed: the command, the OS user when known, and the selection."""
    try:
        user = f" by {getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid, as in some containers
        user = ""
    return f"push_sendcloud_shipments{user}: {criteria}"[:_ACTOR_DESCRIPTION_LENGTH]


def _skipped_number(line: str) -> str:
    return line.partition(": ")[0]


def _skipped_reason(line: str) -> str:
    """``"ORD-1: order status is pending"`` → ``"order status is pending"``."""
    return line.partition(": ")[2] or line


def _refusal(exc: PushRefused, done: list[PushResult], *, criteria: str) -> str:
    """The one line for a refused push, saying which batches an earlier part of a split already queued."""
    message = exc.message
    if isinstance(exc, NoOrdersFound) and not done:
        message = f"{message} Nothing matches {criteria}."
    started = [str(result.batch_id) for result in done if result.batch_id]
    if started:
        message += f"; already queued before this: batch {', '.join(started)}"
    return message
