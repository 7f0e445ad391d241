from django.apps import AppConfig


class ScoringConfig(AppConfig):
    """The call scoring app."""

    name = "scoring"
    default_auto_field = "django.db.models.BigAutoField"
