"""The webhook receiver's URL, outside ``/api/…``.

Sendcloud is given ``<SENDCLOUD_PUBLIC_URL>/webhooks/sendcloud/<token>`` (``tracking/setup.py``).
"""

from django.urls import path

from sendcloud_integration.api.webhooks import SendcloudWebhookApi

app_name = "sendcloud_webhooks"

urlpatterns = [path("<str:token>", SendcloudWebhookApi.as_view(), name="receive")]
