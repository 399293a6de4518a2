"""Root URLs. All API paths live under ``/api``; JSON error handlers keep ``/api`` answers JSON."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from wemasy.health import healthz, readyz
from wemasy.metrics_view import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's set-up script as a file of its own: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/services/webshop/v1/", include("sendcloud_integration.api.urls")),
    path("webhooks/sendcloud/", include("sendcloud_integration.api.webhook_urls")),
]

handler404 = "wemasy.api.errors.not_found"
handler500 = "wemasy.api.errors.server_error"
