"""Services that set up a shop's Sendcloud integration (the account, not the pushes).

Kept apart from ``services.py``, which holds the push pipeline: configuring credentials is an
operator's set-up step with different callers (``configure_sendcloud``, ``seed_demo``, the admin),
and it never touches shipments.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from django.db import models, transaction

from sendcloud_integration.exceptions import SendcloudRefused, SendcloudUnavailable
from sendcloud_integration.limits import MAX_BIGINT
from sendcloud_integration.models import SendcloudIntegration
from sendcloud_integration.sendcloud import budget
from sendcloud_integration.sendcloud.call_log import CallLog
from sendcloud_integration.sendcloud.errors import AuthenticationError, SendcloudError, TransientError
from sendcloud_integration.sendcloud.factory import build_client, build_client_for_keys
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
            # Another account may offer other shipping methods: read the catalogue again before trusting it.
            integration.shipping_options_synced_at = None
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
            budget.spent_message(wait),
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


def verify_credentials(
    *, shop: Shop, public_key: str, secret_key: str, integration_id: int | None = None
) -> SendcloudIntegration:
    """Ask Sendcloud whether these keys work; if they do, store them and mark the integration connected.

    The keys are tried before anything is stored (``GET /v3/integrations``, one slot of the *new* account's
    read budget, not slept for). The Sendcloud integration the orders go to is ``integration_id`` when
    given, else the one already configured, else the account's only one; it must be one of the account's.
    The shop's other settings (sender address, default shipping method, active) are kept. Raises
    :class:`SendcloudRefused` (400, Sendcloud's reason; an integration stored with these very keys is marked
    not connected) or :class:`SendcloudUnavailable` (503); nothing is stored then.
    """
    public_key, secret_key = public_key.strip(), secret_key.strip()
    _check(
        public_key=public_key,
        secret_key=secret_key,
        integration_id=integration_id or 1,
        sender_address_id=None,
        shipping_option_code="",
    )
    wait = budget.take(public_key=public_key, kind=budget.Kind.SAFE)
    if wait:
        raise SendcloudUnavailable(budget.spent_message(wait))
    existing = SendcloudIntegration.objects.filter(shop=shop).first()
    call_log = CallLog(shop_id=shop.pk)
    client = build_client_for_keys(public_key, secret_key, call_log)
    try:
        listed = client.list_integrations()
    except AuthenticationError as exc:
        if existing is not None and existing.public_key == public_key and existing.secret_key == secret_key:
            existing.mark_disconnected(exc.message)
        raise SendcloudRefused(f"Sendcloud refused the credentials: {exc.message}") from exc
    except TransientError as exc:
        raise SendcloudUnavailable(f"Could not reach Sendcloud to verify the credentials: {exc.message}") from exc
    except SendcloudError as exc:
        raise SendcloudRefused(f"Sendcloud did not accept the verification request: {exc.message}") from exc
    finally:
        call_log.flush()

    ids = [int(item["id"]) for item in listed if str(item.get("id", "")).isdigit()]
    names = ", ".join(str(i) for i in ids) or "none"
    chosen = integration_id or (existing.integration_id if existing and existing.integration_id in ids else None)
    if chosen is None and len(ids) == 1:
        chosen = ids[0]
    if chosen is None:
        raise SendcloudRefused(
            f"Sendcloud accepted the credentials, but the account has several integrations ({names}); "
            "send integration_id to choose one. Nothing was stored."
        )
    if chosen not in ids:
        raise SendcloudRefused(
            f"Sendcloud accepted the credentials, but integration {chosen} is not one of this account's "
            f"integrations ({names}). Nothing was stored."
        )
    integration, _ = configure_sendcloud(
        shop=shop,
        public_key=public_key,
        secret_key=secret_key,
        integration_id=chosen,
        sender_address_id=existing.sender_address_id if existing else None,
        shipping_option_code=existing.shipping_option_code if existing else None,
        active=existing.is_active if existing else True,
    )
    integration.mark_connected()
    logger.info("shop=%s Sendcloud credentials verified and stored (integration %s)", shop.pk, chosen)
    return integration
