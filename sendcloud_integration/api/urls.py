from django.urls import path

from sendcloud_integration.api import views

app_name = "sendcloud_api"

urlpatterns = [
    path("orders/sendcloud/shipments/push", views.PushShipmentsApi.as_view(), name="shipments-push"),
    path(
        "orders/sendcloud/shipments/batches/<uuid:batch_id>",
        views.BatchDetailApi.as_view(),
        name="batch-detail",
    ),
]
