"""Configuration of the sandbox: accounts, timings, rate limits and faults.

Plain dataclasses built from JSON, so one file format drives the CLI (``--config FILE.json``), the
programmatic API and the run-time ``/_sandbox/config`` endpoint alike. Every value is checked when
the config is built, so a typo in a test fails loudly instead of silently running without the fault
or limit the test meant to exercise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sendcloud_sandbox.faults import FaultSpec, parse_fault_kinds, parse_fault_table

JsonDict = dict[str, Any]

DEFAULT_PUBLIC_KEY = "sandbox-public"
DEFAULT_SECRET_KEY = "sandbox-secret"  # noqa: S105 - a well-known sandbox credential, not a secret
DEFAULT_INTEGRATION_ID = 1001


def _default_sender_address() -> JsonDict:
    """The sender ("from") address put on shipments, like an account's default sender address."""
    return {
        "name": "Sandbox Shop",
        "company_name": "Sandbox Shop B.V.",
        "address_line_1": "Stadhuisplein",
        "house_number": "10",
        "postal_code": "5611 EM",
        "city": "Eindhoven",
        "country_code": "NL",
        "email": "shop@sandbox.invalid",
        "phone_number": "+31612345678",
    }


class ConfigError(ValueError):
    """A config value is missing, of the wrong type or out of range."""


def _check_type(name: str, value: Any, expected: type | tuple[type, ...]) -> None:
    """Reject ``value`` unless it is an ``expected``; bools never pass as numbers."""
    if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,)):
        raise ConfigError(f"{name} must be {expected}, got a boolean")
    if not isinstance(value, expected):
        raise ConfigError(f"{name} must be {expected}, got {type(value).__name__}")


def _int_list(name: str, value: Any) -> list[int]:
    """Check a JSON list of integers (integration or sender address ids)."""
    _check_type(name, value, list)
    for item in value:
        _check_type(f"{name}[]", item, int)
    return list(value)


@dataclass
class Account:
    """One Sendcloud account as the sandbox knows it: its API key pair and what it may touch.

    ``sender_address_ids`` empty means "any sender address id is accepted"; a non-empty list makes
    ``create-labels-async`` answer "Does not exist." for other ids, like the real API.
    """

    public_key: str
    secret_key: str
    integration_ids: list[int] = field(default_factory=lambda: [DEFAULT_INTEGRATION_ID])
    sender_address_ids: list[int] = field(default_factory=list)
    sender_address: JsonDict = field(default_factory=_default_sender_address)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        """Build an account from its JSON form, rejecting unknown keys and wrong types."""
        _check_type("account", data, Mapping)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown account keys: {sorted(unknown)}")
        for key in ("public_key", "secret_key"):
            if key not in data:
                raise ConfigError(f"account needs {key}")
            _check_type(f"account.{key}", data[key], str)
            if not data[key]:
                raise ConfigError(f"account.{key} must not be empty")
        account = cls(public_key=data["public_key"], secret_key=data["secret_key"])
        if "integration_ids" in data:
            account.integration_ids = _int_list("account.integration_ids", data["integration_ids"])
        if "sender_address_ids" in data:
            account.sender_address_ids = _int_list("account.sender_address_ids", data["sender_address_ids"])
        if "sender_address" in data:
            _check_type("account.sender_address", data["sender_address"], Mapping)
            account.sender_address = dict(data["sender_address"])
        return account

    def to_dict(self) -> JsonDict:
        """JSON form of the account (including the secret: the sandbox holds no real credentials)."""
        return {
            "public_key": self.public_key,
            "secret_key": self.secret_key,
            "integration_ids": list(self.integration_ids),
            "sender_address_ids": list(self.sender_address_ids),
            "sender_address": dict(self.sender_address),
        }


def _default_accounts() -> list[Account]:
    return [Account(public_key=DEFAULT_PUBLIC_KEY, secret_key=DEFAULT_SECRET_KEY)]


# Keys whose JSON value is a plain number; the tuple says whether 0 is allowed.
_NON_NEGATIVE_FLOATS = (
    "label_delay_seconds",
    "order_visibility_delay_seconds",
    "timeout_seconds",
    "slow_seconds",
    "not_visible_seconds",
    "cancel_confirm_seconds",
    "cancel_window_seconds",
    "webhook_max_delay_seconds",
    "webhook_retry_seconds",
)
_RATES = ("webhook_duplicate_rate", "webhook_bad_signature_rate")
_POSITIVE_INTS = (
    "unsafe_per_minute",
    "unsafe_per_second",
    "safe_per_minute",
    "max_logged_requests",
    "webhook_max_attempts",
    "webhook_concurrency",
)


