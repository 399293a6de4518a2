"""``manage.py sendcloud_tracking --shop SLUG (--webhook on|off|status | --cancel ID [ID …] | --poll)``.

The operator's door to what happens after the label: the integration's webhook in Sendcloud, cancelling
labels (the same ``tracking.cancel.cancel_labels`` as the API and the admin), and one round of the polling
fallback now. Exit 0 when everything asked was done, 1 when Sendcloud refused something, 2 for bad usage.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.tracking import cancel, polling, setup
from webshop.management.base import OperatorCommand, input_error
from webshop.services import ServiceError, get_shop_by_slug


class Command(OperatorCommand):
    help = (
        "After the label: turn the shop's webhook on or off in Sendcloud (or show it), cancel labels of "
        "orders by id, or poll the parcel statuses of integrations without a webhook once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", metavar="SLUG", help="The shop's slug (not needed for --poll).")
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--webhook",
            choices=("on", "off", "status"),
            help="Set the webhook in Sendcloud to this service's receiver (on), turn it off, or show it.",
        )
        what.add_argument(
            "--cancel",
            nargs="+",
            type=int,
            metavar="ORDER_ID",
            help=f"Cancel the labels of these orders (at most {cancel.MAX_CANCEL_ORDER_IDS}).",
        )
        what.add_argument("--poll", action="store_true", help="Poll due parcel statuses once, for every shop.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["poll"]:
            report = polling.poll_parcels()
            self.stdout.write(
                f"Read {report.parcels_read} parcel(s) in {report.requests} request(s); "
                f"{report.statuses_applied} new status(es); {report.deferred} left for later."
            )
            return
        if not options["shop"]:
            raise input_error("--shop is required with --webhook and --cancel")
        try:
            shop = get_shop_by_slug(slug=options["shop"])
        except ServiceError as exc:
            raise input_error(str(exc)) from exc
        if options["webhook"]:
            integration = SendcloudIntegration.objects.filter(shop=shop).first()
            if integration is None:
                raise CommandError(f"Shop {shop.slug} has no Sendcloud integration.", returncode=1)
            choice = options["webhook"]
            state = (
                setup.webhook_status(integration)
                if choice == "status"
                else setup.set_webhook(integration, active=choice == "on")
            )
            where = f" at {state.url}" if state.url else ""
            self.stdout.write(f"{shop.slug}: the webhook is {'on' if state.active else 'off'}{where}.")
            if state.active and not state.ours:
                self.stdout.write("Warning: that is not this service's receiver URL.")
            return
        ids = options["cancel"]
        if len(ids) > cancel.MAX_CANCEL_ORDER_IDS:
            raise input_error(f"--cancel takes at most {cancel.MAX_CANCEL_ORDER_IDS} order ids")
        summary = cancel.cancel_labels(shop=shop, order_ids=ids)
        for outcome in summary.cancelled:
            self.stdout.write(f"cancelled    {outcome.order_number}: {outcome.message}")
        for outcome in summary.cancellation_requested:
            self.stdout.write(f"requested    {outcome.order_number}: {outcome.message}")
        for outcome in summary.refused:
            self.stdout.write(f"refused      {outcome.order_number or outcome.order_id}: {outcome.message}")
        self.stdout.write(summary.message)
        if summary.refused:
            raise CommandError(f"{len(summary.refused)} label(s) not cancelled.", returncode=1)
