"""Shipping methods and each order's shipping data: the catalogue synced from Sendcloud, and ``update-order``.

``catalogue`` keeps the integration's shipping options (``POST /v3/shipping-options``, one request per
destination country) with a stable local integer id each, and answers the shipping-methods endpoint;
``orders`` changes one order's method, weight and parcels (the API's ``update-order`` and the admin), and
sends the change to Sendcloud when the order is already there.
"""
