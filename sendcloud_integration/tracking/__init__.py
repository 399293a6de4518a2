"""After the label: parcel statuses from signed webhooks (or polling), cancelling labels, returns.

``webhooks`` receives and verifies deliveries, ``events`` applies what Sendcloud said to a parcel (the
one writer of a parcel's status), ``polling`` is the fallback for integrations without webhooks,
``setup`` turns an integration's webhook on or off in Sendcloud, ``cancel`` cancels labels and
``returns`` reads the return portal link.
"""