@dataclass
class SandboxConfig:
    """Everything that shapes the sandbox's behaviour; see README.md for the JSON file format.

    Defaults follow Sendcloud's documentation: 100 unsafe requests per minute with bursts of 15 per
    second, 1000 GETs per minute, per account; rate limits on; no faults.
    """

    accounts: list[Account] = field(default_factory=_default_accounts)
    label_delay_seconds: float = 0.5
    order_visibility_delay_seconds: float = 0.0
    rate_limits_enabled: bool = True
    rate_limit_scale: float = 1.0
    unsafe_per_minute: int = 100
    unsafe_per_second: int = 15
    safe_per_minute: int = 1000
    faults: dict[str, list[FaultSpec]] = field(default_factory=dict)
    fault_rate: float = 0.0
    fault_rate_kinds: list[str] | None = None
    seed: int | None = None
    timeout_seconds: float = 30.0
    slow_seconds: float = 2.0
    not_visible_seconds: float = 2.0
    allowed_currencies: list[str] = field(default_factory=lambda: ["EUR", "GBP", "USD"])
    default_shipping_option_code: str = "postnl:standard"
    max_logged_requests: int = 50_000
    record_bodies: bool = False
    # -- after the label (tracking.py, webhooks.py) --------------------------------------------------
    #: ``[seconds after READY_TO_SEND, status id]`` pairs each new label's parcels go through; [] stays ready.
    tracking_progression: list[list[float]] = field(default_factory=list)
    #: 0: a cancellation is done at once (200); more: queued (202) and confirmed after this many seconds.
    cancel_confirm_seconds: float = 0.0
    #: A label older than this cannot be cancelled (409); Sendcloud's is 42 days.
    cancel_window_seconds: float = 42 * 86400.0
    #: Whether shipments have a return portal link (else its endpoint answers 404 like Sendcloud's).
    return_portal_enabled: bool = True
    #: Webhook delivery: a copy sent twice, the order of due events shuffled, a random delay of up to N
    #: seconds per delivery (which reorders them too), a forged copy with a wrong signature sent first.
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False
    webhook_max_delay_seconds: float = 0.0
    webhook_bad_signature_rate: float = 0.0
    #: Retries of a delivery that did not get a 2xx (Sendcloud: 10, from 5 minutes): fast here.
    webhook_max_attempts: int = 10
    webhook_retry_seconds: float = 0.5
    webhook_concurrency: int = 8

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxConfig:
        """Build a config from its JSON form; missing keys keep their defaults."""
        _check_type("config", data, Mapping)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config keys: {sorted(unknown)}")
        return cls().updated(data)

    @classmethod
    def from_file(cls, path: str | Path) -> SandboxConfig:
        """Read a JSON config file (the ``--config`` option)."""
        with Path(path).open(encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def updated(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Return a copy with ``changes`` (JSON form) applied, each value checked."""
        values: dict[str, Any] = {}
        for key, value in changes.items():
            values[key] = _parse_value(key, value)
        return replace(self, **values)

    def to_dict(self) -> JsonDict:
        """JSON form of the config, readable back with :meth:`from_dict`."""
        result: JsonDict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "accounts":
                value = [account.to_dict() for account in value]
            elif f.name == "faults":
                value = {key: [spec.to_dict() for spec in specs] for key, specs in value.items()}
            elif isinstance(value, list):
                value = list(value)
            result[f.name] = value
        return result


def _parse_value(key: str, value: Any) -> Any:
    """Check and convert one config value from JSON."""
    if key == "accounts":
        _check_type("accounts", value, list)
        return [item if isinstance(item, Account) else Account.from_dict(item) for item in value]
    if key == "faults":
        return parse_fault_table(value)
    if key == "fault_rate_kinds":
        return None if value is None else parse_fault_kinds(value)
    if key in _NON_NEGATIVE_FLOATS:
        _check_type(key, value, (int, float))
        if value < 0:
            raise ConfigError(f"{key} must be >= 0")
        return float(value)
    if key in _POSITIVE_INTS:
        _check_type(key, value, int)
        if value < 1:
            raise ConfigError(f"{key} must be >= 1")
        return value
    if key == "rate_limit_scale":
        _check_type(key, value, (int, float))
        if value <= 0:
            raise ConfigError("rate_limit_scale must be > 0")
        return float(value)
    if key in _RATES:
        _check_type(key, value, (int, float))
        if not 0 <= value <= 1:
            raise ConfigError(f"{key} must be between 0 and 1")
        return float(value)
    if key == "tracking_progression":
        return _progression(value)
    if key == "fault_rate":
        _check_type(key, value, (int, float))
        if not 0 <= value <= 1:
            raise ConfigError("fault_rate must be between 0 and 1")
        return float(value)
    if key in ("rate_limits_enabled", "record_bodies", "return_portal_enabled", "webhook_reorder"):
        _check_type(key, value, bool)
        return value
    if key == "seed":
        if value is not None:
            _check_type(key, value, int)
        return value
    if key == "allowed_currencies":
        _check_type(key, value, list)
        for item in value:
            _check_type("allowed_currencies[]", item, str)
        return [item.upper() for item in value]
    if key == "default_shipping_option_code":
        _check_type(key, value, str)
        return value
    raise ConfigError(f"unknown config key: {key}")


def _progression(value: Any) -> list[list[float]]:
    """``[[seconds, status id], …]`` with increasing seconds and status ids the sandbox knows."""
    from sendcloud_sandbox.tracking import BY_ID

    _check_type("tracking_progression", value, list)
    result: list[list[float]] = []
    last = -1.0
    for step in value:
        if not isinstance(step, list | tuple) or len(step) != 2:
            raise ConfigError("tracking_progression entries must be [seconds, status id] pairs")
        seconds, status_id = step
        _check_type("tracking_progression seconds", seconds, (int, float))
        _check_type("tracking_progression status id", status_id, int)
        if seconds <= last:
            raise ConfigError("tracking_progression seconds must increase")
        if status_id not in BY_ID:
            raise ConfigError(f"tracking_progression: unknown status id {status_id}")
        last = float(seconds)
        result.append([float(seconds), status_id])
    return result
