from django.apps import AppConfig


class WebshopConfig(AppConfig):
    name = "webshop"
    verbose_name = "Webshop"
    default_auto_field = "django.db.models.BigAutoField"
