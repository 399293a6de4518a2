"""Services that set up a shop's Sendcloud integration (the account, not the pushes).

Kept apart from ``services.py``, which holds the push pipeline: configuring credentials is an
operator's set-up step with different callers (``configure_sendcloud``, ``seed_demo``, the admin),
and it never touches shipments.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass

from django.db import models, transaction

from sendcloud_integration.limits import MAX_BIGINT
from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, SendcloudError
from sendcloud_integration.sendcloud.factory import build_client
from webshop.models import Shop
from webshop.services import ServiceError

logger = logging.getLogger(__name__)


class SendcloudConfigError(ServiceError):
    """The integration settings given are unusable; the message names the setting."""


def configure_sendcloud(
    *,
    shop: Shop,
    public_key: str,
    secret_key: str,
    integration_id: int,
    sender_address_id: int | None = None,
    shipping_option_code: str | None = None,
    active: bool = True,
) -> tuple[SendcloudIntegration, bool]:
    """Create or update ``shop``'s Sendcloud integration to exactly these settings; returns ``(it, created)``.

    Declarative: the result is what the arguments say, so ``sender_address_id=None`` or an empty
    ``shipping_option_code`` clears a value set before. That makes re-running a set-up script
    predictable, whatever was there.

    When the keys change, ``is_connected`` is set back to True and the last connection error is
    cleared: that flag records that Sendcloud refused the *old* keys (401/403), and keeping it would
    block pushes with the new ones until someone noticed. Unchanged keys leave the flag alone, so
    re-running the command does not hide a real refusal.
    """
    public_key = public_key.strip()
    secret_key = secret_key.strip()
    code = (shipping_option_code or "").strip()
    _check(
        public_key=public_key,
        secret_key=secret_key,
        integration_id=integration_id,
        sender_address_id=sender_address_id,
        shipping_option_code=code,
    )
    values = {
        "public_key": public_key,
        "secret_key": secret_key,
        "integration_id": integration_id,
        "sender_address_id": sender_address_id,
        "shipping_option_code": code,
        "is_active": active,
    }
    with transaction.atomic():
        # The row lock makes two concurrent runs apply one after the other instead of interleaving.
        integration, created = SendcloudIntegration.objects.select_for_update().get_or_create(
            shop=shop, defaults=values
        )
        if created:
            return integration, True
        keys_changed = integration.public_key != public_key or integration.secret_key != secret_key
        for name, value in values.items():
            setattr(integration, name, value)
        if keys_changed:
            integration.is_connected = True
            integration.connection_error = ""
            integration.connection_checked_at = None
        integration.save()
    return integration, False


def _check(
    *,
    public_key: str,
    secret_key: str,
    integration_id: int,
    sender_address_id: int | None,
    shipping_option_code: str,
) -> None:
    """Refuse what Sendcloud would refuse anyway, now, with a message naming the setting."""
    if not public_key:
        raise SendcloudConfigError("the public key must not be empty")
    if not secret_key:
        raise SendcloudConfigError("the secret key must not be empty")
    for label, value in (("public key", public_key), ("secret key", secret_key)):
        limit = _max_length(label.replace(" ", "_"))
        if len(value) > limit:
            raise SendcloudConfigError(f"the {label} is too long: at most {limit} characters")
    if not 1 <= integration_id <= MAX_BIGINT:
        raise SendcloudConfigError("the integration id must be a positive integer")
    if sender_address_id is not None and not 1 <= sender_address_id <= MAX_BIGINT:
        raise SendcloudConfigError("the sender address id must be a positive integer")
    limit = _max_length("shipping_option_code")
    if len(shipping_option_code) > limit:
        raise SendcloudConfigError(f"the shipping option code is too long: at most {limit} characters")


def _max_length(field_name: str) -> int:
    field = SendcloudIntegration._meta.get_field(field_name)
    assert isinstance(field, models.Field)
    assert field.max_length is not None
    return field.max_length


class CheckOutcome(enum.Enum):
    CONNECTED = "connected"
    WRONG_INTEGRATION = "wrong_integration"  # the keys work, but the integration id is not theirs
    INCONCLUSIVE = "inconclusive"  # no answer, a 5xx, or no budget: nothing learnt about the keys
    REFUSED = "refused"  # 401/403: the keys do not work


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of asking Sendcloud whether the stored credentials work, for a person to read."""

    outcome: CheckOutcome
    message: str


def verify_connection(*, integration: SendcloudIntegration) -> ConnectionCheck:
    """Call Sendcloud's cheapest authenticated endpoint with the stored keys and record the answer.

    Only a clear refusal (401/403) marks the integration as not connected, as the chunk worker does;
    a timeout or 5xx says nothing about the keys, so it is reported and the stored state is kept.
    The call goes through the shared request budget and is written to the API-call log like any
    other. The keys stay inside the client: messages and logs carry Sendcloud's answer only.
    """
    wait = budget.take(public_key=integration.public_key, kind=budget.Kind.SAFE)
    if wait:
        return ConnectionCheck(
            CheckOutcome.INCONCLUSIVE,
            f"The Sendcloud request budget of this account is spent; try again in {math.ceil(wait)} s.",
        )
    call_log = CallLog(shop_id=integration.shop_id)
    client = build_client(integration, call_log)
    try:
        found = client.list_integrations()
    except AuthenticationError as exc:
        integration.mark_disconnected(exc.message)
        logger.warning("shop=%s connection check: Sendcloud refused the credentials", integration.shop_id)
        return ConnectionCheck(CheckOutcome.REFUSED, f"Sendcloud refused the credentials: {exc.message}")
    except SendcloudError as exc:
        logger.warning("shop=%s connection check inconclusive: %s", integration.shop_id, exc.message)
        return ConnectionCheck(
            CheckOutcome.INCONCLUSIVE,
            f"Could not verify the connection (the stored state is unchanged): {exc.message}",
        )
    finally:
        call_log.flush()

    integration.mark_connected()
    listed = {str(item.get("id")): str(item.get("shop_name") or "") for item in found}
    names = ", ".join(f"{pk} ({name})" if name else pk for pk, name in listed.items()) or "none"
    if str(integration.integration_id) not in listed:
        return ConnectionCheck(
            CheckOutcome.WRONG_INTEGRATION,
            f"Sendcloud accepted the credentials, but integration {integration.integration_id} is not one of "
            f"this account's integrations: {names}. Orders pushed now will be refused.",
        )
    return ConnectionCheck(
        CheckOutcome.CONNECTED,
        f"Sendcloud accepted the credentials. Integrations on this account: {names}.",
    )
