"""The v3 API routes the sandbox serves, one module per resource."""

from __future__ import annotations

from sendcloud_sandbox.handlers import (
    documents,
    integrations,
    labels,
    orders,
    service_points,
    shipments,
    shipping_options,
)
from sendcloud_sandbox.routes import Route

API_ROUTES: tuple[Route, ...] = (
    Route("POST", "/orders", orders.post_orders, success_status=201, pauses_itself=True),
    Route("GET", "/orders", orders.list_orders),
    Route("GET", "/orders/{id}", orders.get_order),
    Route("DELETE", "/orders/{id}", orders.delete_order, success_status=204),
    Route("POST", "/orders/create-labels-async", labels.create_labels_async, success_status=202),
    Route("GET", "/shipments", shipments.list_shipments),
    Route("GET", "/shipments/{id}", shipments.get_shipment),
    Route("POST", "/shipments/{id}/cancel", shipments.cancel_shipment),
    Route("GET", "/shipments/{id}/return-portal-url", shipments.return_portal_url),
    Route("GET", "/parcels/{id}/documents/{type}", documents.get_parcel_document),
    Route("GET", "/parcel-documents/{type}", documents.get_parcel_documents),
    Route("POST", "/shipping-options", shipping_options.post_shipping_options),
    Route("GET", "/integrations", integrations.list_integrations),
    Route("GET", "/integrations/{id}", integrations.get_integration),
    Route("GET", "/service-points", service_points.list_service_points),
    Route("POST", "/service-points/{id}/check-availability", service_points.check_availability),
    Route("PATCH", "/integrations/{id}", integrations.patch_integration, success_status=204),
)
