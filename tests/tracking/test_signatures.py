"""The Sendcloud-Signature check: over the raw body, under the right key, in constant time."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from sendcloud_integration.tracking import signatures

BODY = b'{"action": "parcel_status_changed", "timestamp": 1525271885993,\n "parcel": {"id": 1}}'
KEY = "sandbox-secret"


def test_the_spec_example_signs_as_documented() -> None:
    # The example of Sendcloud's webhook spec: {"key": "value"} under "secretkey".
    assert signatures.sign(b'{"key": "value"}', "secretkey") == (
        "1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a"
    )


def test_the_raw_body_verifies() -> None:
    assert signatures.is_valid(BODY, signatures.sign(BODY, KEY), KEY)


def test_an_upper_case_hex_signature_verifies() -> None:
    assert signatures.is_valid(BODY, signatures.sign(BODY, KEY).upper(), KEY)


def test_the_re_serialised_json_does_not_verify() -> None:
    """Parsing and dumping the body again changes its bytes: the signature no longer matches."""
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert reserialised != BODY
    assert not signatures.is_valid(reserialised, signatures.sign(BODY, KEY), KEY)


def test_a_wrong_key_does_not_verify() -> None:
    assert not signatures.is_valid(BODY, signatures.sign(BODY, "another-key"), KEY)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_signature_does_not_verify(header: str | None) -> None:
    assert not signatures.is_valid(BODY, header, KEY)


def test_a_body_changed_by_one_byte_does_not_verify() -> None:
    changed = BODY.replace(b"1525271885993", b"1525271885994")
    assert len(changed) == len(BODY)
    assert not signatures.is_valid(changed, signatures.sign(BODY, KEY), KEY)


def test_no_key_never_verifies() -> None:
    assert not signatures.is_valid(BODY, signatures.sign(BODY, ""), "")


def test_a_non_ascii_header_is_refused_not_an_error() -> None:
    assert not signatures.is_valid(BODY, "é" * 64, KEY)


def test_the_comparison_is_constant_time() -> None:
    with mock.patch("sendcloud_integration.tracking.signatures.hmac.compare_digest", return_value=True) as compare:
        assert signatures.is_valid(BODY, "0" * 64, KEY)
    compare.assert_called_once()
