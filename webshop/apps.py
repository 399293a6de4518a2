from django.apps import AppConfig


class WebshopConfig(AppConfig):
    name = "webshop"
    verbose_name = "Webshop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webshop import schema  # noqa: F401 - registers the OpenAPI auth scheme
