"""``push_sendcloud_shipments``: selecting, pushing through the service, dry runs, splitting, waiting.

Nothing is dispatched: ``dispatch.start_batch`` is patched, and ``--wait`` is driven by a patched
``sleep`` that moves the shipment rows along the way a worker would and calls ``finish_batch``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sendcloud_integration.management.commands import push_sendcloud_shipments as command
from sendcloud_integration.models import (
    BatchStatus,
    OrderShipment,
    Phase,
    PushBatch,
    SendcloudIntegration,
    ShipmentState,
    StartedBy,
)
from sendcloud_integration.pipeline import batches
from sendcloud_integration.push import services
from sendcloud_integration.push.selection import SelectionError, StateFilter, select_order_ids
from sendcloud_integration.selectors.batches import watch_batches
from tests.commands.conftest import Output, run
from tests.factories import OrderFactory
from webshop.models import Order, Shop

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "push_sendcloud_shipments"


@pytest.fixture(autouse=True)
def start_batch() -> Iterator[mock.Mock]:
    """Nothing leaves the process: the push commits its batch, and no worker is asked to run it."""
    with mock.patch("sendcloud_integration.pipeline.dispatch.start_batch") as patched:
        yield patched


def push(*args: str, **options: Any) -> Output:
    return run(COMMAND, "--shop", "acme", *args, **options)


def fails(*args: str, **options: Any) -> CommandError:
    """Run the command expecting a ``CommandError``; return it after checking it is one line."""
    with pytest.raises(CommandError) as caught:
        push(*args, **options)
    assert "\n" not in str(caught.value)
    return caught.value


def push_capturing(*args: str) -> tuple[str, str, CommandError | None]:
    """Like ``push`` but keeps stdout and stderr when the command fails too (``--wait``'s exit 1)."""
    out, err = StringIO(), StringIO()
    try:
        call_command(COMMAND, "--shop", "acme", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def shipment(order: Order, state: ShipmentState, **fields: Any) -> OrderShipment:
    return OrderShipment.objects.create(order=order, shop=order.shop, state=state, **fields)


def snapshot() -> tuple[int, list[tuple[Any, ...]]]:
    """Everything a push may change: the batches and every shipment row."""
    rows = OrderShipment.objects.order_by("pk").values_list("order_id", "state", "batch_id", "queued_at", "updated_at")
    return PushBatch.objects.count(), list(rows)


def batch_ids(output: Output) -> list[str]:
    return [line.split()[-1] for line in output.stdout.splitlines() if line.strip().startswith("batch ")]


# --- selectors -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("integration")
def test_order_ids_are_pushed_through_the_service(shop: Shop) -> None:
    first, second, other = OrderFactory.create_batch(3, shop=shop)

    output = push("--order-ids", f"{first.pk},{second.pk}")

    batch = PushBatch.objects.get()
    assert batch_ids(output) == [str(batch.pk)]
    assert batch.started_by_kind == StartedBy.COMMAND
    assert batch.started_by_label.startswith("command push_sendcloud_shipments")
    assert set(OrderShipment.objects.values_list("order_id", "state")) == {
        (first.pk, ShipmentState.QUEUED),
        (second.pk, ShipmentState.QUEUED),
    }
    assert f"Selected 2 orders of shop acme (--order-ids {first.pk},{second.pk})." in output.stdout
    assert "2 orders queued for SendCloud in 1 chunk." in output.stdout
    assert "new 2, retry 0, skipped 0, queued 2, chunks 1" in output.stdout
    assert output.stderr == ""
    assert not OrderShipment.objects.filter(order=other).exists()


@pytest.mark.usefixtures("integration")
def test_order_ids_from_stdin_as_json_and_from_a_file(shop: Shop, tmp_path: Path) -> None:
    orders = OrderFactory.create_batch(4, shop=shop)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"# the first two\n{orders[0].pk}\n{orders[1].pk}\n", encoding="utf-8")

    from_file = push("--order-ids", f"@{ids_file}", "--dry-run")
    from_stdin = push("--order-ids", "-", "--dry-run", stdin=StringIO(f"[{orders[2].pk}, {orders[3].pk}]"))

    assert "Selected 2 orders" in from_file.stdout
    assert "Selected 2 orders" in from_stdin.stdout
    assert "new 2, retry 0, skipped 0" in from_file.stdout + from_stdin.stdout


@pytest.mark.usefixtures("integration")
def test_ids_of_other_shops_are_reported_not_pushed(shop: Shop) -> None:
    mine = OrderFactory(shop=shop)
    theirs = OrderFactory()

    output = push("--order-ids", f"{mine.pk},{theirs.pk},999999")

    assert f"not orders of this shop: #{theirs.pk}, #999999." in output.stdout
    assert list(OrderShipment.objects.values_list("order_id", flat=True)) == [mine.pk]


@pytest.fixture
def one_order_per_state(shop: Shop) -> dict[str, Order]:
    """An order of ``shop`` in every state a selector can name (keys are ``StateFilter`` values)."""
    orders = {state.value: OrderFactory(shop=shop, order_number=f"S-{state.value}") for state in StateFilter}
    for state in ShipmentState:
        shipment(
            orders[state.value], state, labelled_at=datetime(2026, 1, 1, tzinfo=UTC) if state == "labelled" else None
        )
    # In Sendcloud and labelled already, though the row still says PUSHED: not "pushed without label".
    shipment(
        OrderFactory(shop=shop, order_number="S-pushed-with-label"),
        ShipmentState.PUSHED,
        labelled_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return orders


@pytest.mark.parametrize("state", list(StateFilter))
def test_each_state_selects_its_orders(shop: Shop, one_order_per_state: dict[str, Order], state: StateFilter) -> None:
    selection = select_order_ids(shop=shop, states=[state])

    assert selection.order_ids == [one_order_per_state[state.value].pk]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("failed", [StateFilter.FAILED]),
        ("never-pushed,FAILED,failed", [StateFilter.NEVER_PUSHED, StateFilter.FAILED]),
        ("label-queued, never_pushed", [StateFilter.LABEL_QUEUED, StateFilter.NEVER_PUSHED]),
    ],
)
def test_state_names_are_forgiving(text: str, expected: list[StateFilter]) -> None:
    assert StateFilter.parse(text) == expected


