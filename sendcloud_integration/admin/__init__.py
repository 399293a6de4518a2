"""Django admin for Sendcloud: orders with their shipment, batches, the integration and the call log."""

from sendcloud_integration.admin import models as models
