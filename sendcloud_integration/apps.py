from django.apps import AppConfig


class SendcloudIntegrationConfig(AppConfig):
    name = "sendcloud_integration"
    verbose_name = "Sendcloud"
    default_auto_field = "django.db.models.BigAutoField"