def test_selection_requires_a_criterion(shop: Shop) -> None:
    with pytest.raises(SelectionError, match="no selection given"):
        select_order_ids(shop=shop)


@pytest.mark.usefixtures("integration")
def test_state_selectors_through_the_command(shop: Shop, one_order_per_state: dict[str, Order]) -> None:
    failed = one_order_per_state["failed"]
    never = one_order_per_state["never-pushed"]

    output = push("--state", "failed,never-pushed", "-v", "2")

    assert "new 1, retry 1, skipped 0, queued 2" in output.stdout
    assert f"{failed.order_number} (#{failed.pk}): retry, chunk 1" in output.stdout
    assert f"{never.order_number} (#{never.pk}): new, chunk 1" in output.stdout
    assert OrderShipment.objects.get(order=failed).state == ShipmentState.QUEUED


@pytest.mark.usefixtures("integration")
def test_pushed_state_with_create_label_queues_label_work(shop: Shop, one_order_per_state: dict[str, Order]) -> None:
    without_label = push("--state", "pushed", "--dry-run")
    with_label = push("--state", "pushed", "--create-label")

    assert "skipped 1" in without_label.stdout
    assert "1  already pushed to SendCloud" in without_label.stdout
    assert "new 1, retry 0, skipped 0, queued 1" in with_label.stdout
    assert PushBatch.objects.get().create_label is True


def test_since_and_until_bound_created_at(shop: Shop) -> None:
    def order_at(moment: str) -> int:
        return OrderFactory(shop=shop, created_at=datetime.fromisoformat(moment)).pk

    before = order_at("2026-10-31T23:59:59+00:00")
    first = order_at("2026-11-01T00:00:00+00:00")
    late = order_at("2026-11-30T23:59:59+00:00")
    after = order_at("2026-12-01T00:00:00+00:00")

    def selected(**bounds: datetime) -> list[int]:
        return select_order_ids(shop=shop, **bounds).order_ids

    november = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert selected(since=november[0], until=november[1]) == [first, late]
    assert selected(since=november[1]) == [after]
    assert selected(until=november[0]) == [before]


