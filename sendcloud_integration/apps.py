from django.apps import AppConfig


class SendcloudIntegrationConfig(AppConfig):
    name = "sendcloud_integration"
    verbose_name = "Sendcloud"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The shop's order import asks whether an order's shipping data may change; the answer is ours
        # (shipping/locks.py), and webshop may not import this package, so the rule is handed to it here.
        from sendcloud_integration.shipping import locks
        from webshop import shipping_locks

        shipping_locks.register(locks.locked_orders)
