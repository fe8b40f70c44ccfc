from django.apps import AppConfig


class ReviewerConfig(AppConfig):
    name = "reviewer"
    verbose_name = "Reviewer"
    default_auto_field = "django.db.models.BigAutoField"