@pytest.mark.usefixtures("integration")
@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-11-01", "2026-12-01"),  # dates: midnight UTC
        ("2026-11-01T00:00:00", "2026-12-01T00:00"),  # naive: UTC
        ("2026-11-01T01:00:00+01:00", "2026-12-01T00:00:00Z"),  # aware, any offset
    ],
)
def test_since_until_flags_parse_dates_naive_as_utc(shop: Shop, since: str, until: str) -> None:
    OrderFactory(shop=shop, created_at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    inside = OrderFactory(shop=shop, created_at=datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
    OrderFactory(shop=shop, created_at=datetime(2026, 12, 1, 0, 0, tzinfo=UTC))

    output = push("--since", since, "--until", until, "-v", "2", "--dry-run")

    assert "Selected 1 order of shop acme" in output.stdout
    assert f"(#{inside.pk}): new" in output.stdout


@pytest.mark.usefixtures("integration")
def test_selectors_combine_and_limit_caps(shop: Shop) -> None:
    old_failed = OrderFactory(shop=shop, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    new_failed = OrderFactory.create_batch(3, shop=shop, created_at=datetime(2026, 6, 1, tzinfo=UTC))
    new_unpushed = OrderFactory(shop=shop, created_at=datetime(2026, 6, 1, tzinfo=UTC))
    for order in [old_failed, *new_failed]:
        shipment(order, ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="boom")

    state_and_date = select_order_ids(shop=shop, states=[StateFilter.FAILED], since=datetime(2026, 3, 1, tzinfo=UTC))
    ids_and_state = select_order_ids(shop=shop, order_ids=[old_failed.pk, new_unpushed.pk], states=[StateFilter.FAILED])
    output = push("--state", "failed", "--since", "2026-03-01", "--limit", "2")

    assert state_and_date.order_ids == [order.pk for order in new_failed]
    assert ids_and_state.order_ids == [old_failed.pk]
    assert ids_and_state.unknown_ids == []
    assert "Selected 2 orders of shop acme (--state failed --since 2026-03-01), capped by --limit 2." in output.stdout
    assert "retry 2" in output.stdout
    assert set(OrderShipment.objects.filter(state=ShipmentState.QUEUED).values_list("order_id", flat=True)) == {
        new_failed[0].pk,
        new_failed[1].pk,
    }


def test_selection_and_polling_take_a_fixed_number_of_queries(
    shop: Shop, integration: SendcloudIntegration, django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = OrderFactory.create_batch(12, shop=shop)
    ids = [order.pk for order in orders]
    first = services.push_orders(shop=shop, order_ids=ids[:3], create_label=False, actor=services.Actor.command())
    second = services.push_orders(shop=shop, order_ids=ids[3:5], create_label=False, actor=services.Actor.command())
    batches = [str(first.batch_id), str(second.batch_id)]

    with django_assert_num_queries(1):
        select_order_ids(
            shop=shop, states=[StateFilter.NEVER_PUSHED, StateFilter.QUEUED], since=datetime(2000, 1, 1, tzinfo=UTC)
        )
    with django_assert_num_queries(1):
        select_order_ids(shop=shop, order_ids=ids)
    with django_assert_num_queries(2):  # ids plus another criterion: which exist, which match
        select_order_ids(shop=shop, order_ids=ids, states=[StateFilter.QUEUED])
    monkeypatch.setattr("sendcloud_integration.push.selection.ID_BATCH", 5)
    with django_assert_num_queries(3):  # one per ID_BATCH explicit ids
        assert select_order_ids(shop=shop, order_ids=ids).order_ids == ids
    with django_assert_num_queries(2):
        watches = watch_batches(batch_ids=batches)
    assert [(watch.queued, watch.done, watch.is_finished) for watch in watches] == [(3, 0, False), (2, 0, False)]


def test_progress_counts_pushed_orders_as_done_only_without_labels(
    shop: Shop, integration: SendcloudIntegration
) -> None:
    ids = [order.pk for order in OrderFactory.create_batch(3, shop=shop)]
    result = services.push_orders(shop=shop, order_ids=ids, create_label=True, actor=services.Actor.command())
    rows = OrderShipment.objects.filter(batch_id=result.batch_id)
    rows.update(state=ShipmentState.PUSHED)
    rows.filter(order_id=ids[0]).update(state=ShipmentState.LABELLED)
    rows.filter(order_id=ids[1]).update(batch=None)  # re-queued by a later push: done as far as this batch goes

    (watch,) = watch_batches(batch_ids=[str(result.batch_id)])

    assert (watch.queued, watch.done, watch.pushed, watch.labelled, watch.failed) == (3, 2, 2, 1, 0)


# --- dry run, chunks, splitting --------------------------------------------------------------------------


@pytest.mark.usefixtures("integration")
def test_dry_run_changes_nothing(shop: Shop, start_batch: mock.Mock) -> None:
    OrderFactory.create_batch(3, shop=shop)
    shipment(OrderFactory(shop=shop), ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="boom")
    OrderFactory(shop=shop, status=Order.Status.PENDING)
    before = snapshot()

    output = push("--state", "never-pushed,failed", "--dry-run", "-v", "2")

    assert snapshot() == before
    assert PushBatch.objects.count() == 0
    start_batch.assert_not_called()
    assert "4 orders would be queued for SendCloud in 1 chunk." in output.stdout
    assert "new 3, retry 1, skipped 1, queued 4" in output.stdout
    assert ": skipped, order status is pending" in output.stdout
    assert "batch " not in output.stdout
    assert output.stdout.rstrip().endswith("Dry run: nothing was changed.")


@pytest.mark.usefixtures("integration")
def test_chunk_size_splits_the_batch_into_chunks(shop: Shop) -> None:
    OrderFactory.create_batch(5, shop=shop)

    output = push("--state", "never-pushed", "--chunk-size", "2")

    assert "5 orders queued for SendCloud in 3 chunks." in output.stdout
    assert PushBatch.objects.get().total_chunks == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chunk-size", "0"], "--chunk-size must be between 1 and 100, not 0"),
        (["--chunk-size", "101"], "--chunk-size must be between 1 and 100, not 101"),
        (["--chunk-size", "x"], "Error: argument --chunk-size: invalid int value: 'x'"),
        (["--limit", "0"], "--limit must be at least 1, not 0"),
    ],
)
@pytest.mark.usefixtures("integration")
def test_chunk_size_and_limit_are_validated(args: list[str], message: str) -> None:
    error = fails("--state", "failed", *args)

    assert str(error) == message
    assert error.returncode == 2
    assert PushBatch.objects.count() == 0


@pytest.mark.usefixtures("integration")
def test_selections_above_the_push_limit_become_several_batches(shop: Shop, settings: Any) -> None:
    settings.PUSH_MAX_ORDER_IDS = 2
    orders = OrderFactory.create_batch(5, shop=shop)

    output = push("--state", "never-pushed")

    batches = {str(batch.pk): batch for batch in PushBatch.objects.all()}
    printed = batch_ids(output)
    assert sorted(printed) == sorted(batches)
    assert [batches[pk].queued_orders for pk in printed] == [2, 2, 1]
    assert f"Push 1 of 3 (orders #{orders[0].pk}-#{orders[1].pk})" in output.stdout
    assert "Total: new 5, retry 0, skipped 0, queued 5, chunks 3, in 3 batches." in output.stdout
    queued_in = dict(OrderShipment.objects.values_list("order_id", "batch_id"))
    assert str(queued_in[orders[4].pk]) == printed[2]


@pytest.mark.usefixtures("integration")
def test_quiet_output_is_the_batch_ids_alone(shop: Shop, settings: Any) -> None:
    settings.PUSH_MAX_ORDER_IDS = 2
    OrderFactory.create_batch(3, shop=shop)

    output = push("--state", "never-pushed", "-v", "0")

    assert output.stdout.splitlines() == [str(uuid.UUID(line)) for line in output.stdout.splitlines()]
    assert len(output.stdout.splitlines()) == 2


@pytest.mark.usefixtures("integration")
def test_skipped_reasons_are_grouped_with_counts(shop: Shop) -> None:
    OrderFactory.create_batch(2, shop=shop, type=Order.Type.QUOTE)
    OrderFactory(shop=shop, status=Order.Status.CANCELLED)
    OrderFactory(shop=shop)

    output = push("--state", "never-pushed")

    assert "Skipped, by reason:\n  2  quote orders cannot be shipped\n  1  order status is cancelled\n" in output.stdout


# --- waiting ---------------------------------------------------------------------------------------------


def worker_finishing(fail_one: bool = False) -> Callable[[float], None]:
    """A stand-in for ``sleep`` that does a worker's job on its first call: push, fail one, finish."""
    calls: list[float] = []

    def fake_sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) > 1:
            return
        for batch in PushBatch.objects.all():
            rows = OrderShipment.objects.filter(batch=batch).order_by("order_id")
            if fail_one:
                rows.filter(pk=rows[0].pk).update(
                    state=ShipmentState.FAILED, failed_phase=Phase.PUSH, last_error="postal_code: too long\nmore"
                )
            rows.filter(state=ShipmentState.QUEUED).update(state=ShipmentState.PUSHED)
            batches.finish_batch(batch_id=batch.pk)

    return fake_sleep


@pytest.mark.usefixtures("integration")
def test_wait_exits_zero_when_every_order_was_pushed(shop: Shop, settings: Any) -> None:
    settings.PUSH_MAX_ORDER_IDS = 2
    OrderFactory.create_batch(3, shop=shop)

    with mock.patch.object(command, "sleep", side_effect=worker_finishing()) as sleep:
        out, err, error = push_capturing("--state", "never-pushed", "--wait", "--progress")

    assert error is None
    assert sleep.call_count == 1
    assert sleep.call_args.args == (2.0,)
    finished = [line for line in out.splitlines() if line.startswith("Batch ")]
    assert len(finished) == 2
    assert all(": completed - pushed" in line and "failed 0" in line for line in finished)
    assert "3/3" in err  # the forced progress bar reached the end


@pytest.mark.usefixtures("integration")
def test_wait_exits_one_and_lists_the_failures(shop: Shop) -> None:
    first, _ = OrderFactory.create_batch(2, shop=shop)

    with mock.patch.object(command, "sleep", side_effect=worker_finishing(fail_one=True)):
        out, err, error = push_capturing("--state", "never-pushed", "--wait")

    assert error is not None
    assert error.returncode == 1
    assert str(error) == "1 of 2 orders failed"
    assert PushBatch.objects.get().status == BatchStatus.COMPLETED_WITH_ERRORS
    assert "completed_with_errors - pushed 1, labelled 0, failed 1, of 2 queued." in out
    assert f"Failed orders (1):\n  {first.order_number}: postal_code: too long\n" in out
    assert err == ""  # stderr is no terminal and --progress was not given: no bar


@pytest.mark.usefixtures("integration")
def test_wait_times_out_with_exit_three(shop: Shop) -> None:
    OrderFactory(shop=shop)
    clock = [1000.0]

    def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    with (
        mock.patch.object(command, "monotonic", side_effect=lambda: clock[0]),
        mock.patch.object(command, "sleep", side_effect=fake_sleep) as sleep,
    ):
        error = fails("--state", "never-pushed", "--wait", "--timeout", "5", "--poll-interval", "2")

    assert error.returncode == 3
    assert str(error).startswith("timed out after 5s: 1 of 1 batches still running (0/1 orders done)")
    assert [call.args[0] for call in sleep.call_args_list] == [2, 2, 1]


@pytest.mark.usefixtures("integration")
def test_wait_with_nothing_queued_returns_at_once(shop: Shop) -> None:
    OrderFactory(shop=shop, type=Order.Type.QUOTE)

    with mock.patch.object(command, "sleep") as sleep:
        output = push("--state", "never-pushed", "--wait")

    sleep.assert_not_called()
    assert "nothing to wait for" in output.stdout


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("integration")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "choose the orders to push: give --order-ids, --state, --since and/or --until"),
        (["--since", "2026-13-01"], "--since: '2026-13-01' is not an ISO 8601 date or date-time"),
        (["--until", "yesterday"], "--until: 'yesterday' is not an ISO 8601 date or date-time"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "the range is empty"),
        (["--state", "lost"], "--state: unknown state 'lost'; known states: never-pushed, queued"),
        (["--order-ids", "1,x"], "--order-ids: 'x' is not an order id (a positive integer)"),
        (["--order-ids", "-"], "--order-ids: '0' in stdin is not an order id"),
        (["--order-ids", "@/no/such/file"], "--order-ids: cannot read /no/such/file: No such file or directory"),
        (["--state", "failed", "--wait", "--dry-run"], "--wait cannot be combined with --dry-run"),
        (["--state", "failed", "--timeout", "3"], "--timeout only applies with --wait"),
        (["--state", "failed"], "None of the requested orders exist in this shop. Nothing matches --state failed."),
    ],
)
def test_bad_input_is_one_line_with_exit_two(args: list[str], message: str) -> None:
    error = fails(*args, stdin=StringIO("1\n0\n"))

    assert str(error).startswith(message)
    assert error.returncode == 2


