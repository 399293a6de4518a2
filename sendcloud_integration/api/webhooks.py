"""``POST /webhooks/sendcloud/<token>``: Sendcloud's webhook deliveries.

No token auth and no rate limit: the caller is Sendcloud, proven by the ``Sendcloud-Signature`` of the
raw body (``tracking/signatures.py``). The view reads the body as bytes — never parsed and re-serialised
before the check — and calls :func:`~sendcloud_integration.tracking.webhooks.receive`, which stores the
delivery before the 200 goes out. A missing or wrong signature is a 401 and nothing is stored; an
unknown URL a 404.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sendcloud_integration.tracking import signatures, webhooks


class SendcloudWebhookApi(APIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []

    # Not part of the shop API (its caller is Sendcloud, not a token holder): documented in docs/api.md.
    @extend_schema(exclude=True)
    def post(self, request: Request, token: str) -> Response:
        receipt = webhooks.receive(token, request.body, request.headers.get(signatures.HEADER))
        return Response({"status": "received", "delivery": receipt.delivery_id})
