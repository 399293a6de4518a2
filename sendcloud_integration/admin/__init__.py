"""Django admin for Sendcloud (the staff door): orders, batches, the integration and the call log.

Like the API, the admin only translates: it reads through ``selectors`` and writes only through the
services the API and the command use (``push.services.push_orders``, ``integration.services``). Each
module registers one model's admin; the views that are not plain model pages are in ``views`` (the
dashboard, the connection check), ``repush`` (the re-push confirmation flow), ``printing`` (a batch's
Print page, its documents, the printer profiles) and ``shipping`` (an order's shipping data, through
the service of the API's ``update-order``; the catalogue).
"""

from sendcloud_integration.admin import api_calls, batches, integration, orders, printing, shipping

__all__ = ["api_calls", "batches", "integration", "orders", "printing", "shipping"]