@pytest.mark.django_db
def test_unknown_shop() -> None:
    error = fails("--state", "failed")

    assert str(error) == "unknown shop 'acme' (see: manage.py create_shop)"
    assert error.returncode == 2


def test_no_integration_gives_the_service_message(shop: Shop) -> None:
    order = OrderFactory(shop=shop)

    error = fails("--order-ids", str(order.pk))

    assert str(error) == "This shop has no SendCloud integration configured."
    assert error.returncode == 2


def test_inactive_integration_changes_nothing(shop: Shop, integration: SendcloudIntegration) -> None:
    integration.is_active = False
    integration.save()
    order = OrderFactory(shop=shop)

    error = fails("--order-ids", str(order.pk))

    assert str(error) == "This shop's SendCloud integration is inactive."
    assert PushBatch.objects.count() == 0


# --- as an operator runs it ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated throw-away SQLite database for ``python manage.py …`` in a child process."""
    tmp = tmp_path_factory.mktemp("push-cli")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wemasy.settings",
        "DJANGO_SECRET_KEY": "x",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "VAR_DIR": str(tmp / "var"),
    }
    migrated = manage(env, "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "returncode", "line"),
    [
        ([COMMAND], 2, "manage.py push_sendcloud_shipments: error: the following arguments are required: --shop"),
        ([COMMAND, "--shop", "x", "--bogus"], 2, "push_sendcloud_shipments: error: unrecognized arguments: --bogus"),
        ([COMMAND, "--shop", "x", "--limit", "many"], 2, "error: argument --limit: invalid int value: 'many'"),
        ([COMMAND, "--shop", "nowhere", "--state", "failed"], 2, "CommandError: unknown shop 'nowhere'"),
        (["create_shop"], 2, "manage.py create_shop: error: the following arguments are required: SLUG"),
    ],
)
def test_errors_from_the_command_line_are_one_line(
    cli_env: dict[str, str], args: list[str], returncode: int, line: str
) -> None:
    result = manage(cli_env, *args)

    assert result.returncode == returncode
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "usage:" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert line in lines[0]


def test_help_still_works_and_documents_exit_codes(cli_env: dict[str, str]) -> None:
    result = manage(cli_env, COMMAND, "--help")

    assert result.returncode == 0, result.stderr
    assert "Exit codes:\n  0  " in result.stdout
    assert "  3  --wait: --timeout passed" in result.stdout
