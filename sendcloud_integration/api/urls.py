from django.urls import path

from sendcloud_integration.api import integration, orders, tracking, views

app_name = "sendcloud_api"

# Batch ids are matched as any string, not ``<uuid:…>``: an ill-formed id must get the batch
# endpoints' own 404 body ("No such batch."), not the generic one for an unknown URL.
urlpatterns = [
    path("orders/sendcloud/shipments/push", views.PushShipmentsApi.as_view(), name="shipments-push"),
    path("orders/sendcloud/shipments/create-label", orders.CreateLabelsApi.as_view(), name="shipments-create-label"),
    path("orders/update-order", orders.UpdateOrderApi.as_view(), name="update-order"),
    path("orders/sendcloud/shipments/cancel", tracking.CancelShipmentsApi.as_view(), name="shipments-cancel"),
    # Matched as any string for the same reason as batch ids: an ill-formed id gets the view's own 404.
    path("orders/<str:order_id>/sendcloud/shipment", tracking.OrderShipmentApi.as_view(), name="order-shipment"),
    path("integrations/sendcloud/verify", integration.VerifyCredentialsApi.as_view(), name="integration-verify"),
    path("integrations/sendcloud/status", integration.IntegrationStatusApi.as_view(), name="integration-status"),
    path(
        "integrations/sendcloud/shipping-methods",
        integration.ShippingMethodsApi.as_view(),
        name="integration-shipping-methods",
    ),
    path(
        "integrations/sendcloud/service-points",
        integration.ServicePointsApi.as_view(),
        name="integration-service-points",
    ),
    path(
        "orders/sendcloud/shipments/batches/<str:batch_id>",
        views.BatchDetailApi.as_view(),
        name="batch-detail",
    ),
    path(
        "orders/sendcloud/shipments/batches/<str:batch_id>/labels",
        views.BatchLabelsApi.as_view(),
        name="batch-labels",
    ),
]
